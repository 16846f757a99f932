"""Krippendorff's α (ordinal) and first-error agreement, against a hand-computed value and a
reference computation written plainly here (pairable values, D_o / D_e)."""

import random
from collections import Counter
from fractions import Fraction

import pytest

from selector.agreement import (
    PairAgreement,
    agreement_by_coder,
    coincidences,
    krippendorff_alpha_ordinal,
    pair_agreement,
    step_units,
    step_values,
)

# Four units (sample steps) rated by two or three labelers.
FIXTURE = [[1, 1], [1, 0], [-1, -1], [0, 1, 1]]


def reference_alpha(units):
    """α = 1 − D_o / D_e over pairable values, the ordinal δ² from the value counts."""
    units = [[v for v in unit if v is not None] for unit in units]
    units = [unit for unit in units if len(unit) >= 2]
    values = [v for unit in units for v in unit]
    n = len(values)
    counts = Counter(values)
    scale = [-1, 0, 1]

    def delta(c, k):
        low, high = sorted((scale.index(c), scale.index(k)))
        between = sum(counts[g] for g in scale[low : high + 1])
        return (Fraction(between) - Fraction(counts[c] + counts[k], 2)) ** 2

    observed = Fraction(0)
    for unit in units:
        m = len(unit)
        for i in range(m):
            for j in range(m):
                if i != j:
                    observed += delta(unit[i], unit[j]) / (m - 1)
    observed /= n
    expected = Fraction(0)
    for a in range(n):
        for b in range(n):
            if a != b:
                expected += delta(values[a], values[b])
    expected /= n * (n - 1)
    return 1 - observed / expected


def test_coincidence_matrix_by_hand():
    o = coincidences(FIXTURE)
    assert o[1, 1] == pytest.approx(3)  # 2 from [1, 1], 1 from the 3-coder unit's pair of +1s
    assert o[1, 0] == o[0, 1] == pytest.approx(2)
    assert o[-1, -1] == pytest.approx(2)
    assert sum(o.values()) == pytest.approx(9)  # n: every pairable value once


def test_alpha_matches_the_hand_computed_value():
    # n = (5, 2, 2) for (+1, 0, −1); δ²(0, +1) = 3.5² = 12.25; D_o ∝ 4 × 12.25 = 49;
    # Σ n_c n_k δ² = 2 (2·2·4 + 2·5·12.25 + 2·5·30.25) = 882; α = 1 − 8 · 49 / 882 = 5/9.
    assert krippendorff_alpha_ordinal(FIXTURE) == pytest.approx(5 / 9)
    assert reference_alpha(FIXTURE) == Fraction(5, 9)


def test_alpha_matches_the_reference_on_random_units():
    rng = random.Random(13)
    for _ in range(25):
        units = [
            [rng.choice([-1, 0, 1, None]) for _ in range(rng.randint(1, 4))] for _ in range(12)
        ]
        ours = krippendorff_alpha_ordinal(units)
        try:
            expected = float(reference_alpha(units))
        except ZeroDivisionError:
            assert ours is None
        else:
            assert ours == pytest.approx(expected)


def test_alpha_edges():
    assert krippendorff_alpha_ordinal([[1, 1], [1, 1]]) is None  # no variation to expect
    assert krippendorff_alpha_ordinal([[1], [0]]) is None  # nothing pairable
    assert krippendorff_alpha_ordinal([[1, 1], [-1, -1], [0, 0]]) == pytest.approx(1.0)
    # Ordinal: −1 vs +1 is a worse disagreement than 0 vs +1.
    near = krippendorff_alpha_ordinal([[1, 1], [-1, -1], [0, 1], [0, 0]])
    far = krippendorff_alpha_ordinal([[1, 1], [-1, -1], [-1, 1], [0, 0]])
    assert far < near


def test_steps_after_the_first_error_are_missing():
    assert step_values([1, -1, 1]) == [1, -1]
    assert step_units([[[1, -1, 1], [1, 1]]]) == [[1, 1], [-1, 1]]
    assert step_units([[[1, 1, 1], [-1]]]) == [[1, -1], [1, None], [1, None]]


def test_first_error_agreement_by_hand():
    # Three labels of one sample: two find the error at step 2, one finds none.
    assert pair_agreement([2, 2, None]) == PairAgreement(pairs=3, agree=1)
    assert pair_agreement([2]) == PairAgreement()
    by_coder = agreement_by_coder({"a": 2, "b": 2, "c": None})
    assert by_coder["a"] == PairAgreement(2, 1) and by_coder["c"] == PairAgreement(2, 0)
    assert (by_coder["a"] + by_coder["c"]).rate == pytest.approx(0.25)
