"""PRM training: step labels → a native token-classification checkpoint.

Training data are :class:`TrainingExample` objects: a problem, its steps and one rating per
step (−1 negative, 0 neutral, +1 positive). Supervision stops at the first error: steps after
the first −1 are dropped, and an unfinished label (a ``None`` rating) contributes its rated
prefix. Neutral is its own class (3 classes, in the native order negative, neutral, positive).

From PRM800K records (as in ``shared/data/prm800k_examples.jsonl``):

* **Phase 2** (records whose question has ``pre_generated_steps``): the pre-generated steps
  (each step's first completion) with their ratings. The extra completions some phase-2 records
  carry at their last step are not part of the pre-generated solution and are left out.
* **Phase 1**: the path the labeler built, i.e. at each step the chosen completion, else the
  labeler's own (human) completion, else the path ends there. Human completions are written by
  the labeler to replace completions they rejected, so they count as **positive** steps (unless
  the record rates them). Every other rated completion of a step on that path becomes an extra
  example that ends at that step: the chosen prefix + the alternative with its rating.

:func:`train_prm` writes the checkpoint in the native format of :mod:`selector.scoring` (so
``load_adapter(out_dir)`` loads it) using the scoring package's own encoder, which places the
step separators whose logits are trained: cross-entropy over separator positions only.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import time
from collections import Counter
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)

RATINGS: tuple[int, ...] = (-1, 0, 1)
# Rating → class index in the native label order (negative, neutral, positive).
RATING_TO_CLASS: dict[int, int] = {-1: 0, 0: 1, 1: 2}
TRAINER_STATE = "trainer_state.pt"
TRAINING_RECORD = "training_record.json"
# Learning rates for a randomly initialised (bootstrap) encoder and a pretrained base.
BOOTSTRAP_LR = 5e-4
FINETUNE_LR = 2e-5


@dataclass
class TrainingExample:
    """A problem, its steps and their ratings, normalised to supervision up to the first error.

    ``ratings`` may hold ``None`` for unrated steps: the example keeps the prefix before the
    first ``None``. Steps after the first −1 are dropped. ``problem_id`` (optional) is the key
    validation hold-out groups by; without it the problem text is.
    """

    problem: str
    steps: list[str]
    ratings: list[int]
    problem_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.ratings):
            raise ValueError(f"{len(self.steps)} steps but {len(self.ratings)} ratings")
        steps: list[str] = []
        ratings: list[int] = []
        for step, rating in zip(self.steps, self.ratings, strict=True):
            if rating is None:
                break
            if isinstance(rating, bool) or int(rating) not in RATINGS or int(rating) != rating:
                raise ValueError(f"rating {rating!r} is not one of {RATINGS}")
            steps.append(str(step))
            ratings.append(int(rating))
            if rating == -1:
                break
        self.steps, self.ratings = steps, ratings

    @property
    def key(self) -> str:
        """What validation hold-out groups by: ``problem_id``, else the problem text."""
        return self.problem_id if self.problem_id is not None else self.problem

    @property
    def first_error(self) -> int:
        """Index of the −1 step (always the last one when present), or −1."""
        return len(self.ratings) - 1 if self.ratings and self.ratings[-1] == -1 else -1


def example_from_first_error(
    problem: str, steps: Sequence[str], first_error: int, *, problem_id: str | None = None
) -> TrainingExample:
    """ProcessBench-style label → example: +1 before ``first_error``, −1 at it (−1: all +1)."""
    if first_error >= len(steps):
        raise ValueError(f"first_error {first_error} is past the last of {len(steps)} steps")
    n = len(steps) if first_error < 0 else first_error + 1
    ratings = [1] * n
    if first_error >= 0:
        ratings[-1] = -1
    return TrainingExample(problem, list(steps[:n]), ratings, problem_id)


def _rating(completion: Mapping[str, Any] | None) -> int | None:
    if completion is None:
        return None
    rating = completion.get("rating")
    return None if rating is None else int(rating)


def is_phase2(record: Mapping[str, Any]) -> bool:
    """Phase-2 records rate a pre-generated solution; phase-1 records were built step by step."""
    return "pre_generated_steps" in record.get("question", {})


def examples_from_prm800k(
    record: Mapping[str, Any], *, alternatives: bool = True, problem_id: str | None = None
) -> list[TrainingExample]:
    """Training examples from one PRM800K record (see the module docstring for the rules).

    ``alternatives`` (phase 1 only) adds one example per alternative rated completion.
    Examples with no rated step are left out.
    """
    problem = record["question"]["problem"]
    steps = record["label"]["steps"]
    out: list[TrainingExample] = []

    if is_phase2(record):
        texts: list[str] = []
        ratings: list[int | None] = []
        for step in steps:
            first = step["completions"][0] if step["completions"] else None
            if first is None:
                break
            texts.append(first["text"])
            ratings.append(_rating(first))
        example = TrainingExample(problem, texts, ratings, problem_id)
        return [example] if example.steps else []

    path_texts: list[str] = []
    path_ratings: list[int] = []
    extras: list[TrainingExample] = []
    for step in steps:
        chosen = step.get("chosen_completion")
        completions = step.get("completions") or []
        if alternatives:
            for j, completion in enumerate(completions):
                rating = _rating(completion)
                if j == chosen or rating is None:
                    continue
                extras.append(
                    TrainingExample(
                        problem,
                        [*path_texts, completion["text"]],
                        [*path_ratings, rating],
                        problem_id,
                    )
                )
        human = step.get("human_completion")
        if chosen is not None:
            text, rating = completions[chosen]["text"], _rating(completions[chosen])
        elif human is not None:
            # A labeler's own replacement step: positive unless the record rates it.
            text = human["text"]
            rating = 1 if human.get("rating") is None else int(human["rating"])
        else:
            break
        if rating is None:
            break
        path_texts.append(text)
        path_ratings.append(rating)
        if rating == -1:
            break
    main = TrainingExample(problem, path_texts, path_ratings, problem_id)
    if main.steps:
        out.append(main)
    out.extend(e for e in extras if e.steps)
    return out


def load_prm800k_examples(
    path: str | Path, *, alternatives: bool = True, phases: Collection[int] = (1, 2)
) -> list[TrainingExample]:
    """All examples from a PRM800K JSONL file (records of the given phases)."""
    out: list[TrainingExample] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            if (2 if is_phase2(record) else 1) in phases:
                out.extend(examples_from_prm800k(record, alternatives=alternatives))
    return out


# ---------------------------------------------------------------------------------------------
# Training


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


def split_by_problem(
    examples: Sequence[TrainingExample], val_problems: float | Collection[str], seed: int
) -> tuple[list[TrainingExample], list[TrainingExample], list[str]]:
    """Hold out whole problems: a seeded fraction of the distinct keys, or an explicit set."""
    keys = sorted({e.key for e in examples})
    if isinstance(val_problems, int | float) and not isinstance(val_problems, bool):
        if not 0 <= val_problems < 1:
            raise ValueError("a validation fraction must be in [0, 1)")
        n_val = round(val_problems * len(keys))
        if val_problems > 0 and len(keys) > 1:
            n_val = min(max(n_val, 1), len(keys) - 1)
        held = set(random.Random(seed).sample(keys, n_val))
    else:
        held = set(val_problems)
    train = [e for e in examples if e.key not in held]
    val = [e for e in examples if e.key in held]
    return train, val, sorted(held & set(keys))


def _encode(tokenizer, prm_config, examples: Sequence[TrainingExample], max_length: int):
    from selector.scoring.adapters import PRMInput, encode_native_many

    encoded = encode_native_many(
        tokenizer,
        [PRMInput(e.problem, e.steps) for e in examples],
        separator=prm_config.separator,
        max_length=max_length,
        max_problem_tokens=prm_config.max_problem_tokens,
    )
    out: list[_Encoded] = []
    for example, enc in zip(examples, encoded, strict=True):
        # Truncation scores only the first steps: train on exactly those.
        targets = [RATING_TO_CLASS[r] for r in example.ratings[: len(enc.positions)]]
        out.append(_Encoded(enc.input_ids, enc.positions, targets, enc.truncated))
    return out


def _batches(encoded: Sequence[_Encoded], budget: int, rng: random.Random | None):
    """Token-budget batches of similar length; shuffled order and ties when ``rng`` is given."""
    from selector.scoring.batching import plan_batches

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


def _autocast(device: torch.device):
    import torch

    if device.type == "cuda":
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _evaluate(model, encoded, budget, pad_id, device) -> dict[str, Any]:
    """Validation loss (mean CE per label) and metrics on held-out examples."""
    import torch

    from selector.evaluation import first_error_metrics, roc_auc

    if not encoded or not any(e.targets for e in encoded):
        return {}
    model.eval()
    total_loss, n_labels, n_correct = 0.0, 0, 0
    step_scores: list[list[float]] = [[] for _ in encoded]
    with torch.no_grad(), _autocast(device):
        for batch in _batches(encoded, budget, None):
            ids, mask, rows, cols, targets = _collate(encoded, batch, pad_id, device)
            if targets.numel() == 0:
                continue
            logits = model(input_ids=ids, attention_mask=mask).logits[rows, cols].float()
            loss = torch.nn.functional.cross_entropy(logits, targets, reduction="sum")
            total_loss += float(loss)
            n_labels += int(targets.numel())
            n_correct += int((logits.argmax(-1) == targets).sum())
            not_negative = (1 - logits.softmax(-1)[:, 0]).cpu().tolist()
            start = 0
            for i in batch:
                n = len(encoded[i].targets)
                step_scores[i] = not_negative[start : start + n]
                start += n
    model.train()
    flat_scores = [s for scores in step_scores for s in scores]
    flat_positive = [t != 0 for e in encoded for t in e.targets]
    first_errors = [e.targets.index(0) if 0 in e.targets else -1 for e in encoded]
    metrics: dict[str, Any] = {
        "val_loss": total_loss / n_labels,
        "step_accuracy": n_correct / n_labels,
        "step_auc": roc_auc(flat_scores, flat_positive),
        "n_labels": n_labels,
        # Over the labeled prefixes: a prefix without −1 counts as "no error".
        "first_error": first_error_metrics(step_scores, first_errors),
    }
    return metrics


def _class_weights(encoded: Sequence[_Encoded], spec) -> list[float] | None:
    if spec is None:
        return None
    if spec == "balanced":
        counts = Counter(t for e in encoded for t in e.targets)
        total = sum(counts.values())
        # Inverse frequency, normalised so a balanced set gets weight 1 for every class.
        return [total / (3 * counts[c]) if counts[c] else 0.0 for c in range(3)]
    weights = [float(w) for w in spec]
    if len(weights) != 3:
        raise ValueError("class_weights needs 3 values (negative, neutral, positive)")
    return weights


def _label_counts(examples: Iterable[TrainingExample]) -> dict[str, int]:
    names = {-1: "negative", 0: "neutral", 1: "positive"}
    counts = Counter(names[r] for e in examples for r in e.ratings)
    return {name: counts.get(name, 0) for name in names.values()}


def _load_native(path: Path, device: torch.device):
    """Model (fp32, train mode), tokenizer and PRM config of a native checkpoint."""
    import torch

    from selector.scoring.adapters import TokenClassificationAdapter, load_adapter
    from selector.scoring.checkpoint import CheckpointError

    adapter = load_adapter(path, device=device, dtype=torch.float32)
    if not isinstance(adapter, TokenClassificationAdapter):
        raise CheckpointError(f"{path} is a {adapter.name} PRM; training needs a native one")
    if list(adapter.labels) != ["negative", "neutral", "positive"]:
        raise CheckpointError(f"{path}: native class order must be negative, neutral, positive")
    return adapter.model.train(), adapter.tokenizer, adapter.config, adapter.max_length


def _save_state(out_dir: Path, state: dict[str, Any]) -> None:
    import torch

    tmp = out_dir / (TRAINER_STATE + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, out_dir / TRAINER_STATE)  # the state file is the commit point of an epoch


def train_prm(
    examples: Sequence[TrainingExample],
    *,
    base: Path | None,
    out_dir: Path,
    val_problems: float | Collection[str] = 0.1,
    epochs: int = 3,
    lr: float | None = None,
    batch_tokens: int = 8192,
    seed: int = 0,
    device: str | torch.device | None = None,
    resume: bool = False,
    weight_decay: float = 0.01,
    warmup_ratio: float = 0.1,
    class_weights: Sequence[float] | Literal["balanced"] | None = None,
    max_grad_norm: float = 1.0,
    bootstrap_options: Mapping[str, Any] | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> TrainingResult:
    """Train a native 3-class PRM on ``examples`` and write it to ``out_dir``.

    * ``base``: a native checkpoint directory to fine-tune; None builds a bootstrap model
      (tokenizer + small encoder, :func:`selector.scoring.bootstrap.build_bootstrap_model`,
      options from ``bootstrap_options``) from the examples' own text first.
    * ``val_problems``: a fraction of the distinct problems (seeded) or an explicit set of
      problem keys (``problem_id`` or problem text) held out for validation.
    * ``lr``: None means 5e-4 for a bootstrap (randomly initialised) model, 2e-5 otherwise.
      AdamW, linear warmup over ``warmup_ratio`` of all steps, then linear decay to zero at
      the end of ``epochs``.
    * ``batch_tokens``: padded tokens per batch (batch size × longest input).
    * ``device``: None → CUDA when available, else CPU. bf16 autocast on CUDA.
    * ``resume``: continue from ``out_dir/trainer_state.pt`` (weights, optimizer, scheduler,
      RNG states, epoch, history, held-out problems) up to ``epochs`` in total. The schedule is
      defined by ``epochs``: resuming an interrupted run with the same ``epochs`` reproduces
      the uninterrupted run on CPU; resuming a finished run with more epochs follows the longer
      schedule from the step reached (the learning rate rises again). ``resume=False`` starts
      over, discarding any state in ``out_dir``.

    After every epoch the checkpoint (``model.safetensors`` + ``config.json`` + tokenizer +
    ``stepwise_prm.json``), ``trainer_state.pt`` and ``training_record.json`` are written.
    Deterministic for a seed on CPU.
    """
    import torch

    from selector.scoring.batching import resolve_device
    from selector.scoring.bootstrap import build_bootstrap_model
    from selector.scoring.checkpoint import read_prm_config, save_native_checkpoint

    started = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    dev = resolve_device(device)
    if epochs < 1:
        raise ValueError("epochs must be at least 1")
    examples = [e for e in examples if e.steps]
    if not examples:
        raise ValueError("no training example has a rated step")

    state = None
    if resume and (out_dir / TRAINER_STATE).is_file():
        state = torch.load(out_dir / TRAINER_STATE, map_location="cpu", weights_only=False)
    elif resume:
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
        train_set, val_set, held_out = split_by_problem(examples, val_problems, seed)
        if base is None:
            texts = dict.fromkeys(t for e in examples for t in (e.problem, *e.steps))
            build_bootstrap_model(list(texts), out_dir, seed=seed, **dict(bootstrap_options or {}))
            model_dir = out_dir
        else:
            model_dir = Path(base)
    if not train_set:
        raise ValueError("every problem is held out: nothing left to train on")

    base_config = read_prm_config(model_dir)
    bootstrap = base is None or (base_config is not None and base_config.base_model == "bootstrap")
    lr = float(lr if lr is not None else (BOOTSTRAP_LR if bootstrap else FINETUNE_LR))
    provenance = "bootstrap" if base is None else str(base)

    torch.manual_seed(seed)
    model, tokenizer, prm_config, max_length = _load_native(model_dir, dev)
    if state is not None:
        model.load_state_dict(state["model"])
    pad_id = next((t for t in (tokenizer.pad_token_id, tokenizer.eos_token_id) if t is not None), 0)

    train_enc = [e for e in _encode(tokenizer, prm_config, train_set, max_length) if e.targets]
    val_enc = [e for e in _encode(tokenizer, prm_config, val_set, max_length) if e.targets]
    n_train_labels = sum(len(e.targets) for e in train_enc)
    n_val_labels = sum(len(e.targets) for e in val_enc)
    weights = _class_weights(train_enc, class_weights)
    weight_t = torch.tensor(weights, dtype=torch.float32, device=dev) if weights else None

    steps_per_epoch = len(_batches(train_enc, batch_tokens, random.Random(seed)))
    total_steps = max(1, steps_per_epoch * epochs)
    warmup = max(1, int(warmup_ratio * total_steps)) if warmup_ratio > 0 else 0

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))

    no_decay = ("bias", "LayerNorm.weight", "layer_norm.weight", "norm.weight")
    groups = [
        {
            "params": [p for n, p in model.named_parameters() if not n.endswith(no_decay)],
            "weight_decay": weight_decay,
        },
        {
            "params": [p for n, p in model.named_parameters() if n.endswith(no_decay)],
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
        "epochs": epochs,
        "lr": lr,
        "batch_tokens": batch_tokens,
        "seed": seed,
        "weight_decay": weight_decay,
        "warmup_ratio": warmup_ratio,
        "class_weights": weights,
        "max_grad_norm": max_grad_norm,
        "max_length": max_length,
        "val_problems": val_problems if isinstance(val_problems, int | float) else "explicit",
        "bootstrap_options": dict(bootstrap_options or {}),
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
        initial_val_loss = _evaluate(model, val_enc, batch_tokens, pad_id, dev).get("val_loss")
    model.train()
    for epoch in range(start_epoch, epochs):
        t0 = time.perf_counter()
        rng = random.Random(seed * 1_000_003 + epoch)  # per-epoch order: same after a resume
        batches = _batches(train_enc, batch_tokens, rng)
        loss_sum, label_sum = 0.0, 0
        for b, batch in enumerate(batches):
            ids, mask, rows, cols, targets = _collate(train_enc, batch, pad_id, dev)
            with _autocast(dev):
                logits = model(input_ids=ids, attention_mask=mask).logits
            selected = logits[rows, cols].float()
            loss = torch.nn.functional.cross_entropy(selected, targets, weight=weight_t)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if max_grad_norm:
                torch.nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
            optimizer.step()
            scheduler.step()
            loss_sum += float(loss.detach()) * int(targets.numel())
            label_sum += int(targets.numel())
            if progress is not None:
                progress(epoch, b + 1, {"batches": len(batches), "loss": float(loss.detach())})
        val_metrics = _evaluate(model, val_enc, batch_tokens, pad_id, dev)
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
        save_native_checkpoint(
            model,
            tokenizer,
            out_dir,
            separator=prm_config.separator,
            max_length=int(prm_config.max_length),
            max_problem_tokens=prm_config.max_problem_tokens,
            base_model=provenance,
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
