"""The ``stepwise_prm.json`` file beside a PRM's weights, and saving native checkpoints.

See the package docstring (:mod:`selector.scoring`) for the full checkpoint format.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selector.scoring.formulas import LABELS_2, LABELS_3, NEGATIVE, NEUTRAL, POSITIVE

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

logger = logging.getLogger(__name__)

PRM_CONFIG_NAME = "stepwise_prm.json"
FORMAT_VERSION = 1

NATIVE_ADAPTER = "token-classification"
NATIVE_SEPARATOR = "[STEP]"
QWEN_SEPARATOR = "<extra_0>"
QWEN_SYSTEM_PROMPT = "Please reason step by step, and put your final answer within \\boxed{}."


class CheckpointError(ValueError):
    """A checkpoint directory that cannot be loaded (missing files, wrong format, bad config)."""


@dataclass
class PRMConfig:
    """Contents of ``stepwise_prm.json``. Fields not used by an adapter are ignored by it."""

    adapter: str = NATIVE_ADAPTER
    format_version: int = FORMAT_VERSION
    # Class names in class-index order (index i = logit i).
    labels: list[str] = field(default_factory=lambda: list(LABELS_3))
    # Longest input in tokens (all special and template tokens included).
    max_length: int = 512
    # Problem tokens kept before steps; None means max_length // 2.
    max_problem_tokens: int | None = None
    # token-classification and qwen-prm: the token that follows every step.
    separator: str = NATIVE_SEPARATOR
    # qwen-prm: the system message of the chat prompt.
    system_prompt: str = QWEN_SYSTEM_PROMPT
    # tag-token (Math-Shepherd): tag after each step, good/bad tokens read at the tag.
    tag: str = "ки"
    good: str = "+"
    bad: str = "-"
    step_template: str = "Step {i}: {step}"
    # Provenance only: "bootstrap", a base model path or name.
    base_model: str | None = None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PRMConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            logger.warning("ignoring unknown keys in %s: %s", PRM_CONFIG_NAME, ", ".join(unknown))
        cfg = cls(**{k: v for k, v in data.items() if k in known})
        cfg.validate()
        return cfg

    def validate(self) -> None:
        if self.format_version != FORMAT_VERSION:
            raise CheckpointError(
                f"{PRM_CONFIG_NAME}: format_version {self.format_version} is not supported "
                f"(expected {FORMAT_VERSION})"
            )
        labels = list(self.labels)
        if sorted(labels) not in (sorted(LABELS_3), sorted(LABELS_2)):
            raise CheckpointError(
                f"{PRM_CONFIG_NAME}: labels must be a permutation of {list(LABELS_3)} or "
                f"{list(LABELS_2)}, got {labels}"
            )
        if int(self.max_length) < 8:
            raise CheckpointError(f"{PRM_CONFIG_NAME}: max_length {self.max_length} is too small")


def read_prm_config(path: str | Path) -> PRMConfig | None:
    """The ``stepwise_prm.json`` in ``path``, or None when the directory has none."""
    file = Path(path) / PRM_CONFIG_NAME
    if not file.is_file():
        return None
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise CheckpointError(f"{file}: invalid JSON ({exc})") from exc
    if not isinstance(data, dict):
        raise CheckpointError(f"{file}: expected a JSON object")
    return PRMConfig.from_json(data)


def write_prm_config(path: str | Path, config: PRMConfig) -> Path:
    """Write ``stepwise_prm.json`` into the directory ``path``; return the file."""
    config.validate()
    file = Path(path) / PRM_CONFIG_NAME
    file.write_text(json.dumps(config.to_json(), indent=2, ensure_ascii=False) + "\n", "utf-8")
    return file


def add_separator_token(
    tokenizer: PreTrainedTokenizerBase,
    model: PreTrainedModel | None = None,
    separator: str = NATIVE_SEPARATOR,
) -> int:
    """Make ``separator`` a special token of ``tokenizer`` (resizing ``model``'s embeddings).

    For turning any base model into a native PRM; returns the separator's id. A pad token is
    added too when the tokenizer has none (batched scoring pads).
    """
    special: dict[str, Any] = {}
    if tokenizer.pad_token is None:
        special["pad_token"] = tokenizer.eos_token or "[PAD]"
    if separator not in tokenizer.get_vocab():
        special["additional_special_tokens"] = [separator]
    if special:
        tokenizer.add_special_tokens(special, replace_extra_special_tokens=False)
    if model is not None and len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    return int(tokenizer.convert_tokens_to_ids(separator))


def save_native_checkpoint(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    out_dir: str | Path,
    *,
    separator: str = NATIVE_SEPARATOR,
    max_length: int = 512,
    max_problem_tokens: int | None = None,
    base_model: str | None = None,
    state_dict: dict[str, Any] | None = None,
) -> Path:
    """Save a 3-class token-classification PRM in the native Stepwise format.

    Writes ``config.json`` + ``model.safetensors`` (the model), the tokenizer files and
    ``stepwise_prm.json``; returns ``out_dir``. The model's class order must be
    negative=0, neutral=1, positive=2. ``state_dict`` replaces the model's own weights (LoRA
    training saves its merged weights this way).
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if model.config.num_labels != 3:
        raise CheckpointError(
            f"a native PRM has 3 labels, this model has {model.config.num_labels}"
        )
    sep_id = tokenizer.convert_tokens_to_ids(separator)
    if sep_id is None or sep_id == tokenizer.unk_token_id:
        raise CheckpointError(f"separator {separator!r} is not in the tokenizer's vocabulary")
    model.config.id2label = dict(enumerate(LABELS_3))
    model.config.label2id = {name: i for i, name in enumerate(LABELS_3)}
    model.save_pretrained(out, state_dict=state_dict)  # transformers 5 writes safetensors
    tokenizer.save_pretrained(out)
    write_prm_config(
        out,
        PRMConfig(
            adapter=NATIVE_ADAPTER,
            labels=[NEGATIVE, NEUTRAL, POSITIVE],
            max_length=int(max_length),
            max_problem_tokens=max_problem_tokens,
            separator=separator,
            base_model=base_model,
        ),
    )
    return out
