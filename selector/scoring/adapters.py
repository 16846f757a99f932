"""PRM adapters: how each kind of process reward model turns (problem, steps) into step scores.

The input formats, the native checkpoint format and the truncation policy are documented in
the package docstring (:mod:`selector.scoring`).
"""

from __future__ import annotations

import inspect
import json
import logging
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from selector.scoring.checkpoint import (
    NATIVE_ADAPTER,
    PRM_CONFIG_NAME,
    QWEN_SEPARATOR,
    CheckpointError,
    PRMConfig,
    read_prm_config,
)
from selector.scoring.formulas import LABELS_2, Aggregation, SampleScore

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from selector.scoring.batching import ScoringStats

logger = logging.getLogger(__name__)

# ChatML, the format of Qwen chat models; used when a qwen-prm tokenizer ships no chat template.
CHATML_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' }}"
    "{% endfor %}"
)


@dataclass(frozen=True)
class PRMInput:
    """One solution to score: the problem statement and the solution's steps."""

    problem: str
    steps: Sequence[str]


SampleLike = PRMInput | tuple[str, Sequence[str]] | Mapping[str, Any]


def as_input(sample: SampleLike) -> PRMInput:
    """Accept a :class:`PRMInput`, a ``(problem, steps)`` pair or a mapping with those keys."""
    if isinstance(sample, PRMInput):
        problem, steps = sample.problem, sample.steps
    elif isinstance(sample, Mapping):
        problem, steps = sample["problem"], sample["steps"]
    else:
        problem, steps = sample
    if isinstance(steps, str):
        raise TypeError("steps must be a list of strings, not a single string")
    return PRMInput(str(problem), [str(s) for s in steps])


@dataclass
class EncodedSample:
    """Token ids of one PRM input and where to read each scored step's prediction.

    ``positions[k]`` is the index in ``input_ids`` of the token that ends step ``k`` (its
    separator or tag); only the first ``len(positions)`` of ``n_steps`` steps are scored.
    """

    input_ids: list[int]
    positions: list[int]
    n_steps: int
    truncated: bool


ADAPTERS: dict[str, type[PRMAdapter]] = {}


def register_adapter(cls: type[PRMAdapter]) -> type[PRMAdapter]:
    """Class decorator: make an adapter loadable by its ``name``."""
    ADAPTERS[cls.name] = cls
    return cls


class PRMAdapter(ABC):
    """A loaded PRM: encodes inputs, runs the model, returns step and solution scores."""

    name: ClassVar[str]
    # The transformers Auto class the weights are loaded with.
    auto_class: ClassVar[str]

    def __init__(
        self,
        model: PreTrainedModel,
        tokenizer: PreTrainedTokenizerBase,
        config: PRMConfig,
        *,
        device: torch.device | str | None = None,
        path: Path | None = None,
    ) -> None:
        from selector.scoring.batching import resolve_device

        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()  # a no-op when load_adapter already moved it
        self.tokenizer = tokenizer
        self.config = config
        self.path = path
        self.labels: tuple[str, ...] = tuple(config.labels)
        pos_limit = getattr(model.config, "max_position_embeddings", None)
        if pos_limit is not None and "roberta" in str(getattr(model.config, "model_type", "")):
            pos_limit -= 2  # RoBERTa-style position ids start after the padding index
        self.max_length = int(config.max_length)
        if pos_limit is not None and self.max_length > int(pos_limit):
            logger.warning(
                "max_length %d exceeds the model's %d positions; using %d",
                self.max_length,
                pos_limit,
                pos_limit,
            )
            self.max_length = int(pos_limit)
        cap = config.max_problem_tokens
        cap = int(cap) if cap is not None else self.max_length // 2
        self.max_problem_tokens = max(0, min(cap, self.max_length - 1))
        self.pad_token_id = next(
            (t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0
        )
        # Decoder models build a KV cache unless told not to; scoring never needs one.
        params = inspect.signature(model.forward).parameters
        self._forward_kwargs: dict[str, Any] = {"use_cache": False} if "use_cache" in params else {}

    # --- encoding -----------------------------------------------------------------------
    @abstractmethod
    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        """Encode many inputs at once (tokenizer batch calls), truncation applied."""

    def encode(self, problem: str, steps: Sequence[str]) -> EncodedSample:
        """Encode one input (see the package docstring for the layout and truncation)."""
        return self.encode_many([as_input((problem, steps))])[0]

    # --- model --------------------------------------------------------------------------
    @abstractmethod
    def forward_probs(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
    ) -> torch.Tensor:
        """Class probabilities ``[N, len(labels)]`` (fp32) at token ``(rows[n], cols[n])``."""

    def score(
        self,
        samples: Sequence[SampleLike],
        *,
        aggregation: Aggregation = "product",
        neutral_is_positive: bool = True,
        token_budget: int | None = None,
        max_batch_size: int | None = None,
    ) -> list[SampleScore]:
        """Score solutions; one :class:`SampleScore` per input, in input order."""
        return self.score_with_stats(
            samples,
            aggregation=aggregation,
            neutral_is_positive=neutral_is_positive,
            token_budget=token_budget,
            max_batch_size=max_batch_size,
        )[0]

    def score_with_stats(
        self,
        samples: Sequence[SampleLike],
        *,
        aggregation: Aggregation = "product",
        neutral_is_positive: bool = True,
        token_budget: int | None = None,
        max_batch_size: int | None = None,
        progress: Callable[[int, int], None] | None = None,
    ) -> tuple[list[SampleScore], ScoringStats]:
        """Like :meth:`score`, also returning throughput and padding statistics."""
        from selector.scoring.batching import score_batched

        return score_batched(
            self,
            samples,
            aggregation=aggregation,
            neutral_is_positive=neutral_is_positive,
            token_budget=token_budget,
            max_batch_size=max_batch_size,
            progress=progress,
        )

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.path} on {self.device}>"


def _check_token_id(tokenizer: PreTrainedTokenizerBase, token: str, what: str) -> int:
    token_id = tokenizer.convert_tokens_to_ids(token)
    unk = tokenizer.unk_token_id
    if token_id is None or (unk is not None and token_id == unk and token != tokenizer.unk_token):
        raise CheckpointError(
            f"{what} {token!r} is not a token of this model's tokenizer; the PRM cannot be used "
            "without it"
        )
    return int(token_id)


def _assemble_steps(
    head: list[int], step_ids: Sequence[list[int]], sep_id: int, max_length: int
) -> tuple[list[int], list[int], bool]:
    """Append whole steps (each followed by ``sep_id``) to ``head`` while they fit."""
    ids = list(head)
    positions: list[int] = []
    truncated = False
    for k, step in enumerate(step_ids):
        room = max_length - len(ids)
        if len(step) + 1 <= room:
            ids.extend(step)
        elif k == 0 and room >= 1:
            # Keep the head of a first step that alone overflows so every sample gets a score.
            ids.extend(step[: room - 1])
            truncated = True
        else:
            truncated = True
            break
        ids.append(sep_id)
        positions.append(len(ids) - 1)
        if truncated:
            break
    return ids, positions, truncated


def encode_native_many(
    tokenizer: PreTrainedTokenizerBase,
    samples: Sequence[SampleLike],
    *,
    separator: str,
    max_length: int,
    max_problem_tokens: int | None = None,
) -> list[EncodedSample]:
    """Native (token-classification) encoding, shared by scoring and training.

    Layout: ``[CLS]? problem [SEP]? step_1 [STEP] step_2 [STEP] … step_n [STEP]`` where the
    optional tokens are the tokenizer's own cls/sep tokens when it has them, and the problem
    and each step are tokenized separately without special tokens, with special-token strings
    in the text tokenized as plain text (text cannot inject a separator).
    """
    inputs = [as_input(s) for s in samples]
    sep_id = _check_token_id(tokenizer, separator, "separator")
    prefix = [tokenizer.cls_token_id] if tokenizer.cls_token_id is not None else []
    mid = (
        [tokenizer.sep_token_id]
        if tokenizer.sep_token_id is not None and tokenizer.sep_token_id != sep_id
        else []
    )
    cap = max_length // 2 if max_problem_tokens is None else max_problem_tokens
    # At least one token of room must remain for the first step's separator.
    cap = max(0, min(cap, max_length - len(prefix) - len(mid) - 1))

    problems = list(dict.fromkeys(s.problem for s in inputs))
    pieces = problems + [step for s in inputs for step in s.steps]
    ids = (
        tokenizer(pieces, add_special_tokens=False, split_special_tokens=True, verbose=False)[
            "input_ids"
        ]
        if pieces
        else []
    )
    problem_ids = dict(zip(problems, ids[: len(problems)], strict=True))
    cursor = len(problems)
    out: list[EncodedSample] = []
    for s in inputs:
        if not s.steps:
            raise ValueError("a sample to score needs at least one step")
        p = problem_ids[s.problem]
        head = prefix + p[:cap] + mid
        steps = ids[cursor : cursor + len(s.steps)]
        cursor += len(s.steps)
        tokens, positions, truncated = _assemble_steps(head, steps, sep_id, max_length)
        out.append(EncodedSample(tokens, positions, len(s.steps), truncated or len(p) > cap))
    return out


@register_adapter
class TokenClassificationAdapter(PRMAdapter):
    """Native Stepwise PRM: token classification, logits read at the step separators."""

    name = NATIVE_ADAPTER
    auto_class = "AutoModelForTokenClassification"

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        if model.config.num_labels != len(self.labels):
            raise CheckpointError(
                f"{PRM_CONFIG_NAME} lists {len(self.labels)} labels but the model has "
                f"{model.config.num_labels}"
            )
        self.separator = config.separator
        self.separator_id = _check_token_id(tokenizer, config.separator, "separator")

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        return encode_native_many(
            self.tokenizer,
            samples,
            separator=self.separator,
            max_length=self.max_length,
            max_problem_tokens=self.max_problem_tokens,
        )

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs)
        return out.logits[rows, cols].float().softmax(dim=-1)


def _span_positions(offsets: Sequence[tuple[int, int]], spans: Sequence[tuple[int, int]]):
    """Index of the last token overlapping each character span (spans sorted, disjoint)."""
    positions: list[int] = []
    j, n = 0, len(offsets)
    for start, end in spans:
        last = -1
        while j < n:
            a, b = offsets[j]
            if a >= end and b > a:
                break
            if b > a and b > start:
                last = j
            j += 1
        if last < 0:
            raise RuntimeError(f"no token covers characters {start}:{end} of the PRM input")
        positions.append(last)
        j = last + 1
    return positions


class TextTemplateAdapter(PRMAdapter):
    """Adapters whose input is a rendered text with a marker string after every step.

    The whole text is tokenized at once (as the model's reference usage does) and marker
    positions are found through the tokenizer's character offsets.
    """

    # Whether the tokenizer adds its own special tokens (BOS …) around the rendered text.
    add_special_tokens: ClassVar[bool] = True

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        if not getattr(tokenizer, "is_fast", False):
            raise CheckpointError(
                f"the {self.name} adapter needs a fast tokenizer (tokenizer.json) for offsets"
            )

    @abstractmethod
    def render(self, problem: str, steps: Sequence[str]) -> tuple[str, list[tuple[int, int]]]:
        """The model input text and the character span of the marker after each step."""

    def _clean(self, text: str) -> str:
        return text

    def _tokenize(self, texts: list[str], special: bool) -> tuple[list[list[int]], list]:
        enc = self.tokenizer(
            texts, add_special_tokens=special, return_offsets_mapping=True, verbose=False
        )
        return enc["input_ids"], enc["offset_mapping"]

    def _cut_text(self, text: str, n_tokens: int) -> str:
        """The prefix of ``text`` covered by its first ``n_tokens`` tokens."""
        if n_tokens <= 0:
            return ""
        _, offsets = self._tokenize([text], False)
        offsets = offsets[0]
        if n_tokens >= len(offsets):
            return text
        return text[: offsets[n_tokens - 1][1]]

    def _fit(self, ids: list[int], positions: list[int], n_steps: int, cut: bool):
        if len(ids) <= self.max_length:
            return EncodedSample(ids, positions, n_steps, cut)
        keep = [p for p in positions if p < self.max_length]
        if not keep:
            return None
        # Causal models: dropping everything after a marker leaves the kept predictions as is.
        return EncodedSample(ids[: keep[-1] + 1], keep, n_steps, True)

    def _encode_overflowing(self, problem: str, steps: Sequence[str]) -> EncodedSample:
        """Slow path for a first step that does not fit: keep its head, score only it."""
        step = steps[0]
        n_step = len(self._tokenize([step], False)[0][0])
        for _ in range(8):
            text, spans = self.render(problem, [step])
            ids, offsets = self._tokenize([text], self.add_special_tokens)
            positions = _span_positions(offsets[0], spans)
            if positions[0] < self.max_length:
                return EncodedSample(ids[0][: positions[0] + 1], positions, len(steps), True)
            n_step = max(0, n_step - (positions[0] + 1 - self.max_length) - 1)
            step = self._cut_text(steps[0], n_step)
        raise ValueError(
            f"cannot fit one step into max_length={self.max_length} even with the problem cut "
            f"to {self.max_problem_tokens} tokens"
        )

    def encode_many(self, samples: Sequence[PRMInput]) -> list[EncodedSample]:
        inputs = [as_input(s) for s in samples]
        for s in inputs:
            if not s.steps:
                raise ValueError("a sample to score needs at least one step")
        problems = list(dict.fromkeys(self._clean(s.problem) for s in inputs))
        problem_ids, problem_offsets = self._tokenize(problems, False) if problems else ([], [])
        cut: dict[str, tuple[str, bool]] = {}
        for text, ids, offs in zip(problems, problem_ids, problem_offsets, strict=True):
            if len(ids) > self.max_problem_tokens:
                end = offs[self.max_problem_tokens - 1][1] if self.max_problem_tokens > 0 else 0
                cut[text] = (text[:end], True)
            else:
                cut[text] = (text, False)
        prepared = []
        for s in inputs:
            problem, was_cut = cut[self._clean(s.problem)]
            steps = [self._clean(step) for step in s.steps]
            prepared.append((problem, steps, was_cut))
        rendered = [self.render(p, st) for p, st, _ in prepared]
        all_ids, all_offsets = self._tokenize([t for t, _ in rendered], self.add_special_tokens)
        out: list[EncodedSample] = []
        for (problem, steps, was_cut), (_, spans), ids, offs in zip(
            prepared, rendered, all_ids, all_offsets, strict=True
        ):
            enc = self._fit(list(ids), _span_positions(offs, spans), len(steps), was_cut)
            out.append(enc if enc is not None else self._encode_overflowing(problem, steps))
        return out


@register_adapter
class QwenPRMAdapter(TextTemplateAdapter):
    """Qwen2.5-Math-PRM style: chat prompt, steps joined by ``<extra_0>``, 2-class head.

    Step score = P(class 1) at each ``<extra_0>``. Loaded with
    ``AutoModelForTokenClassification`` (``num_labels=2``), never with the checkpoint's own
    remote code.
    """

    name = "qwen-prm"
    auto_class = "AutoModelForTokenClassification"
    add_special_tokens = False  # the chat template already holds every special token

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        super().__init__(model, tokenizer, config, device=device, path=path)
        if model.config.num_labels != 2:
            raise CheckpointError(
                f"qwen-prm needs 2 labels, the model has {model.config.num_labels}"
            )
        self.separator = config.separator
        self.separator_id = _check_token_id(tokenizer, config.separator, "step separator")
        specials = {self.separator, *tokenizer.all_special_tokens}
        specials |= {str(t) for t in tokenizer.added_tokens_decoder.values() if t.special}
        pattern = "|".join(re.escape(t) for t in sorted(specials, key=len, reverse=True) if t)
        self._special_re = re.compile(pattern)
        self._prefix, self._suffix = self._template_parts()

    def _template_parts(self) -> tuple[tuple[str, str], str]:
        marker_q, marker_a = "\ue000", "\ue001"  # private-use characters: never in real text
        messages = [
            {"role": "system", "content": self.config.system_prompt},
            {"role": "user", "content": marker_q},
            {"role": "assistant", "content": marker_a},
        ]
        template = getattr(self.tokenizer, "chat_template", None) or CHATML_TEMPLATE
        text = self.tokenizer.apply_chat_template(
            messages, chat_template=template, tokenize=False, add_generation_prompt=False
        )
        if text.count(marker_q) != 1 or text.count(marker_a) != 1:
            raise CheckpointError("the chat template does not render the messages verbatim")
        before_a, after_a = text.split(marker_a)
        before_q, after_q = before_a.split(marker_q)
        return (before_q, after_q), after_a

    def _clean(self, text: str) -> str:
        # Special-token strings inside user text would inject fake separators/turns.
        return self._special_re.sub("", text)

    def render(self, problem, steps):
        head = self._prefix[0] + problem + self._prefix[1]
        parts = [head]
        spans: list[tuple[int, int]] = []
        pos = len(head)
        for step in steps:
            parts.append(step)
            pos += len(step)
            parts.append(self.separator)
            spans.append((pos, pos + len(self.separator)))
            pos += len(self.separator)
        parts.append(self._suffix)
        return "".join(parts), spans

    def _fit(self, ids, positions, n_steps, cut):
        for p in positions:
            if ids[p] != self.separator_id:
                raise RuntimeError("step separator was not tokenized as a single token")
        return super()._fit(ids, positions, n_steps, cut)

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        out = self.model(input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs)
        return out.logits[rows, cols].float().softmax(dim=-1)


@register_adapter
class TagTokenAdapter(TextTemplateAdapter):
    """Math-Shepherd style causal LM: a tag after every step, P(good) vs bad at the tag.

    Input: ``f"{problem} {step_1_text} {tag}\\n{step_2_text} {tag}…"`` with each step text
    rendered through ``step_template`` (default ``"Step {i}: {step}"``, Math-Shepherd's
    format). At the tag's (last) token the LM logits restricted to the good and bad tokens are
    softmaxed; step score = P(good).
    """

    name = "tag-token"
    auto_class = "AutoModelForCausalLM"
    add_special_tokens = True

    def __init__(self, model, tokenizer, config, *, device=None, path=None) -> None:
        config = replace(config, labels=list(LABELS_2))
        super().__init__(model, tokenizer, config, device=device, path=path)
        self.tag = config.tag
        good, bad = self._class_ids(config.good, config.bad)
        # Column order [bad, good] matches labels (negative, positive).
        self.class_token_ids = torch.tensor([bad, good], dtype=torch.long)
        self._base = getattr(model, model.base_model_prefix, None)
        self._head = model.get_output_embeddings()

    def _class_ids(self, good: str, bad: str) -> tuple[int, int]:
        # Math-Shepherd encodes "+ -" together, so each token carries its usual leading space.
        pair = self.tokenizer.encode(f"{good} {bad}", add_special_tokens=False)
        if len(pair) == 2:
            return int(pair[0]), int(pair[1])
        return (
            _check_token_id(self.tokenizer, good, "good token"),
            _check_token_id(self.tokenizer, bad, "bad token"),
        )

    def render(self, problem, steps):
        parts = [problem, " "]
        pos = len(problem) + 1
        spans: list[tuple[int, int]] = []
        for i, step in enumerate(steps, start=1):
            if i > 1:
                parts.append("\n")
                pos += 1
            body = self.config.step_template.format(i=i, step=step.strip()) + " "
            parts.append(body)
            pos += len(body)
            parts.append(self.tag)
            spans.append((pos, pos + len(self.tag)))
            pos += len(self.tag)
        return "".join(parts), spans

    def forward_probs(self, input_ids, attention_mask, rows, cols) -> torch.Tensor:
        ids = self.class_token_ids.to(input_ids.device)
        if self._base is not None and self._head is not None:
            # Project only the tag positions onto the two class tokens, not the whole vocab.
            hidden = self._base(
                input_ids=input_ids, attention_mask=attention_mask, **self._forward_kwargs
            ).last_hidden_state[rows, cols]
            weight = self._head.weight[ids].float()
            logits = hidden.float() @ weight.T
            if getattr(self._head, "bias", None) is not None:
                logits = logits + self._head.bias[ids].float()
        else:
            out = self.model(input_ids=input_ids, attention_mask=attention_mask)
            logits = out.logits[rows, cols][:, ids].float()
        return logits.softmax(dim=-1)


# --- loading ---------------------------------------------------------------------------------


def _read_json(file: Path) -> dict[str, Any]:
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"cannot read {file}: {exc}") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return data


def _prefers_safetensors(path: Path) -> bool:
    """True for safetensors weights; False (with a warning) when only .bin weights exist."""
    if any(path.glob("*.safetensors")) or (path / "model.safetensors.index.json").is_file():
        return True
    if (path / "pytorch_model.bin").is_file() or (path / "pytorch_model.bin.index.json").is_file():
        logger.warning(
            "%s has no safetensors weights; falling back to pytorch_model.bin "
            "(loaded with torch.load(weights_only=True)); convert it to safetensors",
            path,
        )
        return False
    raise CheckpointError(f"{path} has no model weights (model.safetensors or pytorch_model.bin)")


def _load_tokenizer(path: Path, common: dict[str, Any]) -> PreTrainedTokenizerBase:
    from transformers import AutoTokenizer, PreTrainedTokenizerFast

    tok_config = path / "tokenizer_config.json"
    declared = _read_json(tok_config).get("tokenizer_class") if tok_config.is_file() else None
    if declared in _GENERIC_TOKENIZERS and (path / "tokenizer.json").is_file():
        # AutoTokenizer swaps in a model-specific class for some model types (qwen2), which
        # rebuilds the pipeline; a checkpoint that declares the generic class means tokenizer.json.
        return PreTrainedTokenizerFast.from_pretrained(path, **common)
    return AutoTokenizer.from_pretrained(path, **common)


_GENERIC_TOKENIZERS = ("TokenizersBackend", "PreTrainedTokenizerFast")


def _infer_adapter(config: dict[str, Any], path: Path) -> str:
    archs = " ".join(config.get("architectures") or [])
    if "ForCausalLM" in archs:
        return TagTokenAdapter.name
    if "ProcessRewardModel" in archs or config.get("num_labels") == 2:
        return QwenPRMAdapter.name
    if "ForTokenClassification" in archs:
        return NATIVE_ADAPTER
    raise CheckpointError(
        f"{path} has no {PRM_CONFIG_NAME} and its architecture ({archs or 'unknown'}) does not "
        f"say which adapter to use; pass adapter= one of {sorted(ADAPTERS)}"
    )


def load_adapter(
    path: str | Path,
    adapter: str | None = None,
    device: torch.device | str | None = None,
    *,
    dtype: torch.dtype | None = None,
    max_length: int | None = None,
) -> PRMAdapter:
    """Load a PRM from a local directory and wrap it in its adapter.

    ``adapter`` defaults to the one named in ``stepwise_prm.json`` (else inferred from
    ``config.json``'s architecture). ``device`` defaults to CUDA when available, else CPU;
    ``dtype`` to bf16 on CUDA and fp32 on CPU. Only local files are read, remote code is never
    run (``trust_remote_code=False``; ``auto_map`` entries are ignored) and safetensors weights
    are preferred over ``pytorch_model.bin``.
    """
    import transformers
    from transformers import AutoConfig

    from selector.scoring.batching import default_dtype, resolve_device

    path = Path(path).expanduser()
    if not path.exists():
        raise FileNotFoundError(f"PRM checkpoint {path} does not exist")
    if not path.is_dir():
        raise CheckpointError(f"PRM checkpoint {path} is not a directory")
    config_file = path / "config.json"
    if not config_file.is_file():
        raise CheckpointError(f"{path} has no config.json; it is not a transformers checkpoint")
    raw_config = _read_json(config_file)
    prm_config = read_prm_config(path)

    name = adapter or (prm_config.adapter if prm_config else _infer_adapter(raw_config, path))
    if name not in ADAPTERS:
        raise CheckpointError(f"unknown adapter {name!r}; known: {sorted(ADAPTERS)}")
    cls = ADAPTERS[name]
    if prm_config is None or prm_config.adapter != name:
        if prm_config is not None:
            logger.warning(
                "%s names adapter %r; using %r with its defaults", path, prm_config.adapter, name
            )
        prm_config = _default_config(name)
    if max_length is not None:
        prm_config = replace(prm_config, max_length=int(max_length))

    for file in (config_file, path / "tokenizer_config.json"):
        if file.is_file() and "auto_map" in _read_json(file):
            logger.warning("ignoring custom code (auto_map) in %s: remote code is never run", file)

    dev = resolve_device(device)
    dt = dtype or default_dtype(dev)
    use_safetensors = _prefers_safetensors(path)
    common = {"local_files_only": True, "trust_remote_code": False}
    try:
        hf_config = AutoConfig.from_pretrained(path, **common)
    except (ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path}: model_type {raw_config.get('model_type')!r} is not built into transformers "
            f"(Stepwise never runs a checkpoint's own code): {exc}"
        ) from exc

    auto_cls = getattr(transformers, cls.auto_class)
    try:
        model, info = auto_cls.from_pretrained(
            path,
            config=hf_config,
            use_safetensors=use_safetensors,
            dtype=dt,
            output_loading_info=True,
            **common,
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"cannot load {path} as {cls.auto_class}: {exc}") from exc
    missing = [k for k in info.get("missing_keys", []) if k]
    if missing:
        raise CheckpointError(
            f"{path}: weights missing for {', '.join(sorted(missing)[:8])}: the checkpoint does "
            f"not match {type(model).__name__}; scoring with random weights would be meaningless"
        )
    tokenizer = _load_tokenizer(path, common)
    model.to(dev)
    return cls(model, tokenizer, prm_config, device=dev, path=path)


def _default_config(adapter: str) -> PRMConfig:
    """The configuration an adapter assumes when a checkpoint has no stepwise_prm.json."""
    if adapter == QwenPRMAdapter.name:
        return PRMConfig(
            adapter=adapter, labels=list(LABELS_2), separator=QWEN_SEPARATOR, max_length=4096
        )
    if adapter == TagTokenAdapter.name:
        return PRMConfig(adapter=adapter, labels=list(LABELS_2), max_length=2048)
    return PRMConfig(adapter=adapter)
