"""The selection rules read literally, in plain Python: the oracle `select` is tested against.

Loops, sorted() and dicts; O(n·K), for tests only. The inputs are those of
`selector.selection.select` (already valid: input checking is `select`'s job).
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

import numpy as np

from selector.selection import SelectionParams, Strategy


def _ref_fp_key(fp: np.ndarray, i: int) -> bytes:
    return np.ascontiguousarray(fp[i : i + 1]).tobytes()  # raw bytes: S16 keeps all 16


def reference_pool(
    problem: Any,
    order: Any,
    score: Any,
    wrong: Any,
    fingerprint: Any,
    *,
    excluded: Any = None,
    excluded_problems: Any = None,
    excluded_fingerprints: Any = None,
) -> list[int]:
    """The eligible samples, ranked: score descending, ties by import order. Plain Python."""
    fingerprint = np.asarray(fingerprint)
    n = len(fingerprint)
    prob = [int(x) for x in np.asarray(problem)]
    ordr = [int(x) for x in np.asarray(order)]
    sc = [float(x) for x in np.asarray(score, dtype=np.float64)]
    exc = [False] * n if excluded is None else [bool(x) for x in np.asarray(excluded)]
    fps = [_ref_fp_key(fingerprint, i) for i in range(n)]

    taken = {(prob[i], fps[i]) for i in range(n) if exc[i]}
    if excluded_fingerprints is not None:
        excluded_fingerprints = np.asarray(excluded_fingerprints)
        for j, p in enumerate(np.asarray(excluded_problems)):
            taken.add((int(p), _ref_fp_key(excluded_fingerprints, j)))

    candidates = sorted(
        (i for i in range(n) if not math.isnan(sc[i]) and not exc[i]), key=ordr.__getitem__
    )
    seen: set[tuple[int, bytes]] = set()
    pool = []
    for i in candidates:
        key = (prob[i], fps[i])
        if key in taken or key in seen:
            continue
        seen.add(key)
        pool.append(i)
    return sorted(pool, key=lambda i: (-sc[i], ordr[i]))


def reference_select_with_phases(
    problem: Any,
    order: Any,
    score: Any,
    wrong: Any,
    fingerprint: Any,
    *,
    strategy: Strategy,
    k: int,
    wrong_fraction: float,
    max_per_problem: int | None = None,
    excluded: Any = None,
    excluded_problems: Any = None,
    excluded_fingerprints: Any = None,
) -> tuple[list[int], list[bool]]:
    """Plain-Python oracle for `select_with_phases`: (indices, wrong_phase flags)."""
    params = SelectionParams(strategy, k, wrong_fraction, max_per_problem)
    ranked = reference_pool(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        excluded=excluded,
        excluded_problems=excluded_problems,
        excluded_fingerprints=excluded_fingerprints,
    )
    prob = [int(x) for x in np.asarray(problem)]
    is_wrong = [bool(x) for x in np.asarray(wrong)]
    cap_m = math.inf if params.max_per_problem is None else params.max_per_problem
    out: list[int] = []
    phase: list[bool] = []

    if params.strategy == "per_problem":
        cap = params.per_problem_cap
        by_problem: dict[int, list[int]] = defaultdict(list)
        for i in ranked:
            by_problem[prob[i]].append(i)
        for pid in sorted(by_problem):
            items = by_problem[pid]
            wrong_picks = [i for i in items if is_wrong[i]][: min(params.n_wrong, cap)]
            fill = [i for i in items if i not in wrong_picks][: cap - len(wrong_picks)]
            out += wrong_picks + fill
            phase += [True] * len(wrong_picks) + [False] * len(fill)
        return out, phase

    count: dict[int, int] = defaultdict(int)
    wrong_picks = []
    for i in ranked:
        if len(wrong_picks) == params.n_wrong:
            break
        if is_wrong[i] and count[prob[i]] < cap_m:
            wrong_picks.append(i)
            count[prob[i]] += 1
    fill = []
    for i in ranked:
        if len(wrong_picks) + len(fill) == params.k:
            break
        if i in wrong_picks or count[prob[i]] >= cap_m:
            continue
        fill.append(i)
        count[prob[i]] += 1
    return wrong_picks + fill, [True] * len(wrong_picks) + [False] * len(fill)


def reference_select(
    problem: Any,
    order: Any,
    score: Any,
    wrong: Any,
    fingerprint: Any,
    *,
    strategy: Strategy,
    k: int,
    wrong_fraction: float,
    max_per_problem: int | None = None,
    excluded: Any = None,
    excluded_problems: Any = None,
    excluded_fingerprints: Any = None,
) -> list[int]:
    """Plain-Python oracle for `select`: loops, sorted() and dicts; O(n·K), for tests only."""
    return reference_select_with_phases(
        problem,
        order,
        score,
        wrong,
        fingerprint,
        strategy=strategy,
        k=k,
        wrong_fraction=wrong_fraction,
        max_per_problem=max_per_problem,
        excluded=excluded,
        excluded_problems=excluded_problems,
        excluded_fingerprints=excluded_fingerprints,
    )[0]
