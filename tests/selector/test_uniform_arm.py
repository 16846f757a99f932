"""The uniform control arm: its share of K, drawn from the same pool, seeded, and no change
at all to `select` when the share rounds to zero."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from selector.selection import eligible, select, select_arms, uniform_slots


def pool(n: int = 300, problems: int = 10, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (
        rng.integers(0, problems, n),
        np.arange(n),
        rng.random(n),
        rng.random(n) < 0.5,
        np.arange(n) % 97,  # duplicates within a problem: dedup must hold for the arm too
    )


def test_uniform_slots_round_half_up_exactly():
    assert [uniform_slots(k, 0.1) for k in (1, 4, 5, 9, 10, 15)] == [0, 0, 1, 1, 1, 2]
    assert uniform_slots(3, 1.0) == 3 and uniform_slots(3, 0.0) == 0
    with pytest.raises(ValueError):
        uniform_slots(3, 1.5)


@pytest.mark.parametrize(
    "strategy,k,fraction", [("global", 4, 0.1), ("per_problem", 4, 0.01), ("global", 30, 0.0)]
)
def test_no_uniform_slot_is_exactly_select(strategy, k, fraction):
    arrays = pool()
    arms = select_arms(
        *arrays, strategy=strategy, k=k, wrong_fraction=0.8, uniform_fraction=fraction, seed=5
    )
    expected = select(*arrays, strategy=strategy, k=k, wrong_fraction=0.8)
    assert arms.indices.tolist() == expected.tolist() and not arms.uniform.any()


def test_global_arm_reserves_its_share_from_the_same_pool():
    arrays = pool()
    arms = select_arms(
        *arrays, strategy="global", k=20, wrong_fraction=0.8, uniform_fraction=0.25, seed=1
    )
    active = arms.indices[~arms.uniform]
    assert arms.uniform.sum() == 5 and len(arms.indices) == len(set(arms.indices)) == 20
    assert active.tolist() == select(*arrays, strategy="global", k=15, wrong_fraction=0.8).tolist()
    assert set(arms.indices[arms.uniform].tolist()) <= set(eligible(*arrays).tolist())
    again = select_arms(
        *arrays, strategy="global", k=20, wrong_fraction=0.8, uniform_fraction=0.25, seed=1
    )
    assert again.indices.tolist() == arms.indices.tolist()  # seeded: preview == opening


def test_per_problem_arm_keeps_k_per_problem_and_the_cap():
    problem, *rest = pool()
    arms = select_arms(
        problem, *rest, strategy="per_problem", k=5, wrong_fraction=0.8,
        uniform_fraction=0.2, max_per_problem=4, seed=3,
    )  # fmt: skip
    per_problem = Counter(problem[arms.indices].tolist())
    assert set(per_problem.values()) == {4}  # min(K, M), the uniform ones included
    # 0.2 of the generation's 40 slots, one each in 8 problems.
    uniform = Counter(problem[arms.indices[arms.uniform]].tolist())
    assert sum(uniform.values()) == 8 and set(uniform.values()) == {1}
    assert len(arms.indices) == len(set(arms.indices.tolist()))


def test_per_problem_share_is_of_the_generation_not_of_each_problem():
    """K = 2 per problem and 10 %: each problem's own share rounds to nothing, the
    generation's does not."""
    problem, *rest = pool(n=1000, problems=50)
    arms = select_arms(
        problem, *rest, strategy="per_problem", k=2, wrong_fraction=0.8,
        uniform_fraction=0.1, seed=4,
    )  # fmt: skip
    full = select(problem, *rest, strategy="per_problem", k=2, wrong_fraction=0.8)
    assert len(arms.indices) == len(full) == 100 and arms.uniform.sum() == 10
    assert set(Counter(problem[arms.indices].tolist()).values()) == {2}
    gave = set(problem[arms.indices[arms.uniform]].tolist())
    assert len(gave) == 10  # spread: no problem gives two slots while others give none
    # The active arm is select's picks less each giving problem's last one.
    active = arms.indices[~arms.uniform].tolist()
    by_problem: dict[int, list[int]] = {}
    for index in full.tolist():
        by_problem.setdefault(int(problem[index]), []).append(index)
    expected = [i for p, picks in by_problem.items() for i in (picks[:1] if p in gave else picks)]
    assert sorted(active) == sorted(expected)
    # The draws come from the same problem's pool, never a copy of a kept pick.
    assert set(arms.indices[arms.uniform].tolist()) <= set(eligible(problem, *rest).tolist())
    again = select_arms(
        problem, *rest, strategy="per_problem", k=2, wrong_fraction=0.8,
        uniform_fraction=0.1, seed=4,
    )  # fmt: skip
    assert again.indices.tolist() == arms.indices.tolist()


def test_per_problem_shares_beyond_one_slot_per_problem_spread_evenly():
    problem, *rest = pool(n=600, problems=10)
    arms = select_arms(
        problem, *rest, strategy="per_problem", k=4, wrong_fraction=0.8,
        uniform_fraction=0.5, seed=2,
    )  # fmt: skip
    uniform = Counter(problem[arms.indices[arms.uniform]].tolist())
    assert sum(uniform.values()) == 20 and set(uniform.values()) == {2}


def test_uniform_draws_are_uniform_over_the_pool():
    arrays = pool(n=200, problems=4)
    hits = Counter()
    for seed in range(400):
        arms = select_arms(
            *arrays, strategy="global", k=10, wrong_fraction=1.0, uniform_fraction=0.5, seed=seed
        )
        hits.update(arrays[2][arms.indices[arms.uniform]] > 0.5)
    # Active picks are the top scores; uniform ones split evenly around the median.
    assert abs(hits[True] - hits[False]) < 0.15 * (hits[True] + hits[False])
