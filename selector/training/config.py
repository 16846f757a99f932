"""How a PRM is trained: `TrainingConfig`, every setting of `train_prm` with its default."""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

# Learning rates for a randomly initialised (bootstrap) encoder, a pretrained base trained in
# full, and LoRA adapters on a pretrained base.
BOOTSTRAP_LR = 5e-4
FINETUNE_LR = 2e-5
LORA_LR = 2e-4


@dataclass
class TrainingConfig:
    """Settings of one `train_prm` run (in the style of TRL's ``PRMConfig``).

    * ``out_dir``: where the checkpoint, ``trainer_state.pt`` and ``training_record.json`` go.
    * ``base``: a local directory to start from (:func:`selector.training.bases.load_trainable`):
      a native checkpoint, a published PRM (qwen-prm / skywork-prm, trained on with its own
      head) or any Hugging Face encoder or decoder (given the separator token and a new 3-class
      head); None builds a bootstrap model (tokenizer + small encoder,
      :func:`selector.scoring.bootstrap.build_bootstrap_model`, options from
      ``bootstrap_options``) from the examples' own text first.
      :func:`selector.training.bases.default_base` offers all-MiniLM-L6-v2 when installed.
    * ``val_problems``: a fraction of the distinct problems (seeded) or an explicit set of
      problem keys (``problem_id`` or problem text) held out for validation.
    * ``lr``: None means `BOOTSTRAP_LR` for a bootstrap (randomly initialised) model,
      `LORA_LR` with LoRA, `FINETUNE_LR` otherwise. AdamW, linear warmup over
      ``warmup_ratio`` of all steps, then linear decay to zero at the end of ``epochs``.
    * ``batch_tokens``: padded tokens per batch (batch size × longest input).
    * ``device``: None → CUDA when available, else CPU. bf16 autocast on CUDA.
    * ``resume``: continue from ``out_dir/trainer_state.pt`` (weights, optimizer, scheduler,
      RNG states, epoch, history, held-out problems) up to ``epochs`` in total. The schedule is
      defined by ``epochs``: resuming an interrupted run with the same ``epochs`` reproduces
      the uninterrupted run on CPU; resuming a finished run with more epochs follows the longer
      schedule from the step reached (the learning rate rises again). ``resume=False`` starts
      over, discarding any state in ``out_dir``.
    * ``class_weights``: per-class loss weights (negative, neutral, positive; a published
      PRM's head: negative, positive), ``"balanced"`` (inverse frequency) or None.
    * ``neutral_is_positive``: for a published PRM's 2-way head, whether a 0 rating trains as
      positive (else negative); native models keep neutral as its own class.
    * ``lora_rank``: None trains every weight; a rank puts LoRA adapters (``peft``) on every
      linear layer and trains them and the head only (the checkpoint holds merged weights).
    * ``gradient_checkpointing``: None means on for CUDA, off on CPU.
    * ``max_length``: longest training input; None keeps the checkpoint's (a new pretrained
      base: 512 or its position limit). The checkpoint written scores with the same limit.
    """

    out_dir: Path
    base: Path | None = None
    val_problems: float | Collection[str] = 0.1
    epochs: int = 3
    lr: float | None = None
    batch_tokens: int = 8192
    seed: int = 0
    device: str | torch.device | None = None
    resume: bool = False
    weight_decay: float = 0.01
    warmup_ratio: float = 0.1
    class_weights: Sequence[float] | Literal["balanced"] | None = None
    max_grad_norm: float = 1.0
    bootstrap_options: Mapping[str, Any] | None = None
    neutral_is_positive: bool = True
    lora_rank: int | None = None
    lora_alpha: float = 16.0
    lora_dropout: float = 0.05
    gradient_checkpointing: bool | None = None
    max_length: int | None = None
