"""The active-learning loop, simulated over data with known step truth (no Django, no Celery).

Simulated labelers label the samples a strategy selects from known truth: +1 before the first
error, −1 at it (or +1 throughout when there is none), i.e. what a careful PRM800K labeler
would do. Two sources of truth:

* ``processbench``: ProcessBench's expert first-error labels (``data/processbench_math.jsonl``);
  a sample's final answer counts as wrong when ``final_answer_correct`` is false (ProcessBench
  has no ground-truth answer to grade against).
* ``teacher``: a teacher PRM's verdicts on a pool of graded solutions
  (``data/math_cot_samples.jsonl`` by default): the first error is the first step whose
  P(negative) exceeds 0.2, the paper's threshold for its large-scale synthetic supervision.

One run, for each seed:

1. A fixed set of held-out problems (a stable hash of the problem text, `eval_fraction`) is the
   evaluation set; the rest is the pool.
2. Round 0: every strategy starts from the same uniformly random batch of labels.
3. After each round a PRM is trained from the same initial weights on all labels so far
   (`selector.training.train_prm`), evaluated on the held-out set (first-error F1 as
   ProcessBench defines it, threshold 0.5 on 1 − P(negative); step-level AUC; validation
   cross-entropy), and used to score the remaining pool.
4. The next batch (``budget / rounds`` solutions, so budgets are equal at every round):
   - ``global``: Stepwise's global selection (`selector.selection.select`, K = the batch,
     80% the most convincing wrong-answer samples, the rest the top scores);
   - ``per_problem``: per-problem selection (K per problem, same 80% rule) over the pool,
     taking whole problems in a random order until the batch is full (per-problem selection
     ranks within a problem, not across problems);
   - ``random``: uniformly random unlabeled samples.

The data-efficiency ratio of a strategy is the number of labels ``random`` needs to reach that
strategy's final quality (linear interpolation of random's mean curve) divided by the labels
the strategy used; when random never gets there within the budget the ratio is only bounded
below (budget / labels), and that is reported as such.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from itertools import pairwise
from pathlib import Path
from typing import Any

import numpy as np

from selector.evaluation import (
    GradedSolution,
    choose_threshold,
    evaluate_checkpoint,
    first_error_metrics,
    processbench_label,
    step_class_probs,
)
from selector.promotion import METRICS as PROMOTION_METRICS
from selector.ratings import first_error
from selector.scoring.bootstrap import build_bootstrap_model
from selector.scoring.loading import get_adapter, load_adapter
from selector.selection import fingerprints_to_array, select, steps_fingerprint
from selector.simulation.bases import native_from_base
from selector.simulation.efficiency import bootstrap_ratio
from selector.training import (
    BOOTSTRAP_LR,
    FINETUNE_LR,
    TrainingConfig,
    TrainingExample,
    example_from_first_error,
    train_prm,
    unit_hash,
    validation_keys,
)

logger = logging.getLogger(__name__)


STRATEGIES = ("per_problem", "global", "random")
METRICS = ("step_auc", "f1", "val_loss")
# Each metric's name among the promotion metrics, which know whether higher is better.
_PROMOTION_NAME = {"step_auc": "step_auc", "f1": "first_error_f1", "val_loss": "val_loss"}
TEACHER_THRESHOLD = 0.2
#: Small by default, so a default run fits two shared CPU cores (~16 min a seed there). 512
#: tokens hold the problem and ~4 ProcessBench steps (at 256 only ~1.8 steps fit and 2/3 of
#: first errors fall out); hidden 32 × 1 layer learned nothing measurable in 400 labels.
DEFAULT_MODEL = {"hidden": 64, "layers": 2, "heads": 2, "vocab_size": 1000, "max_length": 512}


@dataclass
class SimItem:
    """One solution with its known truth."""

    id: str
    problem: str
    steps: list[str]
    wrong: bool  # the final answer is wrong
    first_error: int  # ProcessBench's label: the first wrong step, −1 when there is none
    is_correct: bool | None = None
    answer: str | None = None

    def ratings(self) -> list[int]:
        """A simulated labeler's ratings: +1 before the first error, −1 at it."""
        return self.example().ratings

    def example(self) -> TrainingExample:
        """The label as a training example (steps after the first error are not rated)."""
        return example_from_first_error(
            self.problem, self.steps, self.first_error, problem_id=self.id
        )


@dataclass
class SimConfig:
    strategies: Sequence[str] = STRATEGIES
    budget: int = 400
    rounds: int = 5
    seeds: Sequence[int] = (0,)
    eval_fraction: float = 0.2
    k_per_problem: int = 1
    wrong_fraction: float = 0.8
    epochs: int = 6
    batch_tokens: int = 2048
    model: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_MODEL))
    metric: str = "step_auc"
    device: str | None = None
    lr: float | None = None  # None: the bootstrap (or, with `base`, fine-tuning) rate
    base: str | None = None  # a pretrained encoder or native PRM; None: a bootstrap encoder

    def batches(self) -> list[int]:
        """Labels added per round: equal shares, the remainder spread over the first rounds."""
        base, extra = divmod(self.budget, self.rounds)
        return [base + (1 if r < extra else 0) for r in range(self.rounds)]


# --- sources ---------------------------------------------------------------------------------


def load_processbench(path: str | Path, limit: int | None = None) -> list[SimItem]:
    """ProcessBench records: steps, expert first-error label, final-answer correctness."""
    items = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            r = json.loads(line)
            steps = [str(s) for s in r["steps"]]
            label = int(r["label"])
            if not steps or label >= len(steps):
                continue
            correct = bool(r["final_answer_correct"])
            items.append(SimItem(str(r["id"]), r["problem"], steps, not correct, label, correct))
            if limit is not None and len(items) >= limit:
                break
    return items


def split_response(response: str) -> list[str]:
    """Steps of a free-text solution: its blank-line separated paragraphs."""
    return [p.strip() for p in response.split("\n\n") if p.strip()]


def teacher_first_errors(
    adapter: Any, samples: Sequence[tuple[str, Sequence[str]]], threshold: float = TEACHER_THRESHOLD
) -> list[tuple[int, int]]:
    """(first step with P(negative) > threshold or −1, steps scored) per sample."""
    labels = list(adapter.labels)
    out = []
    for probs in step_class_probs(adapter, samples):
        if "negative" in labels:
            negative = probs[:, labels.index("negative")]
        else:
            negative = 1.0 - probs[:, labels.index("positive")]
        wrong = np.flatnonzero(negative > threshold)
        out.append((int(wrong[0]) if len(wrong) else -1, len(probs)))
    return out


def load_teacher_items(
    pool: str | Path,
    teacher: str | Path,
    *,
    threshold: float = TEACHER_THRESHOLD,
    limit: int | None = None,
    device: str | None = None,
) -> list[SimItem]:
    """Graded solutions (math_cot format) labeled by a teacher PRM thresholded at P(neg)."""
    records = []
    with open(pool, encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                records.append(json.loads(line))
    raw = []
    for r in records:
        for j, s in enumerate(r["samples"]):
            steps = split_response(s["response"])
            if steps:
                correct = bool(s["is_correct"])
                raw.append((f"{r['idx']}/{j}", r["problem"], steps, correct, s.get("pred")))
    raw = raw[:limit]
    adapter = get_adapter(teacher, device=device)
    verdicts = teacher_first_errors(adapter, [(p, s) for _, p, s, _, _ in raw], threshold)
    items = []
    for (id_, problem, steps, correct, pred), (error, scored) in zip(raw, verdicts, strict=True):
        # Steps the teacher could not see (truncated input) carry no label: drop them.
        steps = steps[: max(1, scored)]
        items.append(SimItem(id_, problem, steps, not correct, error, correct, pred))
    return items


def train_teacher(
    processbench: str | Path,
    out_dir: Path,
    *,
    model: dict[str, Any] | None = None,
    epochs: int = 6,
    batch_tokens: int = 2048,
    seed: int = 0,
    device: str | None = None,
) -> dict[str, Any]:
    """A teacher PRM trained on ProcessBench's expert labels (10% of problems held out);
    returns its training record (validation AUC and F1 on the held-out problems)."""
    items = load_processbench(processbench)
    texts = list(dict.fromkeys(t for i in items for t in (i.problem, *i.steps)))
    build_bootstrap_model(texts, out_dir, seed=seed, **(model or DEFAULT_MODEL))
    result = train_prm(
        [i.example() for i in items],
        TrainingConfig(
            out_dir=out_dir,
            base=out_dir,
            val_problems=0.1,
            epochs=epochs,
            lr=BOOTSTRAP_LR,
            batch_tokens=batch_tokens,
            seed=seed,
            device=device,
        ),
    )
    (out_dir / "trainer_state.pt").unlink(missing_ok=True)
    return result.to_json()


def teacher_record(teacher: Path) -> dict[str, Any] | None:
    """What the summary says about a teacher trained by `train_teacher` (None otherwise)."""
    path = teacher / "training_record.json"
    if not path.is_file():
        return None
    record = json.loads(path.read_text(encoding="utf-8"))
    config = {}
    if (teacher / "config.json").is_file():
        config = json.loads((teacher / "config.json").read_text(encoding="utf-8"))
    return {
        "model": {
            "hidden": config.get("hidden_size"),
            "layers": config.get("num_hidden_layers"),
            "max_length": record.get("hyperparameters", {}).get("max_length"),
        },
        "epochs": record.get("epochs_completed"),
        "val_metrics": record.get("val_metrics") or {},
        "n_train_examples": record.get("data", {}).get("n_train_examples"),
        "n_val_examples": record.get("data", {}).get("n_val_examples"),
    }


# --- selection -------------------------------------------------------------------------------


def choose(
    strategy: str,
    *,
    n: int,
    scores: np.ndarray,
    problem: np.ndarray,
    wrong: np.ndarray,
    fingerprint: np.ndarray,
    labeled: np.ndarray,
    rng: random.Random,
    k_per_problem: int = 1,
    wrong_fraction: float = 0.8,
) -> list[int]:
    """Indices of the next `n` pool samples to label under `strategy` (see module docstring)."""
    remaining = np.flatnonzero(~labeled)
    if n <= 0 or len(remaining) == 0:
        return []
    if strategy == "random":
        return sorted(rng.sample(list(map(int, remaining)), min(n, len(remaining))))
    order = np.arange(len(problem), dtype=np.int64)
    common = {
        "excluded": labeled,
        "wrong_fraction": wrong_fraction,
    }
    if strategy == "global":
        picked = select(
            problem, order, scores, wrong, fingerprint, strategy="global", k=n, **common
        )
        return [int(i) for i in picked]
    if strategy == "per_problem":
        # K per problem, whole problems in a random order; when one pass over the problems
        # does not fill the batch, the next pass takes each problem's next K.
        taken = labeled.copy()
        out: list[int] = []
        while len(out) < n and not taken.all():
            picked = select(
                problem,
                order,
                scores,
                wrong,
                fingerprint,
                strategy="per_problem",
                k=k_per_problem,
                excluded=taken,
                wrong_fraction=wrong_fraction,
            )
            if len(picked) == 0:
                break
            groups: dict[int, list[int]] = {}
            for i in picked:
                groups.setdefault(int(problem[i]), []).append(int(i))
            keys = sorted(groups)
            rng.shuffle(keys)
            for key in keys:
                if len(out) >= n:
                    break
                out.extend(groups[key][: n - len(out)])
            taken[out] = True
        return out
    raise ValueError(f"unknown strategy {strategy!r}; expected one of {STRATEGIES}")


# --- the data-efficiency ratio ---------------------------------------------------------------


def labels_to_reach(curve: Sequence[tuple[float, float]], target: float) -> float | None:
    """Labels at which a (labels, quality) curve first reaches `target`, linearly
    interpolated between points; None when it never does."""
    points = sorted(curve)
    if not points:
        return None
    if points[0][1] >= target:
        return float(points[0][0])
    for (x0, y0), (x1, y1) in pairwise(points):
        if y1 >= target:
            return float(x0 + (target - y0) * (x1 - x0) / (y1 - y0))
    return None


def efficiency_ratio(
    baseline: Sequence[tuple[float, float]], labels: float, quality: float
) -> tuple[float, str]:
    """(ratio, kind): kind "exact" (interpolated), "at_least" (the baseline never got there:
    a lower bound) or "at_most" (the baseline's first point already reached it: an upper
    bound)."""
    needed = labels_to_reach(baseline, quality)
    if needed is None:
        return max(x for x, _ in baseline) / labels, "at_least"
    if needed == min(x for x, _ in baseline):
        return needed / labels, "at_most"
    return needed / labels, "exact"


# --- the run ---------------------------------------------------------------------------------


@dataclass
class SimRow:
    seed: int
    strategy: str
    round: int
    labels: int
    step_labels: int
    erroneous_labeled: int
    val_loss: float | None
    step_auc: float | None
    f1: float | None
    acc_erroneous: float | None
    acc_correct: float | None
    best_of_n: float | None = None
    train_seconds: float = 0.0
    threshold: float | None = None


def _train_and_measure(
    labeled_items: Sequence[SimItem],
    eval_examples: Sequence,
    best_of_n: Sequence,
    init_dir: Path,
    out_dir: Path,
    config: SimConfig,
    seed: int,
):
    examples = [i.example() for i in labeled_items]
    t0 = time.perf_counter()
    train_prm(
        examples,
        TrainingConfig(
            out_dir=out_dir,
            base=init_dir,
            val_problems=0.0,
            epochs=config.epochs,
            lr=config.lr or (FINETUNE_LR if config.base else BOOTSTRAP_LR),
            batch_tokens=config.batch_tokens,
            seed=seed,
            device=config.device,
        ),
    )
    seconds = time.perf_counter() - t0
    adapter = load_adapter(out_dir, device=config.device)
    threshold_examples, test_examples = eval_examples
    # Step AUC and loss need no threshold: all held-out problems.
    metrics = evaluate_checkpoint(
        adapter,
        labeled=[*threshold_examples, *test_examples],
        best_of_n=best_of_n or None,
        trials=50,
        seed=seed,
    )
    # F1 at the threshold that is best on the threshold-choosing half of the held-out problems.
    threshold = choose_threshold(*_first_error_inputs(adapter, threshold_examples))
    scores, truths = _first_error_inputs(adapter, test_examples)
    metrics["threshold"] = threshold
    metrics.setdefault("labeled", {})["first_error"] = first_error_metrics(
        scores, truths, threshold=threshold
    )
    return adapter, metrics, seconds


def _first_error_inputs(adapter: Any, examples: Sequence[TrainingExample]):
    """Step scores and ProcessBench first-error labels of rated examples."""
    scored = adapter.score([(e.problem, e.steps) for e in examples])
    scores = [r.step_scores for r in scored]
    truths = [
        processbench_label(first_error(e.ratings[: len(s)]))
        for e, s in zip(examples, scores, strict=True)
    ]
    return scores, truths


def _row(seed, strategy, rnd, items, metrics, seconds) -> SimRow:
    labeled = metrics.get("labeled") or {}
    fe = labeled.get("first_error") or {}
    curves = metrics.get("best_of_n") or {}
    return SimRow(
        seed=seed,
        strategy=strategy,
        round=rnd,
        labels=len(items),
        step_labels=sum(len(i.ratings()) for i in items),
        erroneous_labeled=sum(i.first_error >= 0 for i in items),
        val_loss=metrics.get("val_loss"),
        step_auc=labeled.get("step_auc"),
        f1=fe.get("f1"),
        acc_erroneous=fe.get("acc_erroneous"),
        acc_correct=fe.get("acc_correct"),
        best_of_n=curves["prm"][-1][1] if curves.get("prm") else None,
        train_seconds=round(seconds, 2),
        threshold=metrics.get("threshold"),
    )


def split_items(
    items: Sequence[SimItem], eval_fraction: float
) -> tuple[list[SimItem], list[SimItem]]:
    """(held-out evaluation items, pool): whole problems, by a stable hash of their text."""
    held = validation_keys({i.problem for i in items}, eval_fraction)
    return [i for i in items if i.problem in held], [i for i in items if i.problem not in held]


def describe(items: Sequence[SimItem], eval_fraction: float) -> dict[str, int]:
    """Sizes of the pool and of the held-out evaluation set."""
    eval_items, pool = split_items(items, eval_fraction)
    return {
        "pool_solutions": len(pool),
        "pool_problems": len({i.problem for i in pool}),
        "pool_wrong_answers": sum(i.wrong for i in pool),
        "pool_with_error": sum(i.first_error >= 0 for i in pool),
        "eval_solutions": len(eval_items),
        "eval_problems": len({i.problem for i in eval_items}),
        "eval_with_error": sum(i.first_error >= 0 for i in eval_items),
    }


def run_simulation(
    items: Sequence[SimItem],
    config: SimConfig,
    work_dir: Path,
    *,
    log: Callable[[str], None] = lambda message: None,
) -> list[SimRow]:
    """Every strategy, every round, every seed (see the module docstring); returns the rows."""
    unknown = set(config.strategies) - set(STRATEGIES)
    if unknown:
        raise ValueError(f"unknown strategies {sorted(unknown)}; expected some of {STRATEGIES}")
    eval_items, pool = split_items(items, config.eval_fraction)
    if not eval_items or not pool:
        raise ValueError("need problems both in the evaluation set and in the pool")
    # Truth with no error in it (e.g. a weak teacher) measures nothing: say so before hours run.
    for name, group in (("pool", pool), ("evaluation set", eval_items)):
        if not any(i.first_error >= 0 for i in group):
            raise ValueError(
                f"no solution in the {name} has a wrong step: the source of truth marks every "
                "step correct (a teacher: train a stronger one or raise --threshold)"
            )
    if config.budget > len(pool):
        raise ValueError(f"budget {config.budget} exceeds the pool of {len(pool)} solutions")
    # Half the held-out problems choose the F1 threshold, the other half measure.
    examples = [i.example() for i in eval_items if i.steps]
    # Alternate problems in hash order: two halves of equal size, stable across runs.
    threshold_problems = set(sorted({e.problem for e in examples}, key=unit_hash)[::2])
    eval_examples = (
        [e for e in examples if e.problem in threshold_problems],
        [e for e in examples if e.problem not in threshold_problems],
    )
    by_problem: dict[str, list[SimItem]] = {}
    for i in eval_items:
        if i.is_correct is not None and i.answer is not None:
            by_problem.setdefault(i.problem, []).append(i)
    best_of_n = [
        GradedSolution(p, p, i.steps, i.answer, bool(i.is_correct))
        for p, group in by_problem.items()
        if len(group) >= 2
        for i in group
    ]
    problem_ids = {p: n for n, p in enumerate(sorted({i.problem for i in pool}))}
    problem = np.array([problem_ids[i.problem] for i in pool], dtype=np.int64)
    wrong = np.array([i.wrong for i in pool], dtype=bool)
    fingerprint = fingerprints_to_array([steps_fingerprint(i.steps) for i in pool])
    texts = list(dict.fromkeys(t for i in items for t in (i.problem, *i.steps)))
    log(", ".join(f"{k} {v}" for k, v in describe(items, config.eval_fraction).items()))

    rows: list[SimRow] = []
    batches = config.batches()
    for seed in config.seeds:
        seed_dir = work_dir / f"seed{seed}"
        init_dir = seed_dir / "init"
        if config.base:
            max_length = config.model["max_length"]
            init_dir = native_from_base(config.base, init_dir, seed=seed, max_length=max_length)
        else:
            build_bootstrap_model(texts, init_dir, seed=seed, **config.model)
        rng = random.Random(seed)
        first = sorted(rng.sample(range(len(pool)), batches[0]))
        first_items = [pool[i] for i in first]
        adapter, metrics, seconds = _train_and_measure(
            first_items, eval_examples, best_of_n, init_dir, seed_dir / "round0", config, seed
        )
        shared = _row(seed, "", 0, first_items, metrics, seconds)
        first_scores = _score(adapter, pool)
        log(f"seed {seed} round 0 (shared): {_fmt_row(shared)}")
        for strategy in config.strategies:
            rows.append(SimRow(**{**asdict(shared), "strategy": strategy}))
            labeled = np.zeros(len(pool), dtype=bool)
            labeled[first] = True
            scores = first_scores
            # Each strategy draws from its own stream, so adding one leaves the others' alone.
            srng = random.Random(f"{seed}/{strategy}")
            for rnd in range(1, config.rounds):
                picked = choose(
                    strategy,
                    n=batches[rnd],
                    scores=scores,
                    problem=problem,
                    wrong=wrong,
                    fingerprint=fingerprint,
                    labeled=labeled,
                    rng=srng,
                    k_per_problem=config.k_per_problem,
                    wrong_fraction=config.wrong_fraction,
                )
                labeled[picked] = True
                chosen = [pool[i] for i in np.flatnonzero(labeled)]
                round_dir = seed_dir / f"{strategy}-round{rnd}"
                adapter, metrics, seconds = _train_and_measure(
                    chosen, eval_examples, best_of_n, init_dir, round_dir, config, seed
                )
                row = _row(seed, strategy, rnd, chosen, metrics, seconds)
                rows.append(row)
                log(f"seed {seed} {strategy} round {rnd}: {_fmt_row(row)}")
                if rnd < config.rounds - 1:
                    scores = _score(adapter, pool)
                shutil.rmtree(round_dir, ignore_errors=True)
    return rows


def _score(adapter: Any, pool: Sequence[SimItem]) -> np.ndarray:
    results = adapter.score([(i.problem, i.steps) for i in pool])
    return np.array([r.score for r in results], dtype=np.float64)


def _fmt(value: float | None, digits: int = 3) -> str:
    return (
        "—"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else (f"{value:.{digits}f}")
    )


def _fmt_row(row: SimRow) -> str:
    return (
        f"{row.labels} labels ({row.erroneous_labeled} with an error), "
        f"AUC {_fmt(row.step_auc)}, F1 {_fmt(row.f1)}, val loss {_fmt(row.val_loss)}"
    )


# --- reporting -------------------------------------------------------------------------------


def mean_curves(rows: Sequence[SimRow], metric: str) -> dict[str, list[tuple[float, float]]]:
    """{strategy: [(mean labels, mean metric)]} per round, over seeds (None values skipped)."""
    out: dict[str, list[tuple[float, float]]] = {}
    keys = sorted({(r.strategy, r.round) for r in rows})
    for strategy, rnd in keys:
        group = [r for r in rows if r.strategy == strategy and r.round == rnd]
        values = [getattr(r, metric) for r in group if getattr(r, metric) is not None]
        if values:
            labels = float(np.mean([r.labels for r in group]))
            out.setdefault(strategy, []).append((labels, float(np.mean(values))))
    return out


def ratios(rows: Sequence[SimRow], metric: str) -> dict[str, dict[str, Any]]:
    """Data-efficiency ratio of each non-random strategy against random, on `metric`."""
    curves = mean_curves(rows, metric)
    lower_is_better = not PROMOTION_METRICS[_PROMOTION_NAME[metric]].higher_is_better
    if "random" not in curves:
        return {}
    sign = -1.0 if lower_is_better else 1.0
    baseline = [(x, sign * y) for x, y in curves["random"]]
    out = {}
    for strategy, curve in curves.items():
        if strategy == "random" or not curve:
            continue
        labels, quality = curve[-1]
        ratio, kind = efficiency_ratio(baseline, labels, sign * quality)
        needed = labels_to_reach(baseline, sign * quality)
        out[strategy] = {
            "metric": metric,
            "final_labels": labels,
            "final_quality": quality,
            "random_final_quality": curves["random"][-1][1],
            "random_labels_needed": needed,
            "ratio": ratio,
            "kind": kind,
        }
    return out


def fitted_ratios(rows: Sequence[SimRow], metric: str) -> dict[str, dict[str, Any]]:
    """PRM800K's ratio of each strategy against random from fitted log curves, with a
    bootstrap interval over seeds (`selector.simulation.efficiency`)."""
    curves: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for r in rows:
        value = getattr(r, metric)
        if value is not None and not math.isnan(value):
            curves.setdefault(r.strategy, {}).setdefault(r.seed, []).append((r.labels, value))
    if "random" not in curves:
        return {}
    higher = PROMOTION_METRICS[_PROMOTION_NAME[metric]].higher_is_better
    return {
        strategy: bootstrap_ratio(curves, strategy, higher_is_better=higher)
        for strategy in curves
        if strategy != "random"
    }


def write_outputs(
    rows: Sequence[SimRow],
    config: SimConfig,
    out_dir: Path,
    *,
    source: str,
    seconds: float,
    data: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """results.csv, results.json, summary.md and quality_vs_labels.png in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fields = list(asdict(rows[0]).keys())
    with open(out_dir / "results.csv", "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))
    summary = {
        "source": source,
        "config": {**asdict(config), "batches": config.batches()},
        "seconds": round(seconds, 1),
        "ratios": {m: ratios(rows, m) for m in METRICS},
        "fitted_ratios": {m: fitted_ratios(rows, m) for m in ("step_auc", "f1")},
        "curves": {m: mean_curves(rows, m) for m in METRICS},
        "data": data or {},
        **(extra or {}),
    }
    (out_dir / "results.json").write_text(
        json.dumps({**summary, "rows": [asdict(r) for r in rows]}, indent=2) + "\n",
        encoding="utf-8",
    )
    (out_dir / "summary.md").write_text(markdown_summary(rows, summary), encoding="utf-8")
    plot(rows, out_dir / "quality_vs_labels.png", title=f"Simulated active learning ({source})")
    return summary


def _ratio_text(info: dict[str, Any]) -> str:
    ratio = f"{info['ratio']:.2f}×"
    if info["kind"] == "at_least":
        return f"≥ {ratio} (random never reached it)"
    if info["kind"] == "at_most":
        return f"≤ {ratio} (random's first point already did)"
    return f"{ratio} (random needs {info['random_labels_needed']:.0f})"


def markdown_summary(rows: Sequence[SimRow], summary: dict[str, Any]) -> str:
    config = summary["config"]
    seeds = sorted({r.seed for r in rows})
    lines = [
        f"# Simulated active learning: {summary['source']}",
        "",
        f"Budget {config['budget']} labeled solutions in {config['rounds']} rounds "
        f"({', '.join(map(str, config['batches']))}); seeds {seeds}; model "
        f"{config['model']}; {config['epochs']} epochs from the same initial weights after "
        f"every round; per-problem K = {config['k_per_problem']}, wrong fraction "
        f"{config['wrong_fraction']}. Wall time {summary['seconds']:.0f} s.",
        "",
        "Data: " + ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in summary["data"].items()),
        "",
        "Quality on the held-out problems (mean over seeds): step AUC (positive = not "
        "negative), ProcessBench first-error F1 (a step is predicted wrong when 1 − "
        "P(negative) is below the threshold with the best F1 on the other half of the "
        "held-out problems, chosen again after every round), validation cross-entropy.",
        "",
        "| strategy | round | labels | with error | step AUC | F1 | acc. err. | acc. correct "
        "| val loss |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for strategy in sorted({r.strategy for r in rows}):
        for rnd in sorted({r.round for r in rows if r.strategy == strategy}):
            group = [r for r in rows if r.strategy == strategy and r.round == rnd]
            lines.append(
                "| "
                + " | ".join(
                    [
                        strategy,
                        str(rnd),
                        f"{np.mean([r.labels for r in group]):.0f}",
                        f"{np.mean([r.erroneous_labeled for r in group]):.0f}",
                        _mean_sd(group, "step_auc"),
                        _mean_sd(group, "f1"),
                        _mean_sd(group, "acc_erroneous"),
                        _mean_sd(group, "acc_correct"),
                        _mean_sd(group, "val_loss"),
                    ]
                )
                + " |"
            )
    teacher = summary.get("teacher")
    if teacher:
        val = teacher["val_metrics"]
        lines += [
            "",
            f"Teacher PRM: {teacher['model']}, {teacher['epochs']} epochs on "
            f"{teacher['n_train_examples']} ProcessBench solutions; on its "
            f"{teacher['n_val_examples']} held-out ones: step AUC "
            f"{_fmt(val.get('step_auc'))}, first-error F1 "
            f"{_fmt((val.get('first_error') or {}).get('f1'))}. Its labels: the first step "
            f"with P(negative) > {TEACHER_THRESHOLD}.",
        ]
    lines += [
        "",
        "## Data-efficiency ratio, PRM800K's way",
        "",
        "Labels uniform (random) selection needs to reach each strategy's quality at its final "
        "budget, from least-squares fits of quality against ln(labels); 95% bootstrap "
        "interval over seeds.",
        "",
    ]
    for metric, by_strategy in summary["fitted_ratios"].items():
        for strategy, info in by_strategy.items():
            lines.append(f"- {strategy}, {metric}: {_fitted_text(info)}")
    lines += ["", "## Data-efficiency ratio against random (interpolated, final round)", ""]
    for metric, by_strategy in summary["ratios"].items():
        for strategy, info in by_strategy.items():
            lines.append(
                f"- {strategy}, {metric}: final {info['final_quality']:.3f} at "
                f"{info['final_labels']:.0f} labels (random: "
                f"{info['random_final_quality']:.3f}); ratio {_ratio_text(info)}"
            )
    return "\n".join(lines) + "\n"


def _bound_text(value: float) -> str:
    """A ratio or interval end; a flat uniform curve extrapolates to absurd multiples."""
    return f"{value:.2f}" if value < 1000 else "> 1000"


def _fitted_text(info: dict[str, Any]) -> str:
    if info["verdict"] == "no ratio":
        return (
            "no ratio: random's fitted curve does not rise with labels, so this run cannot "
            "separate the strategies"
        )
    low, high = (_bound_text(bound) for bound in info["ci"])
    text = f"{_bound_text(info['ratio'])}× (95% CI {low}–{high}, {info['seeds']} seeds)"
    if info["verdict"] == "cannot separate":
        return text + ": the interval holds 1, this run cannot separate it from random"
    return f"{text}: {info['verdict']} than random"


def _mean_sd(group: Sequence[SimRow], attr: str) -> str:
    values = [getattr(r, attr) for r in group if getattr(r, attr) is not None]
    if not values:
        return "—"
    if len(values) == 1:
        return f"{values[0]:.3f}"
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}"


def plot(rows: Sequence[SimRow], path: Path, *, title: str) -> Path:
    """Model quality against labels used, one line per strategy (mean, seed range shaded)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("step_auc", "step AUC"), ("f1", "first-error F1"), ("val_loss", "val loss")]
    fig, axes = plt.subplots(1, len(panels), figsize=(13, 4))
    for ax, (metric, name) in zip(axes, panels, strict=True):
        for strategy in sorted({r.strategy for r in rows}):
            rounds = sorted({r.round for r in rows if r.strategy == strategy})
            xs, ys, lo, hi = [], [], [], []
            for rnd in rounds:
                group = [r for r in rows if r.strategy == strategy and r.round == rnd]
                values = [getattr(r, metric) for r in group if getattr(r, metric) is not None]
                if not values:
                    continue
                xs.append(np.mean([r.labels for r in group]))
                ys.append(np.mean(values))
                lo.append(min(values))
                hi.append(max(values))
            if xs:
                (line,) = ax.plot(xs, ys, marker="o", label=strategy)
                ax.fill_between(xs, lo, hi, color=line.get_color(), alpha=0.15)
        ax.set_xlabel("labeled solutions")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    handles, names = axes[0].get_legend_handles_labels()
    if handles:
        axes[0].legend(handles, names)
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
