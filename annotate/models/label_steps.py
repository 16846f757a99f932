"""A label's steps as values: what the page shows, what an action changed, and the errors the
labeling rules (`Label.rate` and friends) raise. Plain dataclasses: no model imports."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

# One step's stored state: (rating or None, flagged).
StepState = tuple[int | None, bool]


class LabelingError(Exception):
    """An action the labeling rules do not allow; the message is shown to the labeler."""

    default_message = "That action is not allowed."

    def __init__(self, message: str | None = None) -> None:
        super().__init__(message or self.default_message)

    @property
    def message(self) -> str:
        return str(self)


class TaskClosed(LabelingError):
    default_message = "This task is finished and read-only."


class LeaseLost(TaskClosed):
    default_message = (
        "Your lease on this task expired and it went back to the queue; your ratings were kept."
    )


class InvalidStep(LabelingError):
    default_message = "There is no such step."


class InvalidRating(LabelingError):
    default_message = "A rating is −1, 0 or +1."


class StepOutOfOrder(LabelingError):
    default_message = "Rate the steps in order."


class NothingToUndo(LabelingError):
    default_message = "There is no rating to undo."


class UndoTooLate(TaskClosed):
    default_message = (
        "This task can no longer be re-opened: its lease ended, or you hold another task."
    )


class InvalidFinishReason(LabelingError):
    default_message = "That is not a way to finish a task."


@dataclass(frozen=True)
class StepView:
    """One step as the labeler sees it."""

    index: int
    text: str
    rating: int | None
    flagged: bool
    # positive | neutral | negative | current | locked | after_error
    status: str
    can_rate: bool
    can_flag: bool

    @property
    def number(self) -> int:
        return self.index + 1


@dataclass(frozen=True)
class LabelSnapshot:
    """Where a label stands: every step's rating and what may be done next."""

    steps: tuple[StepView, ...]
    current: int | None
    error_step: int | None
    finish_reason: str | None
    editable: bool
    # Undo would change something: an open label with an action to undo, or a finished one
    # its labeler may still re-open.
    can_undo: bool = False

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def rated(self) -> int:
        return sum(s.rating is not None for s in self.steps)

    @property
    def percent(self) -> int:
        if self.finish_reason is not None:
            return 100
        return round(100 * self.rated / self.total) if self.total else 0


@dataclass(frozen=True)
class ActionResult:
    """What an action changed: the step touched, ratings cleared, and how the task ended.

    `before`/`after` are the label's step states ({step: (rating, flagged)}) read under the
    lock and as committed; `version_before` is the label's `version` when the action began.
    """

    step: int | None = None
    rating: int | None = None
    flagged: bool | None = None
    cleared: tuple[int, ...] = ()
    finish_reason: str | None = None
    # Undo re-opened a finished task.
    reopened: bool = False
    time_added_ms: int = 0
    before: Mapping[int, StepState] | None = field(default=None, compare=False)
    after: Mapping[int, StepState] | None = field(default=None, compare=False)
    version_before: str = field(default="", compare=False)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None
