"""PRM800K's data-efficiency ratio from fitted curves, with a bootstrap interval over seeds.

Per strategy, quality is fitted as ``a + b·ln(labels)`` over its rounds (least squares on the
per-round means of the seeds drawn). The ratio at a strategy's final budget L is the number of
labels the uniform baseline's fitted curve needs to reach that strategy's fitted quality at L,
divided by L: ``exp((a_s − a_u)/b_u) · L^(b_s/b_u − 1)``. The interval resamples seeds with
replacement. When the baseline's curve does not rise (b_u ≤ 0) there is no ratio, and when the
interval holds 1 the run cannot separate the strategy from uniform: both are said as such.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def fit_log_curve(points: Sequence[tuple[float, float]]) -> tuple[float, float] | None:
    """(a, b) of quality ≈ a + b·ln(labels); None with fewer than two distinct label counts."""
    xs = np.log([x for x, _ in points])
    ys = np.array([y for _, y in points], dtype=float)
    if len(set(xs.tolist())) < 2:
        return None
    b, a = np.polyfit(xs, ys, 1)
    return float(a), float(b)


def fitted_ratio(
    baseline: tuple[float, float], strategy: tuple[float, float], labels: float
) -> float | None:
    """Labels the baseline needs for the strategy's fitted quality at `labels`, over `labels`."""
    a_u, b_u = baseline
    a_s, b_s = strategy
    if b_u <= 0:
        return None
    exponent = (a_s + b_s * math.log(labels) - a_u) / b_u
    return math.exp(min(exponent, 700.0)) / labels


def _curve(by_seed: dict[int, list[tuple[float, float]]], seeds: Sequence[int]):
    """Per-round mean (labels, quality) over `seeds` (repeats count as drawn)."""
    rounds: dict[float, list[float]] = {}
    for seed in seeds:
        for x, y in by_seed[seed]:
            rounds.setdefault(x, []).append(y)
    return [(x, float(np.mean(ys))) for x, ys in sorted(rounds.items())]


def bootstrap_ratio(
    curves: dict[str, dict[int, list[tuple[float, float]]]],
    strategy: str,
    *,
    baseline: str = "random",
    higher_is_better: bool = True,
    n_boot: int = 2000,
    seed: int = 0,
) -> dict[str, Any]:
    """The fitted ratio of `strategy` against `baseline` with a 95% bootstrap interval.

    `curves`: {strategy: {seed: [(labels, quality), …]}}. Returns ratio, ci (low, high),
    labels (the final budget), fits and `verdict`: "more efficient", "less efficient",
    "cannot separate" (the interval holds 1) or "no ratio" (the baseline does not improve)."""
    sign = 1.0 if higher_is_better else -1.0
    signed = {
        name: {s: [(x, sign * y) for x, y in pts] for s, pts in by_seed.items()}
        for name, by_seed in curves.items()
    }
    seeds = sorted(set(signed[baseline]) & set(signed[strategy]))
    labels = max(x for s in seeds for x, _ in signed[strategy][s])

    def ratio_for(drawn: Sequence[int]) -> float | None:
        base = fit_log_curve(_curve(signed[baseline], drawn))
        fit = fit_log_curve(_curve(signed[strategy], drawn))
        if base is None or fit is None:
            return None
        return fitted_ratio(base, fit, labels)

    point = ratio_for(seeds)
    rng = np.random.default_rng(seed)
    draws = [ratio_for(list(rng.choice(seeds, size=len(seeds)))) for _ in range(n_boot)]
    valid = [r for r in draws if r is not None]
    out: dict[str, Any] = {
        "labels": labels,
        "seeds": len(seeds),
        "baseline_fit": fit_log_curve(_curve(signed[baseline], seeds)),
        "fit": fit_log_curve(_curve(signed[strategy], seeds)),
        "ratio": point,
        "ci": None,
        "undefined_draws": n_boot - len(valid),
    }
    if point is None or len(valid) < 0.95 * n_boot:
        out["verdict"] = "no ratio"  # uniform's curve does not rise: nothing to compare with
        return out
    low, high = (float(v) for v in np.percentile(valid, [2.5, 97.5]))
    out["ci"] = (low, high)
    if low > 1:
        out["verdict"] = "more efficient"
    elif high < 1:
        out["verdict"] = "less efficient"
    else:
        out["verdict"] = "cannot separate"
    return out
