"""Selection rules (DESIGN.md "Selection"): hand-worked cases, then select vs. reference_select."""

from __future__ import annotations

import dataclasses
import hashlib
import importlib
import math
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from selector.selection import (
    FINGERPRINT_DTYPE,
    SelectionParams,
    fingerprints_to_array,
    normalize_steps,
    select,
    select_with_phases,
    steps_fingerprint,
)
from tests.selector.oracle import reference_pool, reference_select, reference_select_with_phases

# The module itself: the package's `select` attribute is the function of that name.
select_module = importlib.import_module("selector.selection.select")

NAN = float("nan")


def pool(rows, fp_form="int"):
    """rows: (problem, order, score, wrong, fingerprint-int) -> dict of input arrays."""
    problem, order, score, wrong, fp = (list(col) for col in zip(*rows, strict=True))
    return {
        "problem": np.array(problem, dtype=np.int64),
        "order": np.array(order, dtype=np.int64),
        "score": np.array(score, dtype=np.float64),
        "wrong": np.array(wrong, dtype=bool),
        "fingerprint": as_fp(fp, fp_form),
    }


def as_fp(values, form):
    values = np.asarray(values, dtype=np.int64)
    if form == "int":
        return values
    if form == "pair":
        return np.stack([values * 3, values], axis=1).astype(np.uint64)
    # A digest per small integer; byte 15 is zero, so 'S16' trailing-NUL handling is exercised.
    digests = [hashlib.blake2b(bytes([v % 256]), digest_size=15).digest() + b"\0" for v in values]
    return fingerprints_to_array(digests)


def both(arrays, **kw):
    """Run select and the reference; they must agree; return the indices as a list."""
    got = select_with_phases(**arrays, **kw)
    ref_idx, ref_phase = reference_select_with_phases(**arrays, **kw)
    assert got.indices.dtype == np.int64
    assert got.indices.tolist() == ref_idx
    assert got.wrong_phase.tolist() == ref_phase
    assert select(**arrays, **kw).tolist() == ref_idx
    assert reference_select(**arrays, **kw) == ref_idx
    return ref_idx


# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("k", "f", "expected"),
    [
        (5, 0.8, 4),
        (3, 0.5, 2),  # floor(1.5 + 0.5) = 2
        (1, 0.5, 1),
        (7, 0.1, 1),  # floor(0.7 + 0.5) = 1
        (2, 0.25, 1),
        (4, 0.1, 0),
        (1, 0.49, 0),
        (10, 0.0, 0),
        (10, 1.0, 10),
        (1, 1, 1),
        (45, 0.7, 32),  # float 0.7*45 = 31.499999999999996 would give 31
        (50, 0.29, 15),  # float 0.29*50 = 14.499999999999998 would give 14
        (90, 0.35, 32),
        (10, Decimal("0.15"), 2),
        (10, Fraction(3, 20), 2),
    ],
)
def test_n_wrong_rounds_half_up_exactly(k, f, expected):
    assert SelectionParams("global", k, f).n_wrong == expected


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"strategy": "top"}, ValueError),
        ({"k": 0}, ValueError),
        ({"k": -3}, ValueError),
        ({"k": 2.0}, TypeError),
        ({"k": True}, TypeError),
        ({"wrong_fraction": -0.01}, ValueError),
        ({"wrong_fraction": 1.01}, ValueError),
        ({"wrong_fraction": NAN}, ValueError),
        ({"wrong_fraction": "0.8"}, TypeError),
        ({"max_per_problem": 0}, ValueError),
        ({"max_per_problem": 1.5}, TypeError),
    ],
)
def test_params_validation(kwargs, error):
    base = {"strategy": "global", "k": 5, "wrong_fraction": 0.8, "max_per_problem": None}
    with pytest.raises(error):
        SelectionParams(**{**base, **kwargs})


def test_params_snapshot_round_trip_and_frozen():
    p = SelectionParams("per_problem", np.int64(8), 0.8, 3)
    d = p.to_dict()
    assert d == {"strategy": "per_problem", "k": 8, "wrong_fraction": 0.8, "max_per_problem": 3}
    assert type(d["k"]) is int
    assert SelectionParams.from_dict(d) == p
    assert SelectionParams.from_dict({"strategy": "global", "k": 2, "wrong_fraction": 1}) == (
        SelectionParams("global", 2, 1.0, None)
    )
    assert p.per_problem_cap == 3
    assert SelectionParams("per_problem", 2, 0.5, 9).per_problem_cap == 2
    with pytest.raises(dataclasses.FrozenInstanceError):
        p.k = 3
    with pytest.raises(ValueError, match="unknown"):
        SelectionParams.from_dict({**d, "extra": 1})
    with pytest.raises(ValueError, match="missing"):
        SelectionParams.from_dict({"strategy": "global"})


# --------------------------------------------------------------------------------------------
# Fingerprints
# --------------------------------------------------------------------------------------------


def test_normalize_steps():
    assert normalize_steps(["  a \t b\n\nc ", "", "d"]) == "a b c\n\nd\n"
    assert normalize_steps([]) == ""
    with pytest.raises(TypeError):
        normalize_steps("a string is not a list of steps")


def test_fingerprint_ignores_whitespace_only():
    base = steps_fingerprint(["Let $x = 2$.", "So  the answer is 4."])
    assert len(base) == 16
    assert steps_fingerprint(["  Let $x = 2$.\n", "So the\tanswer is 4.  "]) == base
    assert steps_fingerprint(["Let $x = 2$. So the answer is 4."]) != base  # other step split
    assert steps_fingerprint(["Let $x=2$.", "So the answer is 4."]) != base  # inner space removed
    assert steps_fingerprint([]) != steps_fingerprint([""])
    assert steps_fingerprint(["a", ""]) != steps_fingerprint(["a"])


def test_fingerprint_is_pinned():
    # Stored on every Sample: changing it silently would break dedup against old rows.
    expected = hashlib.blake2b(
        b"Let x = 2.\nSo the answer is 4.\n", digest_size=16, person=b"stepwise-steps-1"
    ).digest()
    assert steps_fingerprint(["Let x = 2.", " So the answer is 4. "]) == expected
    assert expected.hex() == "9d11e799d710c699b5e9d45b926d6b57"


def test_fingerprints_to_array_keeps_all_bytes():
    digests = [b"\x01" * 15 + b"\0", b"\x01" * 15 + b"\x02", bytes(16)]
    arr = fingerprints_to_array(digests)
    assert arr.dtype == FINGERPRINT_DTYPE
    assert arr.tobytes() == b"".join(digests)
    assert len(np.unique(arr)) == 3
    with pytest.raises(ValueError):
        fingerprints_to_array([b"short"])


# --------------------------------------------------------------------------------------------
# Hand-worked selections
# --------------------------------------------------------------------------------------------


def test_global_ties_broken_by_import_order():
    # All score 0.5; import order is the reverse of the row order.
    arrays = pool(
        [
            (1, 40, 0.5, True, 0),
            (1, 30, 0.5, True, 1),
            (2, 20, 0.5, False, 2),
            (2, 10, 0.5, True, 3),
        ]
    )
    assert both(arrays, strategy="global", k=2, wrong_fraction=1.0) == [3, 1]
    # f = 0.5, K = 3 -> n_wrong 2: wrong rows 3, 1; then fill with the first remaining: row 2.
    assert both(arrays, strategy="global", k=3, wrong_fraction=0.5) == [3, 1, 2]


def test_global_wrong_phase_then_fill():
    arrays = pool(
        [
            (1, 1, 0.9, False, 0),  # 0: best overall, right
            (1, 2, 0.8, True, 1),  # 1
            (2, 3, 0.7, True, 2),  # 2
            (2, 4, 0.95, False, 3),  # 3: best, right
            (3, 5, 0.1, True, 4),  # 4: worst, wrong
            (3, 6, 0.5, False, 5),  # 5
        ]
    )
    # K=5, f=0.8 -> n_wrong 4, only 3 wrong exist: 1, 2, 4, then fill by score: 3, 0.
    assert both(arrays, strategy="global", k=5, wrong_fraction=0.8) == [1, 2, 4, 3, 0]
    got = select_with_phases(**arrays, strategy="global", k=5, wrong_fraction=0.8)
    assert got.wrong_phase.tolist() == [True, True, True, False, False]
    # f=0: pure top-K by score.
    assert both(arrays, strategy="global", k=3, wrong_fraction=0.0) == [3, 0, 1]
    # f=1: wrong only while they last, then the best of the rest.
    assert both(arrays, strategy="global", k=4, wrong_fraction=1.0) == [1, 2, 4, 3]
    # K larger than the pool: everything, wrong phase first.
    assert both(arrays, strategy="global", k=100, wrong_fraction=0.5) == [1, 2, 4, 3, 0, 5]


def test_global_max_per_problem_caps_both_phases():
    arrays = pool(
        [
            (1, 1, 0.99, True, 0),
            (1, 2, 0.98, True, 1),
            (1, 3, 0.97, False, 2),
            (2, 4, 0.50, True, 3),
            (2, 5, 0.40, False, 4),
            (3, 6, 0.30, False, 5),
        ]
    )
    # M=1, K=3, f=1: wrong phase takes 0, skips 1 (problem 1 full), takes 3; fill skips 2, 4.
    assert both(arrays, strategy="global", k=3, wrong_fraction=1.0, max_per_problem=1) == [0, 3, 5]
    # Without the cap: 0, 1, 3.
    assert both(arrays, strategy="global", k=3, wrong_fraction=1.0) == [0, 1, 3]
    # M=2, f=0: fill only, problem 1 stops after two.
    assert both(arrays, strategy="global", k=4, wrong_fraction=0, max_per_problem=2) == [0, 1, 3, 4]
    # Cap leaves fewer than K eligible.
    assert both(arrays, strategy="global", k=10, wrong_fraction=0.5, max_per_problem=1) == [
        0,
        3,
        5,
    ]


def test_per_problem_quota_and_output_order():
    arrays = pool(
        [
            (7, 1, 0.2, True, 0),  # 0
            (7, 2, 0.9, False, 1),  # 1
            (7, 3, 0.8, True, 2),  # 2
            (7, 4, 0.7, False, 3),  # 3
            (-3, 5, 0.6, False, 4),  # 4: problem -3 has no wrong samples
            (-3, 6, 0.65, False, 5),  # 5
            (-3, 7, 0.1, False, 6),  # 6
            (5, 8, 0.3, True, 7),  # 7: single-sample problem
        ]
    )
    # K=3, f=0.5 -> n_wrong 2. Problems ascending: -3, 5, 7.
    # -3: no wrong, fill 5, 4, 6. 5: wrong 7. 7: wrong 2, 0, then fill 1.
    assert both(arrays, strategy="per_problem", k=3, wrong_fraction=0.5) == [5, 4, 6, 7, 2, 0, 1]
    got = select_with_phases(**arrays, strategy="per_problem", k=3, wrong_fraction=0.5)
    assert got.wrong_phase.tolist() == [False, False, False, True, True, True, False]
    # max_per_problem 2 -> quota min(3, 2) = 2, wrong phase min(2, 2).
    assert both(arrays, strategy="per_problem", k=3, wrong_fraction=0.5, max_per_problem=2) == [
        5,
        4,
        7,
        2,
        0,
    ]
    # K=1, f=0.5 -> n_wrong 1: the best wrong sample where there is one.
    assert both(arrays, strategy="per_problem", k=1, wrong_fraction=0.5) == [5, 7, 2]
    # f=0 -> the top K by score in each problem.
    assert both(arrays, strategy="per_problem", k=2, wrong_fraction=0) == [5, 4, 7, 1, 2]


def test_dedup_keeps_the_earliest_import_only():
    fa = steps_fingerprint(["The sum is  $3$.", "# Answer\n\n3"])
    fa_spaced = steps_fingerprint([" The sum is $3$. ", "# Answer 3"])
    fb = steps_fingerprint(["The sum is $4$.", "# Answer\n\n4"])
    assert fa == fa_spaced != fb
    fp = fingerprints_to_array([fa, fa_spaced, fb, fa])
    arrays = {
        "problem": np.array([1, 1, 1, 2], dtype=np.int64),
        "order": np.array([20, 10, 30, 40], dtype=np.int64),
        "score": np.array([0.1, 0.9, 0.5, 0.8]),
        "wrong": np.array([True, True, True, True]),
        "fingerprint": fp,
    }
    # Rows 0 and 1 share steps in problem 1: row 1 was imported first (order 10) and is kept,
    # even though row 0 comes first in the arrays. Row 3 has the same steps in another problem.
    assert both(arrays, strategy="global", k=10, wrong_fraction=1) == [1, 3, 2]
    assert both(arrays, strategy="per_problem", k=10, wrong_fraction=0.8) == [1, 2, 3]


def test_dedup_earliest_kept_even_when_later_copy_scores_higher():
    arrays = pool([(1, 1, 0.2, True, 9), (1, 2, 0.9, True, 9), (1, 3, 0.5, False, 8)])
    assert both(arrays, strategy="global", k=3, wrong_fraction=1) == [0, 2]


def test_nan_scores_are_not_eligible_and_do_not_shadow_duplicates():
    arrays = pool(
        [
            (1, 1, NAN, True, 5),  # unscored: out, and does not hide row 1
            (1, 2, 0.3, True, 5),
            (1, 3, NAN, False, 6),
            (2, 4, 0.1, False, 7),
        ]
    )
    assert both(arrays, strategy="global", k=5, wrong_fraction=0.8) == [1, 3]
    assert both(arrays, strategy="per_problem", k=5, wrong_fraction=0.8) == [1, 3]


def test_excluded_samples_and_their_duplicates_are_not_eligible():
    arrays = pool(
        [
            (1, 1, 0.9, True, 1),  # selected in an earlier generation
            (1, 2, 0.8, True, 1),  # same steps as an earlier pick: out
            (2, 3, 0.7, True, 1),  # same steps, other problem: eligible
            (1, 4, 0.6, True, 2),
            (1, 5, 0.5, True, 3),  # steps equal to a pick that is not in the arrays
        ]
    )
    excluded = np.array([True, False, False, False, False])
    kw = {
        "excluded": excluded,
        "excluded_problems": np.array([1, 3], dtype=np.int64),
        "excluded_fingerprints": np.array([3, 2], dtype=np.int64),  # (3, 2) matches nothing
    }
    assert both(arrays, strategy="global", k=5, wrong_fraction=1, **kw) == [2, 3]
    assert both(arrays, strategy="per_problem", k=5, wrong_fraction=1, excluded=excluded) == [
        3,
        4,
        2,
    ]


def test_scores_negative_infinite_and_signed_zero():
    arrays = pool(
        [
            (1, 1, -0.0, False, 0),
            (1, 2, 0.0, False, 1),  # ties with -0.0: import order decides
            (1, 3, -np.inf, False, 2),
            (1, 4, np.inf, False, 3),
            (1, 5, -2.5, False, 4),
            (1, 6, 1e-300, False, 5),
        ]
    )
    assert both(arrays, strategy="global", k=6, wrong_fraction=0) == [3, 5, 0, 1, 4, 2]


def test_unsorted_import_order_and_fingerprint_forms_agree():
    rows = [
        (3, 70, 0.5, True, 1),  # 0
        (1, 10, 0.5, False, 2),  # 1
        (2, 50, 0.9, True, 3),  # 2
        (1, 30, 0.5, True, 2),  # 3
        (3, 20, 0.1, True, 1),  # 4
        (2, 60, 0.9, False, 3),  # 5
        (1, 40, 0.3, False, 4),  # 6
    ]
    outs = {}
    for form in ("int", "pair", "bytes"):
        arrays = pool(rows, fp_form=form)
        outs[form] = (
            both(arrays, strategy="global", k=4, wrong_fraction=0.5),
            both(arrays, strategy="per_problem", k=2, wrong_fraction=0.5),
        )
    assert outs["int"] == outs["pair"] == outs["bytes"]
    # Duplicates (same problem and fingerprint) lose to the earlier import: row 3 (order 30) to
    # row 1 (10), row 0 (70) to row 4 (20), row 5 (60) to row 2 (50). Pool ranked: 2, 1, 6, 4.
    assert outs["int"][0] == [2, 4, 1, 6]


def test_empty_pool():
    arrays = pool([(1, 1, NAN, True, 0)])
    for strategy in ("global", "per_problem"):
        got = select_with_phases(**arrays, strategy=strategy, k=3, wrong_fraction=0.5)
        assert got.indices.dtype == np.int64
        assert got.indices.tolist() == [] and got.wrong_phase.tolist() == []
    empty = {k: v[:0] for k, v in arrays.items()}
    assert select(**empty, strategy="global", k=3, wrong_fraction=0.5).tolist() == []


def test_input_validation():
    arrays = pool([(1, 1, 0.5, True, 0), (1, 1, 0.4, True, 1)])
    with pytest.raises(ValueError, match="unique"):
        select(**arrays, strategy="global", k=1, wrong_fraction=0.5)
    arrays = pool([(1, 1, 0.5, True, 0), (1, 2, 0.4, True, 1)])
    with pytest.raises(ValueError):
        select(**{**arrays, "score": arrays["score"][:1]}, strategy="global", k=1, wrong_fraction=0)
    with pytest.raises(TypeError):
        select(**{**arrays, "wrong": np.array([1, 0])}, strategy="global", k=1, wrong_fraction=0)
    bad_fp = {**arrays, "fingerprint": np.array([0.5, 1.5])}
    with pytest.raises(TypeError):
        select(**bad_fp, strategy="global", k=1, wrong_fraction=0)
    with pytest.raises(ValueError, match="together"):
        select(**arrays, strategy="global", k=1, wrong_fraction=0, excluded_problems=[1])
    with pytest.raises(TypeError, match="same dtype"):
        select(
            **arrays,
            strategy="global",
            k=1,
            wrong_fraction=0,
            excluded_problems=np.array([1]),
            excluded_fingerprints=as_fp([0], "bytes"),
        )
    with pytest.raises(ValueError):
        select(**arrays, strategy="global", k=0, wrong_fraction=0)


def test_larger_random_pools_match_reference():
    rng = np.random.default_rng(12345)
    for n, n_problems in ((3000, 7), (3000, 300)):
        arrays = {
            "problem": rng.integers(0, n_problems, n).astype(np.int64) * 1000,
            "order": rng.permutation(n).astype(np.int64),
            "score": np.round(rng.random(n), 2),
            "wrong": rng.random(n) < 0.7,
            "fingerprint": as_fp(rng.integers(0, 40, n), "bytes"),
            "excluded": rng.random(n) < 0.05,
        }
        arrays["score"][rng.random(n) < 0.05] = NAN
        for kw in (
            {"strategy": "global", "k": 50, "wrong_fraction": 0.8},
            {"strategy": "global", "k": 50, "wrong_fraction": 0.8, "max_per_problem": 3},
            {"strategy": "per_problem", "k": 5, "wrong_fraction": 0.8},
            {"strategy": "per_problem", "k": 5, "wrong_fraction": 0.8, "max_per_problem": 4},
        ):
            both(arrays, **kw)


# --------------------------------------------------------------------------------------------
# Properties: select == reference_select on random small pools with many collisions and ties
# --------------------------------------------------------------------------------------------

SCORES = [NAN, -np.inf, -1.0, -0.0, 0.0, 0.25, 0.5, 0.5000000000000001, 1.0, np.inf]


@st.composite
def pools(draw):
    n = draw(st.integers(0, 40))
    n_problems = draw(st.integers(1, 5))
    # Small keys take the radix-sort path for grouping, huge ones the general one.
    key = st.one_of(st.integers(-3, 3), st.integers(-(2**62), 2**62))
    problem_ids = draw(st.lists(key, min_size=n_problems, max_size=n_problems))
    form = draw(st.sampled_from(["int", "pair", "bytes"]))
    fp_values = st.integers(0, draw(st.integers(0, 4)))
    arrays = {
        "problem": np.array(
            draw(st.lists(st.sampled_from(problem_ids), min_size=n, max_size=n)), dtype=np.int64
        ),
        "order": np.array(
            draw(st.lists(st.integers(-(2**40), 2**40), min_size=n, max_size=n, unique=True)),
            dtype=np.int64,
        ),
        "score": np.array(draw(st.lists(st.sampled_from(SCORES), min_size=n, max_size=n))),
        "wrong": np.array(draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool),
        "fingerprint": as_fp(draw(st.lists(fp_values, min_size=n, max_size=n)), form),
    }
    if draw(st.booleans()):
        arrays["excluded"] = np.array(
            draw(st.lists(st.booleans(), min_size=n, max_size=n)), dtype=bool
        ).reshape(n)
    if draw(st.booleans()):
        m = draw(st.integers(0, 4))
        arrays["excluded_problems"] = np.array(
            draw(st.lists(st.sampled_from(problem_ids), min_size=m, max_size=m)), dtype=np.int64
        )
        arrays["excluded_fingerprints"] = as_fp(
            draw(st.lists(fp_values, min_size=m, max_size=m)), form
        )
    return arrays


params_st = st.builds(
    SelectionParams,
    strategy=st.sampled_from(["per_problem", "global"]),
    k=st.integers(1, 12),
    wrong_fraction=st.one_of(
        st.sampled_from([0.0, 0.1, 0.25, 0.5, 0.8, 1.0]), st.floats(0, 1, allow_nan=False)
    ),
    max_per_problem=st.one_of(st.none(), st.integers(1, 5)),
)

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LIGHT = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@PROPERTY
@given(arrays=pools(), params=params_st)
def test_select_matches_reference(arrays, params):
    both(arrays, **params.to_dict())


@LIGHT
@given(arrays=pools(), params=params_st, degenerate=st.sampled_from(["constant", "problem"]))
def test_select_is_exact_when_every_hash_collides(arrays, params, degenerate):
    # The 64-bit hash only routes samples to the exact dedup pass; collisions must not matter.
    def bad_hash(problem, hi, lo):
        zero = np.zeros(len(problem), dtype=np.uint64)
        return zero if degenerate == "constant" else zero + problem.view(np.uint64)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(select_module, "_mix64", bad_hash)
        both(arrays, **params.to_dict())


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(arrays=pools(), params=params_st)
def test_selection_invariants(arrays, params):
    got = select_with_phases(**arrays, **params.to_dict())
    idx, phase = got.indices.tolist(), got.wrong_phase.tolist()
    ranked = reference_pool(**arrays)
    problem = arrays["problem"].tolist()
    wrong = arrays["wrong"].tolist()
    n_wrong, m = params.n_wrong, params.max_per_problem

    assert len(set(idx)) == len(idx)
    assert set(idx) <= set(ranked)
    assert all(wrong[i] for i, p in zip(idx, phase, strict=True) if p)
    per = {}
    for i in idx:
        per[problem[i]] = per.get(problem[i], 0) + 1

    if params.strategy == "per_problem":
        cap = params.per_problem_cap
        assert all(c <= cap for c in per.values())
        assert [problem[i] for i in idx] == sorted(problem[i] for i in idx)
        for pid in {problem[i] for i in ranked}:
            mine = [i for i in ranked if problem[i] == pid]
            picks = [i for i, _ in zip(idx, phase, strict=True) if problem[i] == pid]
            wp = [i for i, p in zip(idx, phase, strict=True) if p and problem[i] == pid]
            assert wp == [i for i in mine if wrong[i]][: min(n_wrong, cap)]
            assert len(picks) == min(cap, len(mine))
            rest = [i for i in mine if i not in wp]
            assert picks == wp + rest[: cap - len(wp)]
    else:
        wp = [i for i, p in zip(idx, phase, strict=True) if p]
        assert phase == sorted(phase, reverse=True)  # wrong phase first
        assert len(idx) <= params.k
        if m is None:
            assert len(idx) == min(params.k, len(ranked))
            assert wp == [i for i in ranked if wrong[i]][:n_wrong]
            fill = [i for i in ranked if i not in wp][: params.k - len(wp)]
            assert idx == wp + fill
        else:
            assert all(c <= m for c in per.values())
            assert len(wp) <= n_wrong


@LIGHT
@given(arrays=pools(), params=params_st, seed=st.integers(0, 2**32 - 1))
def test_selection_ignores_row_order(arrays, params, seed):
    # Rows are a set keyed by import order: shuffling them must pick the same samples.
    n = len(arrays["problem"])
    perm = np.random.default_rng(seed).permutation(n)
    per_row = {"problem", "order", "score", "wrong", "fingerprint", "excluded"}
    shuffled = {k: v[perm] if k in per_row else v for k, v in arrays.items()}
    a = arrays["order"][select(**arrays, **params.to_dict())]
    b = shuffled["order"][select(**shuffled, **params.to_dict())]
    assert a.tolist() == b.tolist()


def test_n_wrong_formula_matches_exact_decimal_arithmetic():
    for hundredths in range(101):
        f = hundredths / 100
        for k in range(1, 120):
            expected = (hundredths * k * 2 + 100) // 200  # floor(h*k/100 + 1/2) in integers
            assert SelectionParams("global", k, f).n_wrong == expected
    assert math.floor(0.7 * 45 + 0.5) == 31  # why n_wrong avoids plain float arithmetic


def _stable_rank(key, group=None):
    return np.lexsort((key,) if group is None else (key, group))


@pytest.mark.parametrize(
    "case",
    ["random", "low_bits_only", "all_equal", "rounded", "wide_groups"],
)
def test_the_packed_rank_sort_equals_a_stable_sort_on_the_whole_key(case):
    # The packed sort keeps only a key's top bits: keys that differ past them must still rank.
    rng = np.random.default_rng(7)
    n = 50_000
    scores = {
        "random": rng.random(n),
        "low_bits_only": 0.5 + rng.integers(0, 64, n) * 2.0**-50,  # equal in every kept bit
        "all_equal": np.full(n, 0.25),
        "rounded": np.round(rng.random(n), 3),  # many exact ties: position breaks them
        "wide_groups": rng.random(n),
    }[case]
    key = select_module._desc_key(scores)
    span = 2**40 if case == "wide_groups" else 300  # 2**40: too wide to pack, the fallback
    group = rng.integers(0, span, n, dtype=np.int64) + 1_000
    assert select_module._rank_order(key).tolist() == _stable_rank(key).tolist()
    assert select_module._rank_order(key, group).tolist() == _stable_rank(key, group).tolist()
