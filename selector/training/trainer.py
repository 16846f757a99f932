"""PRM training: rated examples → a checkpoint ``load_adapter`` loads.

:func:`train_prm` starts from a bootstrap model, a native checkpoint, any pretrained Hugging
Face base or a published PRM (:mod:`selector.training.bases`) and encodes with the scoring
adapter's own encoder, so training and scoring see the same tokens: the loss is taken at the
step-end positions only. For native models neutral is its own class (3 classes, in the native
order negative, neutral, positive); a published PRM keeps its head (2 classes, or one sigmoid
value) and neutral goes with ``neutral_is_positive``. LoRA (``peft``) is an option; bf16
autocast and gradient checkpointing on CUDA.
"""

from __future__ import annotations

import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from selector.evaluation import first_error_metrics, processbench_label, roc_auc
from selector.ratings import first_error
from selector.scoring.checkpoint import read_prm_config
from selector.scoring.inputs import PRMInput
from selector.training.bases import Trainable, load_trainable, lora_wrap, merged_state_dict
from selector.training.config import BOOTSTRAP_LR, FINETUNE_LR, LORA_LR, TrainingConfig
from selector.training.examples import TrainingExample
from selector.training.splits import split_by_problem

logger = logging.getLogger(__name__)

TRAINER_STATE = "trainer_state.pt"
TRAINING_RECORD = "training_record.json"


@dataclass
class TrainingResult:
    """What :func:`train_prm` did: where the checkpoint is, the loss curve, the counts."""

    out_dir: Path
    history: list[dict[str, Any]]
    val_metrics: dict[str, Any]
    n_train_examples: int
    n_val_examples: int
    n_train_labels: int
    n_val_labels: int
    held_out_problems: list[str]
    epochs_completed: int
    wall_time_s: float
    device: str
    resumed_from_epoch: int = 0
    # Validation loss of the starting weights (before the first epoch); None without a val set.
    initial_val_loss: float | None = None
    label_counts: dict[str, dict[str, int]] = field(default_factory=dict)

    @property
    def final_val_loss(self) -> float | None:
        return self.history[-1]["val_loss"] if self.history else None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["out_dir"] = str(self.out_dir)
        return data


@dataclass
class _Encoded:
    """One example ready for the model: token ids, separator positions, target classes."""

    input_ids: list[int]
    positions: list[int]
    targets: list[int]
    truncated: bool
    first_error: int | None  # of the scored steps' ratings


def _encode(trainable: Trainable, examples: Sequence[TrainingExample]):
    encoded = trainable.encode([PRMInput(e.problem, e.steps) for e in examples])
    out: list[_Encoded] = []
    for example, enc in zip(examples, encoded, strict=True):
        # Truncation scores only the first steps: train on exactly those.
        scored = example.ratings[: len(enc.positions)]
        targets = [trainable.rating_to_class[r] for r in scored]
        out.append(
            _Encoded(enc.input_ids, enc.positions, targets, enc.truncated, first_error(scored))
        )
    return out


def _batches(encoded: Sequence[_Encoded], budget: int, rng: random.Random | None):
    """Token-budget batches of similar length; shuffled order and ties when ``rng`` is given."""
    from selector.scoring.batching import plan_batches  # imports torch

    order = list(range(len(encoded)))
    if rng is not None:
        rng.shuffle(order)
    planned = plan_batches([len(encoded[i].input_ids) for i in order], budget)
    batches = [[order[j] for j in batch] for batch in planned]
    if rng is not None:
        rng.shuffle(batches)
    return batches


def _collate(encoded: Sequence[_Encoded], batch: Sequence[int], pad_id: int, device):
    import torch

    width = max(len(encoded[i].input_ids) for i in batch)
    ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    rows: list[int] = []
    cols: list[int] = []
    targets: list[int] = []
    for r, i in enumerate(batch):
        e = encoded[i]
        ids[r, : len(e.input_ids)] = torch.tensor(e.input_ids, dtype=torch.long)
        mask[r, : len(e.input_ids)] = 1
        rows.extend([r] * len(e.targets))
        cols.extend(e.positions[: len(e.targets)])
        targets.extend(e.targets)
    as_long = {"dtype": torch.long, "device": device}
    return (
        ids.to(device),
        mask.to(device),
        torch.tensor(rows, **as_long),
        torch.tensor(cols, **as_long),
        torch.tensor(targets, **as_long),
    )


def _evaluate(trainable: Trainable, model, encoded, budget, pad_id, device) -> dict[str, Any]:
    """Validation loss (mean CE per label) and metrics on held-out examples."""
    import torch

    from selector.scoring.device import autocast

    if not encoded or not any(e.targets for e in encoded):
        return {}
    model.eval()
    total_loss, n_labels, n_correct = 0.0, 0, 0
    step_scores: list[list[float]] = [[] for _ in encoded]
    with torch.no_grad(), autocast(device):
        for batch in _batches(encoded, budget, None):
            ids, mask, rows, cols, targets = _collate(encoded, batch, pad_id, device)
            if targets.numel() == 0:
                continue
            logits = trainable.logits_at(ids, mask, rows, cols).float()
            total_loss += float(trainable.loss(logits, targets, reduction="sum"))
            n_labels += int(targets.numel())
            n_correct += int((trainable.predicted(logits) == targets).sum())
            not_negative = trainable.p_not_negative(logits).cpu().tolist()
            start = 0
            for i in batch:
                n = len(encoded[i].targets)
                step_scores[i] = not_negative[start : start + n]
                start += n
    model.train()
    flat_scores = [s for scores in step_scores for s in scores]
    flat_positive = [t != 0 for e in encoded for t in e.targets]
    first_errors = [processbench_label(e.first_error) for e in encoded]
    metrics: dict[str, Any] = {
        "val_loss": total_loss / n_labels,
        "step_accuracy": n_correct / n_labels,
        "step_auc": roc_auc(flat_scores, flat_positive),
        "n_labels": n_labels,
        # Over the labeled prefixes: a prefix without −1 counts as "no error".
        "first_error": first_error_metrics(step_scores, first_errors),
    }
    return metrics


def _class_weights(encoded: Sequence[_Encoded], spec, n_classes: int) -> list[float] | None:
    """Per-class loss weights; a published 2-class (or sigmoid) head has (negative, positive)."""
    n = max(2, n_classes)
    if spec is None:
        return None
    if spec == "balanced":
        counts = Counter(t for e in encoded for t in e.targets)
        total = sum(counts.values())
        # Inverse frequency, normalised so a balanced set gets weight 1 for every class.
        return [total / (n * counts[c]) if counts[c] else 0.0 for c in range(n)]
    weights = [float(w) for w in spec]
    if len(weights) != n:
        names = "negative, neutral, positive" if n == 3 else "negative, positive"
        raise ValueError(f"class_weights needs {n} values ({names})")
    return weights


def _label_counts(examples: Iterable[TrainingExample]) -> dict[str, int]:
    names = {-1: "negative", 0: "neutral", 1: "positive"}
    counts = Counter(names[r] for e in examples for r in e.ratings)
    return {name: counts.get(name, 0) for name in names.values()}


def _save_state(out_dir: Path, state: dict[str, Any]) -> None:
    import torch

    tmp = out_dir / (TRAINER_STATE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / TRAINER_STATE)  # the state file is the commit point of an epoch


def train_prm(
    examples: Sequence[TrainingExample],
    config: TrainingConfig,
    *,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> TrainingResult:
    """Train a native 3-class PRM on ``examples`` as ``config`` says; write it to its ``out_dir``.

    After every epoch the checkpoint (``model.safetensors`` + ``config.json`` + tokenizer +
    ``stepwise_prm.json``), ``trainer_state.pt`` and ``training_record.json`` are written.
    ``progress(epoch, batch, info)`` is called after every batch. Deterministic for a seed on
    CPU.
    """
    import torch

    from selector.scoring.bootstrap import build_bootstrap_model
    from selector.scoring.device import autocast, resolve_device

    started = time.perf_counter()
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(config.device)
    if config.epochs < 1:
        raise ValueError("epochs must be at least 1")
    examples = [e for e in examples if e.steps]
    if not examples:
        raise ValueError("no training example has a rated step")

    state = None
    if config.resume and (out_dir / TRAINER_STATE).is_file():
        state = torch.load(out_dir / TRAINER_STATE, map_location="cpu", weights_only=False)
    elif config.resume:
        logger.info("no %s in %s: starting from scratch", TRAINER_STATE, out_dir)

    if state is not None:
        held = set(state["held_out_problems"])
        train_set = [e for e in examples if e.key not in held]
        val_set = [e for e in examples if e.key in held]
        held_out = sorted(held)
        model_dir = out_dir
    else:
        # A fresh start: a stale state left in out_dir must never be resumed onto new weights.
        (out_dir / TRAINER_STATE).unlink(missing_ok=True)
        train_set, val_set, held_out = split_by_problem(examples, config.val_problems, config.seed)
        if config.base is None:
            texts = dict.fromkeys(t for e in examples for t in (e.problem, *e.steps))
            build_bootstrap_model(
                list(texts), out_dir, seed=config.seed, **dict(config.bootstrap_options or {})
            )
            model_dir = out_dir
        else:
            model_dir = Path(config.base)
    if not train_set:
        raise ValueError("every problem is held out: nothing left to train on")

    base_config = read_prm_config(model_dir)
    bootstrap = config.base is None or (
        base_config is not None and base_config.base_model == "bootstrap"
    )
    lora = config.lora_rank is not None
    default_lr = BOOTSTRAP_LR if bootstrap else (LORA_LR if lora else FINETUNE_LR)
    lr = float(config.lr if config.lr is not None else default_lr)
    provenance = "bootstrap" if config.base is None else str(config.base)

    torch.manual_seed(config.seed)
    # Frozen LoRA base weights can stay in bf16 on CUDA; trained ones are fp32 (autocast).
    weights_dtype = torch.bfloat16 if lora and dev.type == "cuda" else torch.float32
    trainable = load_trainable(
        model_dir,
        dev,
        dtype=weights_dtype,
        neutral_is_positive=config.neutral_is_positive,
        max_length=config.max_length,
    )
    tokenizer, max_length = trainable.tokenizer, trainable.max_length
    checkpointing = (
        config.gradient_checkpointing
        if config.gradient_checkpointing is not None
        else dev.type == "cuda"
    )
    if checkpointing and getattr(trainable.model, "supports_gradient_checkpointing", False):
        trainable.model.gradient_checkpointing_enable({"use_reentrant": False})
        if lora:
            trainable.model.enable_input_require_grads()
    model = (
        lora_wrap(trainable, config.lora_rank, config.lora_alpha, config.lora_dropout)
        if lora
        else trainable.model
    )
    if state is not None:
        model.load_state_dict(state["model"])
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)

    train_enc = [e for e in _encode(trainable, train_set) if e.targets]
    val_enc = [e for e in _encode(trainable, val_set) if e.targets]
    n_train_labels = sum(len(e.targets) for e in train_enc)
    n_val_labels = sum(len(e.targets) for e in val_enc)
    weights = _class_weights(train_enc, config.class_weights, trainable.n_classes)
    weight_t = torch.tensor(weights, dtype=torch.float32, device=dev) if weights else None

    steps_per_epoch = len(_batches(train_enc, config.batch_tokens, random.Random(config.seed)))
    total_steps = max(1, steps_per_epoch * config.epochs)
    warmup = max(1, int(config.warmup_ratio * total_steps)) if config.warmup_ratio > 0 else 0

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    trained = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    groups = [
        {
            "params": [p for n, p in trained if not n.endswith(no_decay)],
            "weight_decay": config.weight_decay,
        },
        {
            "params": [p for n, p in trained if n.endswith(no_decay)],
            "weight_decay": 0.0,
        },
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule)
    history: list[dict[str, Any]] = []
    start_epoch = 0
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        # The schedule follows this call's ``epochs``; the restored step count keeps its place.
        history = list(state["history"])
        start_epoch = int(state["epoch"])
        torch.set_rng_state(state["rng"]["torch"])
        if dev.type == "cuda" and state["rng"].get("cuda") is not None:
            torch.cuda.set_rng_state(state["rng"]["cuda"], dev)

    hyper = {
        "base": provenance,
        "epochs": config.epochs,
        "lr": lr,
        "batch_tokens": config.batch_tokens,
        "seed": config.seed,
        "weight_decay": config.weight_decay,
        "warmup_ratio": config.warmup_ratio,
        "class_weights": weights,
        "max_grad_norm": config.max_grad_norm,
        "max_length": max_length,
        "val_problems": config.val_problems
        if isinstance(config.val_problems, int | float)
        else "explicit",
        "bootstrap_options": dict(config.bootstrap_options or {}),
        "model": trainable.kind,
        "neutral_is_positive": config.neutral_is_positive,
        "lora": {
            "rank": config.lora_rank,
            "alpha": config.lora_alpha,
            "dropout": config.lora_dropout,
        }
        if lora
        else None,
        "gradient_checkpointing": bool(checkpointing),
        "trained_parameters": sum(p.numel() for _, p in trained),
    }
    counts = {"train": _label_counts(train_set), "val": _label_counts(val_set)}

    def record(val_metrics: dict[str, Any], epochs_done: int) -> dict[str, Any]:
        return {
            "base": provenance,
            "device": str(dev),
            "torch": torch.__version__,
            "hyperparameters": hyper,
            "data": {
                "n_train_examples": len(train_enc),
                "n_val_examples": len(val_enc),
                "n_train_labels": n_train_labels,
                "n_val_labels": n_val_labels,
                "n_train_problems": len({e.key for e in train_set}),
                "n_val_problems": len(held_out),
                "n_truncated": sum(e.truncated for e in train_enc + val_enc),
                "label_counts": counts,
            },
            "held_out_problems": held_out,
            # What the gate's disjointness rests on: no held-out key is ever trained on.
            "train_problems": sorted({e.key for e in train_set}),
            "epochs_completed": epochs_done,
            "initial_val_loss": initial_val_loss,
            "history": history,
            "val_metrics": val_metrics,
            "wall_time_s": time.perf_counter() - started,
        }

    if state is not None:
        val_metrics: dict[str, Any] = dict(state["val_metrics"])
        initial_val_loss = state.get("initial_val_loss")
    else:
        val_metrics = {}
        initial_val_loss = _evaluate(
            trainable, model, val_enc, config.batch_tokens, pad_id, dev
        ).get("val_loss")
    model.train()
    for epoch in range(start_epoch, config.epochs):
        t0 = time.perf_counter()
        rng = random.Random(config.seed * 1_000_003 + epoch)  # per-epoch order: same after a resume
        batches = _batches(train_enc, config.batch_tokens, rng)
        loss_sum, label_sum = 0.0, 0
        for b, batch in enumerate(batches):
            ids, mask, rows, cols, targets = _collate(train_enc, batch, pad_id, dev)
            with autocast(dev):
                selected = trainable.logits_at(ids, mask, rows, cols)
            loss = trainable.loss(selected, targets, weight=weight_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if config.max_grad_norm:
                torch.nn.utils.clip_grad_norm_([p for _, p in trained], config.max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * int(targets.numel())
            label_sum += int(targets.numel())
            if progress is not None:
                progress(epoch, b + 1, {"batches": len(batches), "loss": float(loss.detach())})
        val_metrics = _evaluate(trainable, model, val_enc, config.batch_tokens, pad_id, dev)
        history.append(
            {
                "epoch": epoch + 1,
                "train_loss": loss_sum / max(1, label_sum),
                "val_loss": val_metrics.get("val_loss"),
                "lr": scheduler.get_last_lr()[0],
                "seconds": time.perf_counter() - t0,
            }
        )
        logger.info("epoch %d: %s", epoch + 1, history[-1])
        trainable.save(
            out_dir, base_model=provenance, state_dict=merged_state_dict(model) if lora else None
        )
        _save_state(
            out_dir,
            {
                "epoch": epoch + 1,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "rng": {
                    "torch": torch.get_rng_state(),
                    "cuda": torch.cuda.get_rng_state(dev) if dev.type == "cuda" else None,
                },
                "history": history,
                "held_out_problems": held_out,
                "val_metrics": val_metrics,
                "initial_val_loss": initial_val_loss,
                "hyperparameters": hyper,
            },
        )
        (out_dir / TRAINING_RECORD).write_text(
            json.dumps(record(val_metrics, epoch + 1), indent=2, default=str) + "\n",
            encoding="utf-8",
        )

    return TrainingResult(
        out_dir=out_dir,
        history=history,
        val_metrics=val_metrics,
        n_train_examples=len(train_enc),
        n_val_examples=len(val_enc),
        n_train_labels=n_train_labels,
        n_val_labels=n_val_labels,
        held_out_problems=held_out,
        epochs_completed=max(start_epoch, len(history)),
        wall_time_s=time.perf_counter() - started,
        device=str(dev),
        resumed_from_epoch=start_epoch,
        label_counts=counts,
        initial_val_loss=initial_val_loss,
    )
