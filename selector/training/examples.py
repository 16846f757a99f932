"""Training examples: a problem, its steps and one rating per step, up to the first error.

Supervision stops at the first error: steps after the first −1 are dropped, and an unfinished
label (a ``None`` rating) contributes its rated prefix. Neutral is its own class.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from selector.ratings import first_error

RATINGS: tuple[int, ...] = (-1, 0, 1)


@dataclass
class TrainingExample:
    """A problem, its steps and their ratings, normalised to supervision up to the first error.

    ``ratings`` may hold ``None`` for unrated steps: the example keeps the prefix before the
    first ``None``. Steps after the first −1 are dropped. ``problem_id`` (optional) is the key
    validation hold-out groups by; without it the problem text is.
    """

    problem: str
    steps: list[str]
    ratings: list[int]
    problem_id: str | None = None

    def __post_init__(self) -> None:
        if len(self.steps) != len(self.ratings):
            raise ValueError(f"{len(self.steps)} steps but {len(self.ratings)} ratings")
        steps: list[str] = []
        ratings: list[int] = []
        for step, rating in zip(self.steps, self.ratings, strict=True):
            if rating is None:
                break
            if isinstance(rating, bool) or int(rating) not in RATINGS or int(rating) != rating:
                raise ValueError(f"rating {rating!r} is not one of {RATINGS}")
            steps.append(str(step))
            ratings.append(int(rating))
            if rating == -1:
                break
        self.steps, self.ratings = steps, ratings

    @property
    def key(self) -> str:
        """What validation hold-out groups by: ``problem_id``, else the problem text."""
        return self.problem_id if self.problem_id is not None else self.problem

    @property
    def first_error(self) -> int:
        """ProcessBench's label of this example: index of its −1 step, or −1 when it has none."""
        index = first_error(self.ratings)
        return -1 if index is None else index


def example_from_first_error(
    problem: str, steps: Sequence[str], first_error: int, *, problem_id: str | None = None
) -> TrainingExample:
    """ProcessBench-style label → example: +1 before ``first_error``, −1 at it (−1: all +1)."""
    if first_error >= len(steps):
        raise ValueError(f"first_error {first_error} is past the last of {len(steps)} steps")
    n = len(steps) if first_error < 0 else first_error + 1
    ratings = [1] * n
    if first_error >= 0:
        ratings[-1] = -1
    return TrainingExample(problem, list(steps[:n]), ratings, problem_id)
