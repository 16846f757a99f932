"""The PRM800K phase-2 labeling rules, as methods mixed into `Label`.

Steps are rated in order: a step can be rated once every step before it is rated
non-negative. A −1 ends the task (`found_error`) and clears any later ratings; rating the
last step non-negative ends it (`solution`); `bad_problem` and `give_up` end it at any time.
Changing an earlier rating to 0/+1 keeps the later ones. A finished label, or one whose
assignment is no longer in progress, is read-only.

Every action runs in one transaction that locks the label and its assignment (one
`SELECT … FOR UPDATE OF label, assignment` that also loads the sample and campaign), so a
burst of clicks is applied one at a time, renews the lease (to within `LEASE_RENEWAL_STEP` of
a full one), and adds the client's active time (bounded: see `bounded_time_ms`). Rule
violations raise a `LabelingError` subclass whose message is fit to show the labeler. Each
action reports the step states before and after it (`ActionResult.before/after`, read under
the lock), so a page can be re-rendered from what was saved without reading it back.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

# A client may claim at most this much active time per request, whatever it sends.
MAX_TIME_DELTA_MS = 10 * 60 * 1000
# Allowance for clock skew and network latency on top of the wall time since the last save.
TIME_SLACK_MS = 5_000
# A save renews the lease when that extends it by at least this (or a tenth of the lease, if
# shorter): an active labeler always keeps nearly the whole lease, and a burst of ratings
# writes the assignment row about once a minute instead of on every click.
LEASE_RENEWAL_STEP = timedelta(minutes=1)

RATINGS = (-1, 0, 1)

# One step's stored state: (rating or None, flagged).
StepState = tuple[int | None, bool]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


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

    @property
    def total(self) -> int:
        return len(self.steps)

    @property
    def rated(self) -> int:
        return sum(s.rating is not None for s in self.steps)

    @property
    def can_undo(self) -> bool:
        return self.editable and self.rated > 0

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
    time_added_ms: int = 0
    before: Mapping[int, StepState] | None = field(default=None, compare=False)
    after: Mapping[int, StepState] | None = field(default=None, compare=False)
    version_before: str = field(default="", compare=False)

    @property
    def finished(self) -> bool:
        return self.finish_reason is not None


def bounded_time_ms(elapsed_ms: object, since_last_save_ms: float) -> int:
    """The active time to accept: non-negative, at most the wall time since the last save
    (plus slack), and at most `MAX_TIME_DELTA_MS`, so a bad client cannot add hours."""
    try:
        value = int(elapsed_ms)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    bound = min(MAX_TIME_DELTA_MS, max(0, int(since_last_save_ms)) + TIME_SLACK_MS)
    return max(0, min(value, bound))


def _rated_prefix(rows: Mapping) -> int:
    """How many steps from the first are rated (all non-negative in an open label)."""
    count = 0
    while count in rows and rows[count].rating is not None:
        count += 1
    return count


def _states(rows: Mapping) -> dict[int, StepState]:
    """{step: (rating, flagged)} of StepRating rows."""
    return {step: (row.rating, row.flagged) for step, row in rows.items()}


class _State:
    """A StepState read like a StepRating row (what `snapshot` and the rules look at)."""

    __slots__ = ("flagged", "rating")

    def __init__(self, state: StepState) -> None:
        self.rating, self.flagged = state


class LabelRules:
    """Business rules of a native label; mixed into `annotate.models.Label`."""

    # --- reading --------------------------------------------------------------------------

    @property
    def step_texts(self) -> list[str]:
        return [str(step) for step in (self.sample.steps or [])]

    @property
    def editable(self) -> bool:
        """Open for changes: not finished, and its assignment (if any) still in progress."""
        if self.finish_reason is not None:
            return False
        assignment = self.assignment if self.assignment_id else None
        return assignment is None or assignment.state == assignment.State.IN_PROGRESS

    @property
    def version(self) -> str:
        """Changes with every save of the label: what a page shows is tagged with it."""
        if self.updated_at is None:
            return ""
        return str((self.updated_at - _EPOCH) // timedelta(microseconds=1))

    def _rows(self) -> dict:
        from annotate.models.label import StepRating

        if self.pk is None:
            return {}
        # No ordering: the model's default (label, step) would join the label table.
        rows = StepRating.objects.filter(label_id=self.pk).order_by()
        return {row.step: row for row in rows}

    def snapshot(
        self, *, read_only: bool = False, state: Mapping[int, StepState] | None = None
    ) -> LabelSnapshot:
        """Every step's rating, status and allowed actions, for the page.

        `state` ({step: (rating, flagged)}, e.g. `ActionResult.after`) saves reading the
        ratings from the database again.
        """
        if state is None:
            rows = self._rows()
        else:
            rows = {step: _State(value) for step, value in state.items()}
        texts = self.step_texts
        editable = self.editable and not read_only
        prefix = _rated_prefix(rows)
        error_step = next(
            (i for i in sorted(rows) if rows[i].rating == -1 and i < len(texts)), None
        )
        current = prefix if editable and prefix < len(texts) else None
        names = {1: "positive", 0: "neutral", -1: "negative"}
        steps = []
        for index, text in enumerate(texts):
            row = rows.get(index)
            rating = row.rating if row else None
            if error_step is not None and index > error_step:
                status = "after_error"
            elif rating is not None:
                status = names[rating]
            elif index == current:
                status = "current"
            else:
                status = "locked"
            actionable = editable and index <= prefix
            steps.append(
                StepView(
                    index=index,
                    text=text,
                    rating=rating,
                    flagged=bool(row and row.flagged),
                    status=status,
                    can_rate=actionable,
                    can_flag=actionable,
                )
            )
        return LabelSnapshot(
            steps=tuple(steps),
            current=current,
            error_step=error_step,
            finish_reason=self.finish_reason,
            editable=editable,
        )

    # --- actions --------------------------------------------------------------------------

    def rate(
        self, step: int, rating: int, *, elapsed_ms: object = 0, now: datetime | None = None
    ) -> ActionResult:
        """Rate `step` (0-based) −1, 0 or +1; may finish the task or clear later ratings."""
        from annotate.models.label import FinishReason, StepRating

        with self._atomic():
            now = self._lock_open(now)
            step = self._valid_step(step)
            if rating not in RATINGS or isinstance(rating, bool):
                raise InvalidRating()
            rows = self._rows()
            before = _states(rows)
            prefix = _rated_prefix(rows)
            if step > prefix:
                raise StepOutOfOrder(f"Rate step {prefix + 1} first.")
            row = rows.get(step) or StepRating(label_id=self.pk, step=step)
            row.rating = rating
            row.save()
            rows[step] = row
            cleared: tuple[int, ...] = ()
            finish = None
            if rating == -1:
                later = sorted(s for s in rows if s > step)
                cleared = tuple(s for s in later if rows[s].rating is not None)
                if later:
                    # Steps after the first error are not part of the label: drop ratings and
                    # flags.
                    StepRating.objects.filter(label_id=self.pk, step__gt=step).delete()
                    for s in later:
                        del rows[s]
                finish = FinishReason.FOUND_ERROR
            elif step == len(self.step_texts) - 1:
                finish = FinishReason.SOLUTION
            version = self.version
            added = self._record(elapsed_ms, now, finish)
            return ActionResult(
                step=step,
                rating=rating,
                flagged=row.flagged,
                cleared=cleared,
                finish_reason=finish,
                time_added_ms=added,
                before=before,
                after=_states(rows),
                version_before=version,
            )

    def flag(
        self,
        step: int,
        *,
        flagged: bool | None = None,
        elapsed_ms: object = 0,
        now: datetime | None = None,
    ) -> ActionResult:
        """Flag (or unflag; toggles when `flagged` is None) a step up to the current one."""
        from annotate.models.label import StepRating

        with self._atomic():
            now = self._lock_open(now)
            step = self._valid_step(step)
            rows = self._rows()
            before = _states(rows)
            if step > _rated_prefix(rows):
                raise StepOutOfOrder("Only steps up to the current one can be flagged.")
            row = rows.get(step) or StepRating(label_id=self.pk, step=step)
            row.flagged = (not row.flagged) if flagged is None else bool(flagged)
            if not row.flagged and row.rating is None:
                if row.pk is not None:
                    row.delete()
                rows.pop(step, None)
            else:
                row.save()
                rows[step] = row
            version = self.version
            added = self._record(elapsed_ms, now, None)
            return ActionResult(
                step=step,
                rating=row.rating,
                flagged=row.flagged,
                time_added_ms=added,
                before=before,
                after=_states(rows),
                version_before=version,
            )

    def undo_last(self, *, elapsed_ms: object = 0, now: datetime | None = None) -> ActionResult:
        """Remove the rating of the last rated step, which becomes the current step again."""
        with self._atomic():
            now = self._lock_open(now)
            rows = self._rows()
            before = _states(rows)
            rated = [s for s, r in rows.items() if r.rating is not None]
            if not rated:
                raise NothingToUndo()
            step = max(rated)
            row = rows[step]
            previous = row.rating
            if row.flagged:
                row.rating = None
                row.save()
            else:
                row.delete()
                del rows[step]
            version = self.version
            added = self._record(elapsed_ms, now, None)
            return ActionResult(
                step=step,
                rating=previous,
                flagged=row.flagged,
                time_added_ms=added,
                before=before,
                after=_states(rows),
                version_before=version,
            )

    def finish(
        self, reason: str, *, elapsed_ms: object = 0, now: datetime | None = None
    ) -> ActionResult:
        """End the task as `bad_problem` or `give_up` (ratings so far are kept).

        `found_error` and `solution` come from rating steps; asking for them here is only
        accepted when the ratings already say so.
        """
        from annotate.models.label import FinishReason

        if reason not in FinishReason.values:
            raise InvalidFinishReason()
        with self._atomic():
            now = self._lock_open(now)
            rows = self._rows()
            if reason == FinishReason.FOUND_ERROR and not any(
                r.rating == -1 for r in rows.values()
            ):
                raise InvalidFinishReason("Rate a step −1 to finish with an error.")
            if reason == FinishReason.SOLUTION and _rated_prefix(rows) < len(self.step_texts):
                raise InvalidFinishReason("Rate every step to finish as a correct solution.")
            version = self.version
            added = self._record(elapsed_ms, now, reason)
            state = _states(rows)
            return ActionResult(
                finish_reason=reason,
                time_added_ms=added,
                before=state,
                after=state,
                version_before=version,
            )

    def heartbeat(self, elapsed_ms: object = 0, *, now: datetime | None = None) -> int:
        """Add active time and renew the lease while the labeler reads; returns ms added.

        A closed task ignores heartbeats (returns 0) instead of raising: the page may send
        one last beacon after finishing.
        """
        with self._atomic():
            try:
                now = self._lock_open(now)
            except TaskClosed:
                return 0
            return self._record(elapsed_ms, now, None)

    # --- internals ------------------------------------------------------------------------

    @classmethod
    def _locking(cls):
        """Label with its assignment, sample and campaign, the label and assignment locked.

        The inner join (`assignment__isnull=False`) is what lets PostgreSQL lock the
        assignment row; labels without an assignment lock only themselves."""
        return (
            cls.objects.select_related("assignment", "sample__campaign")
            .filter(assignment__isnull=False)
            .select_for_update(of=("self", "assignment"))
        )

    @classmethod
    @contextmanager
    def locked(cls, assignment_id: int, labeler_id: int) -> Iterator:
        """Open a transaction holding `labeler_id`'s label of `assignment_id`, loaded and
        locked in one query; actions on it inside the block lock nothing more and make no
        savepoint, so an error rolls the whole block back.

        Raises `DoesNotExist` when that assignment is not the labeler's or has no label yet.
        """
        with transaction.atomic():
            label = cls._locking().get(
                assignment_id=assignment_id, assignment__labeler_id=labeler_id
            )
            label._holds_lock = True
            try:
                yield label
            finally:
                label._holds_lock = False

    @classmethod
    def open_for(cls, assignment, generation_number: int | None = None) -> None:
        """Make sure the assignment has its label: one `INSERT … ON CONFLICT DO NOTHING`
        (no read, no savepoint), with the fields `Label.for_assignment` gives a new label.
        `generation_number`: the assignment's generation's, when the caller has it."""
        kind = assignment.kind
        screening = kind == assignment.Kind.SCREENING
        if screening:
            number = -1  # PRM800K files screening questions under generation −1.
        elif not assignment.generation_id:
            number = None
        elif generation_number is not None:
            number = generation_number
        else:
            number = assignment.generation.number
        label = cls(
            assignment_id=assignment.pk,
            sample_id=assignment.sample_id,
            labeler_id=assignment.labeler_id,
            generation=number,
            is_quality_control=kind == assignment.Kind.QUALITY_CONTROL,
            is_initial_screening=screening,
        )
        cls.objects.bulk_create([label], ignore_conflicts=True)

    def _atomic(self):
        """The action's transaction: none of its own inside `locked()` (one query less)."""
        if getattr(self, "_holds_lock", False):
            return transaction.atomic(savepoint=False)
        return transaction.atomic()

    def _lock_open(self, now: datetime | None) -> datetime:
        """Lock label and assignment (one query; nothing else locks a label), reload, check
        it is open."""
        from annotate.models.generation import Assignment
        from annotate.models.label import Label

        if not getattr(self, "_holds_lock", False):
            if self.assignment_id:
                fresh = self._locking().get(pk=self.pk)
                self.assignment = fresh.assignment
                self.sample = fresh.sample
            else:
                fresh = Label.objects.select_for_update().get(pk=self.pk)
            for name in ("finish_reason", "finished_at", "total_time_ms", "updated_at"):
                setattr(self, name, getattr(fresh, name))
        if self.finish_reason is not None:
            raise TaskClosed()
        if self.assignment_id:
            state = self.assignment.state
            if state == Assignment.State.EXPIRED:
                raise LeaseLost()
            if state != Assignment.State.IN_PROGRESS:
                raise TaskClosed()
        return now or timezone.now()

    def _valid_step(self, step: object) -> int:
        if isinstance(step, bool) or not isinstance(step, int):
            raise InvalidStep()
        if not 0 <= step < len(self.step_texts):
            raise InvalidStep()
        return step

    def _record(self, elapsed_ms: object, now: datetime, finish: str | None) -> int:
        """Save time and finish state on the label; renew or close the assignment."""
        since = (now - self.updated_at).total_seconds() * 1000 if self.updated_at else 0
        added = bounded_time_ms(elapsed_ms, since)
        self.total_time_ms += added
        fields = ["total_time_ms", "updated_at"]
        if finish is not None:
            self.finish_reason = finish
            self.finished_at = now
            fields += ["finish_reason", "finished_at"]
        self.save(update_fields=fields)
        assignment = self.assignment if self.assignment_id else None
        if assignment is not None:
            if finish is not None:
                assignment.state = assignment.State.SUBMITTED
                assignment.submitted_at = now
                assignment.save(update_fields=["state", "submitted_at"])
            else:
                # Saves renew the lease, so an active labeler never loses the task.
                # (The label's sample is the assignment's, loaded with its campaign.)
                lease = timedelta(minutes=self.sample.campaign.lease_minutes)
                until = now + lease
                current = assignment.lease_expires_at
                if current is None or until - current >= min(LEASE_RENEWAL_STEP, lease / 10):
                    assignment.lease_expires_at = until
                    assignment.save(update_fields=["lease_expires_at"])
        return added
