"""Build a small native PRM from scratch: no download, no pretrained weights.

``build_bootstrap_model`` trains a byte-level BPE tokenizer on the campaign's own text (split
on whitespace first; LaTeX commands such as ``\\frac`` kept whole, digits split one by one,
every other symbol its own piece; any character encodable, so no unknown tokens) and creates
a randomly initialised (seeded) BERT-style encoder with a 3-class token classification head.
The result is a native checkpoint (see :mod:`selector.scoring`) that ``load_adapter`` loads
and that PRM training can fine-tune on whatever labels exist.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from selector.scoring.checkpoint import NATIVE_SEPARATOR, save_native_checkpoint
from selector.scoring.formulas import LABELS_3

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", NATIVE_SEPARATOR)
# LaTeX command | Latin word | one digit | any other single non-space character.
PRETOKENIZE_PATTERN = r"\\[A-Za-z]+|[A-Za-z]+|[0-9]|[^\sA-Za-z0-9]"


def texts_from_samples(samples: Iterable[tuple[str, Sequence[str]]]) -> Iterator[str]:
    """Problem texts (once each) and step texts of ``(problem, steps)`` pairs."""
    seen: set[str] = set()
    for problem, steps in samples:
        if problem not in seen:
            seen.add(problem)
            yield problem
        yield from steps


def train_tokenizer(texts: Iterable[str], *, vocab_size: int = 4096, max_length: int = 512):
    """A byte-level BPE fast tokenizer trained on ``texts``, with Stepwise's special tokens."""
    from tokenizers import (
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
        trainers,
    )
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.normalizer = normalizers.NFC()
    # Whitespace and math-aware splitting first; byte-level last so any character is encodable.
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.WhitespaceSplit(),
            pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    # Plain BPE (no "##" subword prefix): tokenizers' WordPiece training is not deterministic.
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=list(SPECIAL_TOKENS),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    # BPE training is super-linear in the length of one word (a 20 MB word ran for an hour):
    # train on words cut to 64 characters; encoding still takes words of any length.
    longest = 64

    def capped_words(texts: Iterable[str]) -> Iterator[str]:
        for text in texts:
            words = text.split() if len(text) > longest else []
            if any(len(word) > longest for word in words):
                # Whitespace-split first anyway, so re-joining with spaces changes nothing else.
                text = " ".join(
                    word[i : i + longest] for word in words for i in range(0, len(word), longest)
                )
            yield text

    tok.train_from_iterator(capped_words(texts), trainer=trainer)
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tok,
        pad_token="[PAD]",
        unk_token="[UNK]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        extra_special_tokens=[NATIVE_SEPARATOR],
        model_max_length=max_length,
        padding_side="right",
    )


def build_bootstrap_model(
    texts: Iterable[str],
    out_dir: Path,
    *,
    vocab_size: int = 4096,
    hidden: int = 128,
    layers: int = 2,
    heads: int = 4,
    max_length: int = 512,
    seed: int = 0,
) -> Path:
    """Train a tokenizer on ``texts``, create a seeded random encoder PRM, save it natively.

    Returns ``out_dir``; ``load_adapter(out_dir)`` gives a token-classification adapter.
    """
    import torch
    from transformers import BertConfig, BertForTokenClassification

    tokenizer = train_tokenizer(texts, vocab_size=vocab_size, max_length=max_length)
    config = BertConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=4 * hidden,
        max_position_embeddings=max_length,
        type_vocab_size=1,
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(LABELS_3),
        id2label=dict(enumerate(LABELS_3)),
        label2id={name: i for i, name in enumerate(LABELS_3)},
    )
    # A private RNG stream: the same seed gives the same weights whatever ran before.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = BertForTokenClassification(config)
    return save_native_checkpoint(
        model,
        tokenizer,
        out_dir,
        max_length=max_length,
        base_model="bootstrap",
    )
