"""The uniform control arm: a share of every generation's slots drawn uniformly at random.

A campaign's ``uniform_fraction`` f reserves ``floor(f·K + 1/2)`` of the K slots (per problem
for ``per_problem``, in total for ``global``) for samples drawn uniformly at random, with a
seeded generator, from the same pool `select` picks from; the active arm is `select` with the
remaining K. The uniform labels are an unbiased sample of the pool: what active selection is
compared against, and a held-out set no strategy chose. With no uniform slot the result is
exactly `select`'s.
"""

from __future__ import annotations

import math
from fractions import Fraction
from typing import NamedTuple

import numpy as np

from selector.selection.params import SelectionParams, Strategy
from selector.selection.select import eligible, select


class Arms(NamedTuple):
    """Selected indices in selection order, and which of them the uniform arm drew."""

    indices: np.ndarray  # int64
    uniform: np.ndarray  # bool


def uniform_slots(k: int, fraction: float) -> int:
    """``floor(fraction·k + 1/2)`` in exact arithmetic (as ``n_wrong``), at most k."""
    if not 0 <= float(fraction) <= 1:
        raise ValueError(f"uniform_fraction must be in [0, 1], not {fraction}")
    return min(k, math.floor(Fraction(repr(float(fraction))) * k + Fraction(1, 2)))


def _rank_in_problem(problem: np.ndarray) -> np.ndarray:
    """For each entry, how many entries of the same problem come before it."""
    order = np.argsort(problem, kind="stable")
    sorted_problem = problem[order]
    starts = np.flatnonzero(np.concatenate([[True], sorted_problem[1:] != sorted_problem[:-1]]))
    lengths = np.diff(np.append(starts, len(problem)))
    rank = np.empty(len(problem), dtype=np.int64)
    rank[order] = np.arange(len(problem)) - np.repeat(starts, lengths)
    return rank


def _used(problem: np.ndarray, active: np.ndarray, of: np.ndarray) -> np.ndarray:
    """Active picks of each problem in `of`."""
    if len(active) == 0:
        return np.zeros(len(of), dtype=np.int64)
    keys, counts = np.unique(problem[active], return_counts=True)
    at = np.clip(np.searchsorted(keys, of), 0, len(keys) - 1)
    return np.where(keys[at] == of, counts[at], 0)


def draw_uniform(
    candidates: np.ndarray,
    problem: np.ndarray,
    active: np.ndarray,
    *,
    strategy: Strategy,
    n: int,
    cap: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """`n` candidate indices drawn uniformly without replacement (per problem for
    ``per_problem``), never giving a problem more than ``cap`` picks counting `active`'s."""
    if n <= 0 or len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    shuffled = rng.permutation(candidates)
    shuffled_problem = problem[shuffled]
    if cap is None:
        room = np.full(len(shuffled), np.iinfo(np.int64).max)
    else:
        room = cap - _used(problem, active, shuffled_problem)
    rank = _rank_in_problem(shuffled_problem)
    if strategy == "per_problem":
        picked = shuffled[rank < np.minimum(room, n)]
        return picked[np.argsort(problem[picked], kind="stable")]
    return shuffled[rank < room][:n]


def select_arms(
    problem: np.ndarray,
    order: np.ndarray,
    score: np.ndarray,
    wrong: np.ndarray,
    fingerprint: np.ndarray,
    *,
    strategy: Strategy,
    k: int,
    wrong_fraction: float,
    max_per_problem: int | None = None,
    uniform_fraction: float = 0.0,
    seed: int = 0,
    excluded: np.ndarray | None = None,
    excluded_problems: np.ndarray | None = None,
    excluded_fingerprints: np.ndarray | None = None,
) -> Arms:
    """The active arm (`select` with K less the uniform slots) and the uniform arm (drawn
    from the rest of the same pool), interleaved at seeded random positions so the order
    the queue serves them in does not tell them apart. Same inputs as `select`."""
    params = SelectionParams(strategy, k, wrong_fraction, max_per_problem)
    common = {
        "excluded": excluded,
        "excluded_problems": excluded_problems,
        "excluded_fingerprints": excluded_fingerprints,
    }
    # per_problem reserves its share of what a problem can get, min(K, M).
    slots = params.per_problem_cap if strategy == "per_problem" else params.k
    n_uniform = uniform_slots(slots, uniform_fraction)
    if n_uniform == 0:
        active = select(
            problem, order, score, wrong, fingerprint, strategy=strategy, k=params.k,
            wrong_fraction=wrong_fraction, max_per_problem=max_per_problem, **common,
        )  # fmt: skip
        return Arms(active, np.zeros(len(active), dtype=bool))
    active = np.zeros(0, dtype=np.int64)
    if slots > n_uniform:
        active = select(
            problem, order, score, wrong, fingerprint, strategy=strategy, k=slots - n_uniform,
            wrong_fraction=wrong_fraction,
            max_per_problem=None if strategy == "per_problem" else max_per_problem, **common,
        )  # fmt: skip
    pool = eligible(problem, order, score, wrong, fingerprint, **common)
    candidates = pool[~np.isin(pool, active)]
    rng = np.random.default_rng(seed)
    drawn = draw_uniform(
        candidates,
        np.asarray(problem, dtype=np.int64),
        active,
        strategy=strategy,
        n=n_uniform,
        cap=params.per_problem_cap if strategy == "per_problem" else max_per_problem,
        rng=rng,
    )
    total = len(active) + len(drawn)
    is_uniform = np.zeros(total, dtype=bool)
    is_uniform[rng.choice(total, size=len(drawn), replace=False)] = True
    indices = np.empty(total, dtype=np.int64)
    indices[is_uniform] = drawn
    indices[~is_uniform] = active
    return Arms(indices, is_uniform)
