"""The uniform control arm: a share of every generation's slots drawn uniformly at random.

A campaign's ``uniform_fraction`` f reserves ``floor(f·S + 1/2)`` of a generation's S slots
(``global``: S = K; ``per_problem``: S = the slots `select` fills, min(K, M) per problem) for
samples drawn uniformly at random, with a seeded generator, from the same pool `select` picks
from. ``global``'s active arm is `select` with the remaining K; ``per_problem``'s is `select`
less the slots the uniform arm took over (each problem's last picks, spread over problems),
each refilled from the same problem's pool, so every problem keeps its quota. The uniform
labels are an unbiased sample of the pool: what active selection is compared against, and a
held-out set no strategy chose. With no uniform slot the result is exactly `select`'s.
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
    n: int,
    cap: int | None,
    rng: np.random.Generator,
) -> np.ndarray:
    """`n` candidate indices drawn uniformly without replacement, never giving a problem more
    than ``cap`` picks counting `active`'s."""
    if n <= 0 or len(candidates) == 0:
        return np.zeros(0, dtype=np.int64)
    shuffled = rng.permutation(candidates)
    if cap is None:
        return shuffled[:n]
    shuffled_problem = problem[shuffled]
    room = cap - _used(problem, active, shuffled_problem)
    return shuffled[_rank_in_problem(shuffled_problem) < room][:n]


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
    arrays = (problem, order, score, wrong, fingerprint)
    rng = np.random.default_rng(seed)
    if strategy == "per_problem":
        active, drawn = _per_problem_arms(arrays, params, uniform_fraction, rng, common)
    else:
        active, drawn = _global_arms(arrays, params, uniform_fraction, rng, common)
    total = len(active) + len(drawn)
    is_uniform = np.zeros(total, dtype=bool)
    if len(drawn):
        is_uniform[rng.choice(total, size=len(drawn), replace=False)] = True
    indices = np.empty(total, dtype=np.int64)
    indices[is_uniform] = drawn
    indices[~is_uniform] = active
    return Arms(indices, is_uniform)


def _global_arms(
    arrays: tuple, params: SelectionParams, fraction: float, rng: np.random.Generator, common
) -> tuple[np.ndarray, np.ndarray]:
    """global: the uniform arm takes its share of K; `select` fills the rest."""
    n_uniform = uniform_slots(params.k, fraction)
    active = np.zeros(0, dtype=np.int64)
    if params.k > n_uniform:
        active = select(
            *arrays, strategy="global", k=params.k - n_uniform,
            wrong_fraction=params.wrong_fraction, max_per_problem=params.max_per_problem,
            **common,
        )  # fmt: skip
    if n_uniform == 0:
        return active, np.zeros(0, dtype=np.int64)
    pool = eligible(*arrays, **common)
    problem = np.asarray(arrays[0], dtype=np.int64)
    drawn = draw_uniform(
        pool[~np.isin(pool, active)],
        problem,
        active,
        n=n_uniform,
        cap=params.max_per_problem,
        rng=rng,
    )
    return active, drawn


def _per_problem_arms(
    arrays: tuple, params: SelectionParams, fraction: float, rng: np.random.Generator, common
) -> tuple[np.ndarray, np.ndarray]:
    """per_problem: the share is of the generation's slots, not of each problem's min(K, M)
    (10 % of K = 2 per problem must not round to nothing). `select` picks every problem's
    quota; the uniform arm takes over its share of those slots, each problem's last pick
    first and spread evenly over problems (seeded ties), and fills each slot it took with a
    uniform draw from the same problem's pool, so every problem keeps its quota."""
    active = select(
        *arrays, strategy="per_problem", k=params.k, wrong_fraction=params.wrong_fraction,
        max_per_problem=params.max_per_problem, **common,
    )  # fmt: skip
    n_uniform = uniform_slots(len(active), fraction)
    if n_uniform == 0:
        return active, np.zeros(0, dtype=np.int64)
    problem = np.asarray(arrays[0], dtype=np.int64)
    picked_problem = problem[active]
    from_last = _rank_in_problem(picked_problem[::-1])[::-1]  # 0: a problem's last pick
    taken = np.zeros(len(active), dtype=bool)
    taken[np.lexsort((rng.random(len(active)), from_last))[:n_uniform]] = True
    kept = active[~taken]
    pool = eligible(*arrays, **common)
    shuffled = rng.permutation(pool[~np.isin(pool, kept)])
    shuffled_problem = problem[shuffled]
    quota = _used(problem, active[taken], shuffled_problem)
    # The slots taken are themselves candidates, so every problem finds its draws.
    drawn = shuffled[_rank_in_problem(shuffled_problem) < quota]
    return kept, drawn[np.argsort(problem[drawn], kind="stable")]
