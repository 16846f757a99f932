"""Checkpoint evaluation: best-of-N curves, ProcessBench first-error metrics, step-level AUC.

The metric functions take precomputed scores (numpy only, no model), so they are testable
without torch; :func:`evaluate_checkpoint` is the one place that runs an adapter.

* **Best-of-N** (PRM800K's evaluation): for every test problem with M graded samples, draw
  subsets of N samples and pick one by (a) the highest PRM solution score (``"prm"``), (b) the
  highest last-step score (``"orm"``, outcome-style), (c) majority voting over normalized final
  answers (``"majority"``). Accuracy is the mean over problems and subsets of the picked
  sample's correctness. Ties (equal scores, equal vote counts) are resolved *in expectation*:
  a tie between k candidates contributes the mean of their correctness, which is what a
  uniformly random tie-break gives averaged over all draws, without its noise. When a problem
  has no more distinct N-subsets than ``trials``, every subset is evaluated once (so N = M and
  N = 1 are exact); otherwise ``trials`` random subsets are drawn with a seeded generator.
* **First error** (ProcessBench): the predicted earliest error is the first step whose step
  score is below ``threshold`` (default 0.5: a step is predicted wrong when P(not negative) <
  0.5), or −1 when there is none. Accuracy on erroneous samples is the exact-index match rate
  among samples that have an error; accuracy on correct samples is the rate of predicting −1
  among samples without one; F1 is their harmonic mean.
* **Step AUC**: ROC AUC over the labeled steps (up to and including the first error), the
  positive class being "step not negative", computed with the rank (Mann–Whitney) formula
  with average ranks for ties.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import TYPE_CHECKING, Any

import numpy as np

from selector.ratings import first_error

if TYPE_CHECKING:
    from selector.training.examples import TrainingExample

METHODS: tuple[str, ...] = ("prm", "orm", "majority")


@dataclass
class GradedSamples:
    """One test problem's M graded samples, aligned arrays (one entry per sample)."""

    solution_scores: Sequence[float]
    last_step_scores: Sequence[float]
    answers: Sequence[str | None]
    is_correct: Sequence[bool]

    def __post_init__(self) -> None:
        m = len(self.is_correct)
        lengths = (len(self.solution_scores), len(self.last_step_scores), len(self.answers))
        if any(n != m for n in lengths):
            raise ValueError(f"misaligned sample arrays: {(*lengths, m)}")
        if m == 0:
            raise ValueError("a problem needs at least one sample")


def default_ns(m: int) -> list[int]:
    """1, 2, 4, … up to ``m``, with ``m`` itself last when it is not a power of two."""
    ns, n = [], 1
    while n <= m:
        ns.append(n)
        n *= 2
    if ns[-1] != m:
        ns.append(m)
    return ns


def _subsets(m: int, n: int, trials: int, rng: np.random.Generator) -> np.ndarray:
    """(T, n) sample indices: every n-subset when there are at most ``trials``, else random."""
    if math.comb(m, n) <= trials:
        return np.array(list(combinations(range(m), n)), dtype=np.int64).reshape(-1, n)
    # argsort of uniform noise is a uniform random permutation per row; keep its first n.
    return np.argsort(rng.random((trials, m)), axis=1)[:, :n]


def _pick_max(scores: np.ndarray, correct: np.ndarray, subsets: np.ndarray) -> float:
    """Mean correctness of the highest-scoring sample per subset (ties in expectation)."""
    vals = scores[subsets]
    best = vals.max(axis=1, keepdims=True)
    tied = vals == best
    hits = (tied * correct[subsets]).sum(axis=1) / tied.sum(axis=1)
    return float(hits.mean())


def _pick_majority(answer_ids: np.ndarray, correct: np.ndarray, subsets: np.ndarray) -> float:
    """Mean correctness of the most common answer per subset (ties in expectation).

    A subset whose samples all lack an answer (id −1) scores 0. The correctness of an answer
    group is the mean of its members' flags (a single value when grading is consistent).
    """
    t = subsets.shape[0]
    k = int(answer_ids.max()) + 1
    if k == 0:
        return 0.0
    ids = answer_ids[subsets]
    ok = ids >= 0
    flat = (ids + k * np.arange(t)[:, None])[ok]
    counts = np.bincount(flat, minlength=t * k).reshape(t, k)
    hits = np.bincount(flat, weights=correct[subsets][ok], minlength=t * k).reshape(t, k)
    top = counts.max(axis=1, keepdims=True)
    tied = (counts == top) & (top > 0)
    group_acc = np.divide(hits, counts, out=np.zeros_like(hits), where=counts > 0)
    n_tied = tied.sum(axis=1)
    per_subset = np.divide(
        (tied * group_acc).sum(axis=1), n_tied, out=np.zeros(t), where=n_tied > 0
    )
    return float(per_subset.mean())


def best_of_n_curves(
    problems: Sequence[GradedSamples],
    ns: Sequence[int] | None = None,
    *,
    trials: int = 200,
    seed: int = 0,
    normalize: Callable[[str], str] | None = None,
    methods: Sequence[str] = METHODS,
) -> dict[str, list[tuple[int, float]]]:
    """Best-of-N accuracy curves ``{method: [(N, accuracy), …]}`` (see module docstring).

    ``ns`` defaults to 1, 2, 4, … up to the smallest M; every N must be ≤ each problem's M.
    ``normalize`` maps an answer to the string compared for majority voting (default:
    whitespace-stripped). NaN scores rank lowest.
    """
    if not problems:
        raise ValueError("no problems to evaluate")
    unknown = set(methods) - set(METHODS)
    if unknown:
        raise ValueError(f"unknown methods {sorted(unknown)}; expected some of {METHODS}")
    if trials < 1:
        raise ValueError("trials must be at least 1")
    m_min = min(len(p.is_correct) for p in problems)
    ns = list(ns) if ns is not None else default_ns(m_min)
    if any(n < 1 or n > m_min for n in ns):
        raise ValueError(f"every N must be between 1 and the smallest M ({m_min}): {ns}")
    norm = normalize or (lambda s: s.strip())
    rng = np.random.default_rng(seed)

    prepared = []
    for p in problems:
        correct = np.asarray(p.is_correct, dtype=np.float64)
        prm = np.nan_to_num(np.asarray(p.solution_scores, dtype=np.float64), nan=-np.inf)
        orm = np.nan_to_num(np.asarray(p.last_step_scores, dtype=np.float64), nan=-np.inf)
        index: dict[str, int] = {}
        ids = np.array(
            [-1 if a is None else index.setdefault(norm(a), len(index)) for a in p.answers],
            dtype=np.int64,
        )
        prepared.append((correct, prm, orm, ids))

    curves: dict[str, list[tuple[int, float]]] = {method: [] for method in methods}
    for n in ns:
        totals = dict.fromkeys(methods, 0.0)
        for correct, prm, orm, ids in prepared:
            subsets = _subsets(len(correct), n, trials, rng)
            if "prm" in totals:
                totals["prm"] += _pick_max(prm, correct, subsets)
            if "orm" in totals:
                totals["orm"] += _pick_max(orm, correct, subsets)
            if "majority" in totals:
                totals["majority"] += _pick_majority(ids, correct, subsets)
        for method in methods:
            curves[method].append((int(n), totals[method] / len(prepared)))
    return curves


def processbench_label(first_error: int | None) -> int:
    """A first error (None: no error) in ProcessBench's convention, where −1 means none."""
    return -1 if first_error is None else first_error


def predict_first_error(step_scores: Sequence[float], threshold: float = 0.5) -> int:
    """Index of the first step whose score is below ``threshold``, or −1 when none is."""
    for i, score in enumerate(step_scores):
        if score < threshold:
            return i
    return -1


def _harmonic(a: float | None, b: float | None) -> float | None:
    if a is None or b is None:
        return None
    return 0.0 if a + b == 0 else 2 * a * b / (a + b)


def first_error_metrics(
    step_scores: Sequence[Sequence[float]],
    first_errors: Sequence[int],
    *,
    threshold: float = 0.5,
) -> dict[str, Any]:
    """ProcessBench metrics: ``acc_erroneous``, ``acc_correct``, ``f1`` (+ counts).

    ``first_errors[i]`` is sample i's true earliest wrong step (−1 when it has none). An
    accuracy is None when its group is empty, and then so is F1.
    """
    if len(step_scores) != len(first_errors):
        raise ValueError("step_scores and first_errors differ in length")
    err_hits = err_n = ok_hits = ok_n = 0
    for scores, truth in zip(step_scores, first_errors, strict=True):
        predicted = predict_first_error(scores, threshold)
        if truth == -1:
            ok_n += 1
            ok_hits += predicted == -1
        else:
            err_n += 1
            err_hits += predicted == truth
    acc_err = err_hits / err_n if err_n else None
    acc_ok = ok_hits / ok_n if ok_n else None
    return {
        "acc_erroneous": acc_err,
        "acc_correct": acc_ok,
        "f1": _harmonic(acc_err, acc_ok),
        "n_erroneous": err_n,
        "n_correct": ok_n,
        "threshold": threshold,
    }


def choose_threshold(
    step_scores: Sequence[Sequence[float]],
    first_errors: Sequence[int],
    candidates: Sequence[float] | None = None,
) -> float:
    """The step-score threshold with the best first-error F1 on these (validation) samples;
    ties go to the threshold nearest 0.5. Default candidates: 0.5 and 99 quantiles of the
    scores, so an imbalanced set is not stuck at a fixed 0.5 that predicts no error."""
    flat = np.array([x for scores in step_scores for x in scores], dtype=float)
    if candidates is None:
        quantiles = np.quantile(flat, np.linspace(0.01, 0.99, 99)) if len(flat) else []
        candidates = sorted({0.5, *(float(q) + 1e-9 for q in quantiles)})
    best, best_key = 0.5, None
    for threshold in candidates:
        f1 = first_error_metrics(step_scores, first_errors, threshold=threshold)["f1"]
        key = (-1.0 if f1 is None else f1, -abs(threshold - 0.5))
        if best_key is None or key > best_key:
            best, best_key = float(threshold), key
    return best


def average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values``; tied values share the mean of the ranks they span."""
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    return (ends - (counts - 1) / 2.0)[inverse]


def roc_auc(scores: Sequence[float], positive: Sequence[bool]) -> float | None:
    """ROC AUC by the Mann–Whitney formula: P(score of a positive > a negative's), ties ½.

    None when one class is absent.
    """
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(positive, dtype=bool)
    if s.shape != y.shape:
        raise ValueError("scores and labels differ in shape")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = average_ranks(s)
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def steps_from_first_errors(
    step_scores: Sequence[Sequence[float]], first_errors: Sequence[int]
) -> tuple[list[float], list[bool]]:
    """Flatten labeled steps: every step before the first error positive, the error negative.

    Steps after the first error carry no label and are left out; so are steps the model did not
    score (a truncated input).
    """
    flat_scores: list[float] = []
    flat_pos: list[bool] = []
    for scores, truth in zip(step_scores, first_errors, strict=True):
        stop = len(scores) if truth == -1 else min(truth + 1, len(scores))
        for i in range(stop):
            flat_scores.append(float(scores[i]))
            flat_pos.append(i != truth)
    return flat_scores, flat_pos


def steps_from_ratings(
    step_scores: Sequence[Sequence[float]], ratings: Sequence[Sequence[int]]
) -> tuple[list[float], list[bool]]:
    """Flatten rated steps (−1/0/+1) up to and including the first −1; positive = not −1."""
    flat_scores: list[float] = []
    flat_pos: list[bool] = []
    for scores, rated in zip(step_scores, ratings, strict=True):
        for score, rating in zip(scores, rated, strict=False):
            flat_scores.append(float(score))
            flat_pos.append(rating != -1)
            if rating == -1:
                break
    return flat_scores, flat_pos


def step_auc(step_scores: Sequence[Sequence[float]], first_errors: Sequence[int]) -> float | None:
    """Step-level ROC AUC for samples labeled by their earliest wrong step (−1: none)."""
    return roc_auc(*steps_from_first_errors(step_scores, first_errors))


def step_auc_from_ratings(
    step_scores: Sequence[Sequence[float]], ratings: Sequence[Sequence[int]]
) -> float | None:
    """Step-level ROC AUC for samples with per-step ratings (−1/0/+1)."""
    return roc_auc(*steps_from_ratings(step_scores, ratings))


# ---------------------------------------------------------------------------------------------
# Orchestration: the one part that runs a model (through a scoring adapter).


@dataclass
class GradedSolution:
    """A graded test solution for best-of-N: its problem key, text and grade."""

    problem_id: str
    problem: str
    steps: list[str]
    answer: str | None
    is_correct: bool


@dataclass
class FirstErrorSample:
    """A solution with its true earliest wrong step (−1 when it has none), ProcessBench-style."""

    problem: str
    steps: list[str]
    first_error: int


def step_class_probs(
    adapter: Any, samples: Sequence[tuple[str, Sequence[str]]], *, token_budget: int | None = None
) -> list[np.ndarray]:
    """Per-step class probabilities ``[n_scored_steps, len(adapter.labels)]`` per sample."""
    import torch

    from selector.scoring.batching import DEFAULT_TOKEN_BUDGET, plan_batches
    from selector.scoring.device import autocast
    from selector.scoring.inputs import PRMInput

    device = adapter.device
    budget = token_budget or DEFAULT_TOKEN_BUDGET.get(device.type, DEFAULT_TOKEN_BUDGET["cpu"])
    encoded = adapter.encode_many([PRMInput(p, list(s)) for p, s in samples])
    lengths = [len(e.input_ids) for e in encoded]
    out: list[np.ndarray] = [np.zeros((0, len(adapter.labels)))] * len(encoded)
    with torch.inference_mode(), autocast(device):
        for batch in plan_batches(lengths, budget):
            width = max(lengths[i] for i in batch)
            ids = np.full((len(batch), width), adapter.pad_token_id, dtype=np.int64)
            mask = np.zeros((len(batch), width), dtype=np.int64)
            rows: list[int] = []
            cols: list[int] = []
            for r, i in enumerate(batch):
                ids[r, : lengths[i]] = encoded[i].input_ids
                mask[r, : lengths[i]] = 1
                rows.extend([r] * len(encoded[i].positions))
                cols.extend(encoded[i].positions)
            probs = adapter.forward_probs(
                torch.from_numpy(ids).to(device),
                torch.from_numpy(mask).to(device),
                torch.tensor(rows, dtype=torch.long, device=device),
                torch.tensor(cols, dtype=torch.long, device=device),
            )
            probs = probs.double().cpu().numpy()
            start = 0
            for i in batch:
                n = len(encoded[i].positions)
                out[i] = probs[start : start + n]
                start += n
    return out


def labeled_metrics(
    labels: Sequence[str], probs: Sequence[np.ndarray], ratings: Sequence[Sequence[int]]
) -> dict[str, Any]:
    """Cross-entropy and step metrics of class probabilities against −1/0/+1 ratings.

    3-class models: mean CE over the rated steps (what training reports as ``val_loss``).
    2-class models: neutral counts as positive. Steps a truncated input left unscored are
    skipped.
    """
    col = {"negative": labels.index("negative"), "positive": labels.index("positive")}
    if "neutral" in labels:
        col["neutral"] = labels.index("neutral")
    names = {-1: "negative", 0: "neutral" if "neutral" in col else "positive", 1: "positive"}
    neg = col["negative"]
    total, n, hits = 0.0, 0, 0
    step_scores: list[list[float]] = []
    for p, rated in zip(probs, ratings, strict=True):
        k = min(len(p), len(rated))
        scores = []
        for i in range(k):
            target = col[names[rated[i]]]
            total -= math.log(max(float(p[i, target]), 1e-12))
            hits += int(np.argmax(p[i])) == target
            n += 1
            scores.append(1.0 - float(p[i, neg]))
        step_scores.append(scores)
    truncated = [list(r[: len(s)]) for r, s in zip(ratings, step_scores, strict=True)]
    first_errors = [processbench_label(first_error(r)) for r in truncated]
    return {
        "val_loss": total / n if n else None,
        "step_accuracy": hits / n if n else None,
        "step_auc": step_auc_from_ratings(step_scores, truncated),
        "n_labels": n,
        "first_error": first_error_metrics(step_scores, first_errors),
    }


def evaluate_checkpoint(
    adapter: Any,
    *,
    best_of_n: Sequence[GradedSolution] | None = None,
    first_error: Sequence[FirstErrorSample] | None = None,
    labeled: Sequence[TrainingExample] | None = None,
    ns: Sequence[int] | None = None,
    trials: int = 200,
    seed: int = 0,
    normalize: Callable[[str], str] | None = None,
    threshold: float = 0.5,
    aggregation: str = "product",
    token_budget: int | None = None,
) -> dict[str, Any]:
    """Score test data with a loaded adapter and return JSON-serialisable metrics.

    * ``best_of_n``: graded solutions grouped by ``problem_id`` → ``"best_of_n"``:
      ``{method: [[N, accuracy], …]}`` plus counts. The ORM-style score is the last *scored*
      step's score (the last step unless the input was truncated).
    * ``first_error``: solutions with their earliest wrong step → ``"first_error"``
      (ProcessBench acc/F1 at ``threshold``).
    * ``labeled``: rated examples → ``"val_loss"`` and ``"labeled"`` (step accuracy, AUC, …).
    * ``"step_auc"``: ROC AUC over every labeled step of ``first_error`` and ``labeled``
      together (up to and including each first error; positive = not negative).
    """
    metrics: dict[str, Any] = {"threshold": threshold, "aggregation": aggregation}
    auc_scores: list[float] = []
    auc_positive: list[bool] = []
    score_kwargs = {"aggregation": aggregation, "token_budget": token_budget}

    if best_of_n:
        scored = adapter.score([(s.problem, s.steps) for s in best_of_n], **score_kwargs)
        groups: dict[str, list[int]] = {}
        for i, s in enumerate(best_of_n):
            groups.setdefault(s.problem_id, []).append(i)
        problems = [
            GradedSamples(
                solution_scores=[scored[i].score for i in idx],
                last_step_scores=[scored[i].step_scores[-1] for i in idx],
                answers=[best_of_n[i].answer for i in idx],
                is_correct=[best_of_n[i].is_correct for i in idx],
            )
            for idx in groups.values()
        ]
        curves = best_of_n_curves(problems, ns, trials=trials, seed=seed, normalize=normalize)
        metrics["best_of_n"] = {
            **{method: [[n, acc] for n, acc in points] for method, points in curves.items()},
            "n_problems": len(problems),
            "samples_per_problem": [len(idx) for idx in groups.values()],
            "trials": trials,
        }

    if first_error:
        scored = adapter.score([(s.problem, s.steps) for s in first_error], **score_kwargs)
        step_scores = [s.step_scores for s in scored]
        truths = [s.first_error for s in first_error]
        metrics["first_error"] = first_error_metrics(step_scores, truths, threshold=threshold)
        flat_scores, flat_pos = steps_from_first_errors(step_scores, truths)
        auc_scores += flat_scores
        auc_positive += flat_pos

    if labeled:
        examples = [e for e in labeled if e.steps]
        probs = step_class_probs(
            adapter, [(e.problem, e.steps) for e in examples], token_budget=token_budget
        )
        details = labeled_metrics(list(adapter.labels), probs, [e.ratings for e in examples])
        metrics["val_loss"] = details["val_loss"]
        metrics["labeled"] = details
        neg = list(adapter.labels).index("negative")
        flat_scores, flat_pos = steps_from_ratings(
            [list(1.0 - p[:, neg]) for p in probs], [e.ratings for e in examples]
        )
        auc_scores += flat_scores
        auc_positive += flat_pos

    if first_error or labeled:
        metrics["step_auc"] = roc_auc(auc_scores, auc_positive)
    return metrics
