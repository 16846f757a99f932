"""Step and solution score formulas (pure Python; no torch, no model).

* Step score = P(step is not negative). For 3-class PRMs (negative, neutral, positive) that is
  P(neutral) + P(positive) = 1 − P(negative) (neutral counts as positive, PRM800K's best
  setting); with ``neutral_is_positive=False`` it is P(positive). For 2-class PRMs it is
  P(positive) = P(correct).
* Solution score = product of the step scores (``"product"``, the default) or their minimum
  (``"min"``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

Aggregation = Literal["product", "min"]
AGGREGATIONS: tuple[str, ...] = ("product", "min")

NEGATIVE, NEUTRAL, POSITIVE = "negative", "neutral", "positive"
LABELS_3: tuple[str, ...] = (NEGATIVE, NEUTRAL, POSITIVE)
LABELS_2: tuple[str, ...] = (NEGATIVE, POSITIVE)

# PRM800K writes ratings as -1 / 0 / 1 (often as string keys in JSON).
_RATING_TO_LABEL: dict[object, str] = {
    -1: NEGATIVE,
    0: NEUTRAL,
    1: POSITIVE,
    "-1": NEGATIVE,
    "0": NEUTRAL,
    "1": POSITIVE,
    NEGATIVE: NEGATIVE,
    NEUTRAL: NEUTRAL,
    POSITIVE: POSITIVE,
}


@dataclass(frozen=True)
class SampleScore:
    """The PRM's verdict on one solution.

    ``step_scores`` has one entry per *scored* step (``n_scored_steps`` of them, the first
    steps of the solution); ``score`` aggregates exactly those. ``truncated`` is True when the
    input had to be shortened to fit the model (problem cut and/or trailing steps unscored).
    """

    step_scores: list[float]
    score: float
    truncated: bool
    n_scored_steps: int


def _row_to_label_probs(row: Mapping[object, float] | Sequence[float], labels: Sequence[str]):
    if isinstance(row, Mapping):
        out: dict[str, float] = {}
        for key, value in row.items():
            label = _RATING_TO_LABEL.get(key)
            if label is None:
                raise ValueError(f"unknown rating key {key!r}; expected -1/0/1 or a label name")
            out[label] = float(value)
        return out
    values = list(row)
    if len(values) != len(labels):
        raise ValueError(
            f"expected {len(labels)} probabilities ({', '.join(labels)}), got {values}"
        )
    return {label: float(v) for label, v in zip(labels, values, strict=True)}


def step_scores_from_probs(
    probs: Iterable[Mapping[object, float] | Sequence[float]],
    *,
    labels: Sequence[str] = LABELS_3,
    neutral_is_positive: bool = True,
) -> list[float]:
    """Step scores from per-step class probabilities.

    Each row is either a sequence of probabilities aligned with ``labels`` (class order of the
    model; names from ``negative``/``neutral``/``positive``) or a mapping keyed by PRM800K
    ratings (``-1``/``0``/``1``, int or str) or label names. A row without a neutral class is a
    2-class row and scores P(positive).
    """
    if POSITIVE not in labels:
        raise ValueError(f"labels must include {POSITIVE!r}: {labels!r}")
    scores: list[float] = []
    for row in probs:
        p = _row_to_label_probs(row, labels)
        if POSITIVE not in p:
            raise ValueError(f"no probability for the positive class in {row!r}")
        # Summing P(0)+P(+1) rather than 1−P(−1) keeps the value exact for rows that do not
        # sum to exactly one (rounded stored probabilities).
        s = p[POSITIVE] + (p.get(NEUTRAL, 0.0) if neutral_is_positive else 0.0)
        scores.append(s)
    return scores


def aggregate(step_scores: Sequence[float], how: Aggregation = "product") -> float:
    """Solution score from step scores: their product (default) or their minimum."""
    if len(step_scores) == 0:
        raise ValueError("cannot aggregate an empty list of step scores")
    if how == "product":
        return float(math.prod(float(s) for s in step_scores))
    if how == "min":
        return float(min(float(s) for s in step_scores))
    raise ValueError(f"unknown aggregation {how!r}; expected one of {AGGREGATIONS}")


def sample_score(
    step_scores: Sequence[float], *, truncated: bool = False, how: Aggregation = "product"
) -> SampleScore:
    """Bundle step scores into a :class:`SampleScore`."""
    scores = [float(s) for s in step_scores]
    return SampleScore(
        step_scores=scores,
        score=aggregate(scores, how),
        truncated=truncated,
        n_scored_steps=len(scores),
    )
