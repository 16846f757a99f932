"""What a PRM scores (`PRMInput`) and what an adapter encodes it into (`EncodedSample`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class PRMInput:
    """One solution to score: the problem statement and the solution's steps."""

    problem: str
    steps: Sequence[str]


SampleLike = PRMInput | tuple[str, Sequence[str]] | Mapping[str, Any]


def as_input(sample: SampleLike) -> PRMInput:
    """Accept a :class:`PRMInput`, a ``(problem, steps)`` pair or a mapping with those keys."""
    if isinstance(sample, PRMInput):
        problem, steps = sample.problem, sample.steps
    elif isinstance(sample, Mapping):
        problem, steps = sample["problem"], sample["steps"]
    else:
        problem, steps = sample
    if isinstance(steps, str):
        raise TypeError("steps must be a list of strings, not a single string")
    return PRMInput(str(problem), [str(s) for s in steps])


@dataclass
class EncodedSample:
    """Token ids of one PRM input and where to read each scored step's prediction.

    ``positions[k]`` is the index in ``input_ids`` of the token that ends step ``k`` (its
    separator or tag); only the first ``len(positions)`` of ``n_steps`` steps are scored.
    """

    input_ids: list[int]
    positions: list[int]
    n_steps: int
    truncated: bool
