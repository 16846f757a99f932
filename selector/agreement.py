"""Agreement between several labels of one sample: first-error agreement and Krippendorff's α.

* **First-error agreement** compares what labels concluded (an outcome: the first error's
  index, None for no error, or how a task was abandoned) over pairs of labels of one sample.
  A sample agrees when all its labels reach the same outcome.
* **Krippendorff's α** (ordinal, −1 < 0 < +1) is computed from its definition: units are
  (sample, step) pairs, each label's rating of that step is one value, steps after a label's
  first error are missing. Only units with at least two values are pairable. With the
  coincidence matrix o_ck = Σ_u Σ_{i≠j} [v_i = c][v_j = k] / (m_u − 1), its marginals n_c and
  n = Σ n_c, and the ordinal metric δ²_ck = (Σ_{g=c..k} n_g − (n_c + n_k) / 2)²:
  α = 1 − (n − 1) · Σ o_ck δ²_ck / Σ n_c n_k δ²_ck.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations

from selector.ratings import Rating, first_error

#: The ordered rating scale α's ordinal metric ranks over.
SCALE: tuple[int, ...] = (-1, 0, 1)


@dataclass(frozen=True)
class PairAgreement:
    """Pairs of labels of one sample compared on their outcome, summed over samples."""

    pairs: int = 0
    agree: int = 0

    def __add__(self, other: PairAgreement) -> PairAgreement:
        return PairAgreement(self.pairs + other.pairs, self.agree + other.agree)

    @property
    def rate(self) -> float | None:
        return self.agree / self.pairs if self.pairs else None


def pair_agreement(outcomes: Sequence[Hashable]) -> PairAgreement:
    """Every pair of one sample's label outcomes, and how many of them agree."""
    pairs = list(combinations(outcomes, 2))
    return PairAgreement(len(pairs), sum(a == b for a, b in pairs))


def agreement_by_coder(
    outcomes: Mapping[Hashable, Hashable],
) -> dict[Hashable, PairAgreement]:
    """One sample's outcomes by coder (labeler) → each coder's pairs with the others."""
    result = {}
    for coder, mine in outcomes.items():
        others = [theirs for other, theirs in outcomes.items() if other != coder]
        result[coder] = PairAgreement(len(others), sum(mine == theirs for theirs in others))
    return result


def step_values(ratings: Sequence[Rating]) -> list[Rating]:
    """A label's ratings as α's values: up to and including the first error, then missing."""
    end = first_error(ratings)
    return list(ratings if end is None else ratings[: end + 1])


def coincidences(units: Iterable[Sequence[Rating]]) -> dict[tuple[int, int], float]:
    """Krippendorff's coincidence matrix o_ck over `units` (each a list of values, None =
    missing); units with fewer than two values add nothing."""
    matrix = {(c, k): 0.0 for c in SCALE for k in SCALE}
    for unit in units:
        values = [v for v in unit if v is not None]
        m = len(values)
        if m < 2:
            continue
        for i, c in enumerate(values):
            for j, k in enumerate(values):
                if i != j:
                    matrix[c, k] += 1.0 / (m - 1)
    return matrix


def ordinal_delta(counts: Mapping[int, float]) -> dict[tuple[int, int], float]:
    """The ordinal difference δ²_ck from the marginal counts n_c, over `SCALE`."""
    delta = {}
    for a, c in enumerate(SCALE):
        for b, k in enumerate(SCALE):
            low, high = min(a, b), max(a, b)
            between = sum(counts[g] for g in SCALE[low : high + 1])
            delta[c, k] = (between - (counts[c] + counts[k]) / 2) ** 2
    return delta


def krippendorff_alpha_ordinal(units: Iterable[Sequence[Rating]]) -> float | None:
    """Krippendorff's α (ordinal) of `units`; None when fewer than two pairable values or
    when every pairable value is the same (no expected disagreement)."""
    matrix = coincidences(units)
    counts = {c: sum(matrix[c, k] for k in SCALE) for c in SCALE}
    n = sum(counts.values())
    if n < 2:
        return None
    delta = ordinal_delta(counts)
    observed = sum(matrix[c, k] * delta[c, k] for c in SCALE for k in SCALE)
    expected = sum(counts[c] * counts[k] * delta[c, k] for c in SCALE for k in SCALE)
    if expected == 0:
        return None
    return 1.0 - (n - 1) * observed / expected


def step_units(labels_by_sample: Iterable[Sequence[Sequence[Rating]]]) -> list[list[Rating]]:
    """α's units from each sample's labels (each a list of step ratings): one unit per
    (sample, step), a label's value missing after its first error or where unrated."""
    units = []
    for labels in labels_by_sample:
        values = [step_values(ratings) for ratings in labels]
        width = max((len(v) for v in values), default=0)
        for step in range(width):
            units.append([v[step] if step < len(v) else None for v in values])
    return units
