"""A labeler's verdict on one sample, and the PRM800K phase-2 labeling rules as its methods.

Steps are rated in order: a step can be rated once every step before it is rated
non-negative. A −1 ends the task (`found_error`) and clears any later ratings; rating the
last step non-negative ends it (`solution`); `bad_problem` and `give_up` end it at any time.
Changing an earlier rating to 0/+1 keeps the later ones. A finished label, or one whose
assignment is no longer in progress, is read-only.

Every action that changes the label pushes what it changed onto `undo_log`, so `undo_last` undoes
the last action, whatever it was: a rating, a flag, or the one that finished the task (which
re-opens it while the labeler's lease lasts).

Actions (`rate`, `flag`, `undo_last`, `finish`, `heartbeat`) expect the caller to hold the
row lock, inside `transaction.atomic()`: `Label.objects.locked()` locks a label with its
assignment and loads its sample and campaign. Each action renews the lease (to within
`LEASE_RENEWAL_STEP` of a full one) and adds the client's active time (bounded: see
`bounded_time_ms`). Rule violations raise a `LabelingError` before anything is written.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from django.conf import settings
from django.db import models, transaction
from django.db.models import Exists, Q
from django.utils import timezone

from annotate import dispatch
from annotate.models.assignment import Assignment
from annotate.models.generation import Generation
from annotate.models.label_steps import (
    ActionResult,
    InvalidFinishReason,
    InvalidRating,
    InvalidStep,
    LabelSnapshot,
    LeaseLost,
    NothingToUndo,
    StepOutOfOrder,
    StepState,
    StepView,
    TaskClosed,
    UndoTooLate,
)
from annotate.models.problem import Problem, Sample

# A client may claim at most this much active time per request, whatever it sends.
MAX_TIME_DELTA_MS = 10 * 60 * 1000
# Allowance for clock skew and network latency on top of the wall time since the last save.
TIME_SLACK_MS = 5_000
# A save renews the lease when that extends it by at least this (or a tenth of the lease, if
# shorter): an active labeler always keeps nearly the whole lease, and a burst of ratings
# writes the assignment row about once a minute instead of on every click.
LEASE_RENEWAL_STEP = timedelta(minutes=1)

RATINGS = (-1, 0, 1)
# Undoable actions kept per label: enough for any slip, bounded so the row stays small.
UNDO_DEPTH = 100
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_STEP_NAMES = {1: "positive", 0: "neutral", -1: "negative"}


def bounded_time_ms(elapsed_ms: object, since_last_save_ms: float) -> int:
    """The active time to accept: non-negative, at most the wall time since the last save
    (plus slack), and at most `MAX_TIME_DELTA_MS`, so a bad client cannot add hours."""
    try:
        value = int(elapsed_ms)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0
    bound = min(MAX_TIME_DELTA_MS, max(0, int(since_last_save_ms)) + TIME_SLACK_MS)
    return max(0, min(value, bound))


class FinishReason(models.TextChoices):
    FOUND_ERROR = "found_error"
    SOLUTION = "solution"
    BAD_PROBLEM = "bad_problem"
    GIVE_UP = "give_up"


class LabelQuerySet(models.QuerySet):
    def finished(self) -> LabelQuerySet:
        return self.filter(finish_reason__isnull=False)

    def regular(self) -> LabelQuerySet:
        """Labels of ordinary work: neither quality control nor screening."""
        return self.filter(is_quality_control=False, is_initial_screening=False)

    def gold(self, purpose: str | None = None) -> LabelQuerySet:
        """QC and screening labels (only one `GoldStandard.Purpose`'s, if given) whose sample
        has gold to compare them with."""
        if purpose == GoldStandard.Purpose.SCREENING:
            flags = Q(is_initial_screening=True)
        elif purpose == GoldStandard.Purpose.QUALITY_CONTROL:
            flags = Q(is_quality_control=True)
        else:
            flags = Q(is_quality_control=True) | Q(is_initial_screening=True)
        return self.filter(flags, sample__gold__isnull=False)

    def for_campaign(self, campaign) -> LabelQuerySet:
        return self.filter(sample__campaign=campaign)

    def for_labeler(self, user) -> LabelQuerySet:
        return self.filter(labeler=user)

    def locked(self) -> LabelQuerySet:
        """Labels with their assignment, sample and campaign, the label and assignment rows
        locked (use inside `transaction.atomic()`).

        The inner join (`assignment__isnull=False`) is what lets PostgreSQL lock the
        assignment row, so labels without an assignment are not found here."""
        return (
            self.select_related("assignment", "sample__campaign")
            .filter(assignment__isnull=False)
            .select_for_update(of=("self", "assignment"))
        )


class Label(models.Model):
    """A labeler's verdict on one sample, PRM800K-shaped.

    Native labels keep one `StepRating` row per rated step, written as the labeler clicks.
    Labels imported from PRM800K keep their exact step records in `prm800k_steps` (phase-1
    alternative completions, human completions), so export reproduces them byte for byte.
    """

    FinishReason = FinishReason

    assignment = models.OneToOneField(
        "annotate.Assignment",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="label",
    )
    sample = models.ForeignKey("annotate.Sample", on_delete=models.CASCADE, related_name="labels")
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="labels",
    )
    labeler_uuid = models.CharField(
        max_length=64, blank=True, help_text="PRM800K's anonymous labeler id."
    )
    prm800k_generation = models.IntegerField(
        null=True,
        blank=True,
        help_text="PRM800K's generation number: empty for phase 1, −1 screening.",
    )
    is_quality_control = models.BooleanField(default=False)
    is_initial_screening = models.BooleanField(default=False)
    finish_reason = models.CharField(max_length=12, choices=FinishReason, null=True, blank=True)
    total_time_ms = models.BigIntegerField(default=0)
    started_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    timestamp = models.CharField(
        max_length=40, blank=True, help_text="PRM800K timestamp, verbatim for imported labels."
    )
    prm800k_steps = models.JSONField(null=True, blank=True)
    question_extra = models.JSONField(null=True, blank=True)
    undo_log = models.JSONField(
        default=list,
        blank=True,
        help_text="The labeler's last actions, newest last: what each changed, for undo.",
    )

    objects = LabelQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(total_time_ms__gte=0), name="label_time_positive")
        ]
        indexes = [
            # Export and training: a campaign's finished labels by PRM800K generation.
            models.Index(fields=["prm800k_generation", "id"], name="label_prm800k_generation"),
        ]

    def __str__(self) -> str:
        return f"label {self.pk}"

    # --- opening ----------------------------------------------------------------------------

    @staticmethod
    def prm800k_generation_of(
        assignment: Assignment, generation_number: int | None = None
    ) -> int | None:
        """The PRM800K generation a label of `assignment` is filed under: −1 for screening,
        none without a generation, else the generation's number (`generation_number`, when
        the caller already has it)."""
        if assignment.kind == Assignment.Kind.SCREENING:
            return Generation.SCREENING_NUMBER
        if not assignment.generation_id:
            return None
        if generation_number is not None:
            return generation_number
        return assignment.generation.number

    @classmethod
    def _fields_for(cls, assignment: Assignment, generation_number: int | None = None) -> dict:
        """What a new label of `assignment` starts with."""
        return {
            "sample_id": assignment.sample_id,
            "labeler_id": assignment.labeler_id,
            "prm800k_generation": cls.prm800k_generation_of(assignment, generation_number),
            "is_quality_control": assignment.kind == Assignment.Kind.QUALITY_CONTROL,
            "is_initial_screening": assignment.kind == Assignment.Kind.SCREENING,
        }

    @classmethod
    def for_assignment(cls, assignment: Assignment) -> Label:
        """The assignment's label, created on first open with its QC/screening flags set."""
        label, _ = cls.objects.get_or_create(
            assignment=assignment, defaults=cls._fields_for(assignment)
        )
        return label

    @classmethod
    def open_for(cls, assignment: Assignment, generation_number: int | None = None) -> None:
        """Make sure the assignment has its label, without reading it: one `INSERT … ON
        CONFLICT DO NOTHING` with the fields `for_assignment` gives a new label."""
        label = cls(assignment_id=assignment.pk, **cls._fields_for(assignment, generation_number))
        cls.objects.bulk_create([label], ignore_conflicts=True)

    @classmethod
    @contextmanager
    def locked(cls, assignment_id: int, labeler_id: int) -> Iterator[Label]:
        """A transaction holding `labeler_id`'s label of `assignment_id`, locked; an error in
        the block rolls all of it back. Raises `DoesNotExist` when that assignment is not the
        labeler's or has no label yet."""
        with transaction.atomic():
            yield cls.objects.locked().get(
                assignment_id=assignment_id, assignment__labeler_id=labeler_id
            )

    # --- reading ----------------------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    @property
    def step_texts(self) -> list[str]:
        return [str(step) for step in (self.sample.steps or [])]

    @property
    def editable(self) -> bool:
        """Open for changes: not finished, and its assignment (if any) still in progress."""
        if self.finish_reason is not None:
            return False
        assignment = self.assignment if self.assignment_id else None
        return assignment is None or assignment.state == Assignment.State.IN_PROGRESS

    @property
    def version(self) -> str:
        """Changes with every save of the label: what a page shows is tagged with it."""
        if self.updated_at is None:
            return ""
        return str((self.updated_at - _EPOCH) // timedelta(microseconds=1))

    def snapshot(
        self, *, read_only: bool = False, state: Mapping[int, StepState] | None = None
    ) -> LabelSnapshot:
        """Every step's rating, status and allowed actions, for the page.

        `state` ({step: (rating, flagged)}, e.g. `ActionResult.after`) is used instead of the
        stored ratings when given."""
        if state is None:
            state = _states(self._step_rows())
        texts = self.step_texts
        editable = self.editable and not read_only
        prefix = _rated_prefix(state)
        error_step = next((i for i in sorted(state) if state[i][0] == -1 and i < len(texts)), None)
        current = prefix if editable and prefix < len(texts) else None
        steps = []
        for index, text in enumerate(texts):
            rating, flagged = state.get(index, (None, False))
            if error_step is not None and index > error_step:
                status = "after_error"
            elif rating is not None:
                status = _STEP_NAMES[rating]
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
                    flagged=flagged,
                    status=status,
                    can_rate=actionable,
                    can_flag=actionable,
                )
            )
        if editable:
            can_undo = bool(self.undo_log) or any(r is not None for r, _ in state.values())
        else:
            can_undo = not read_only and self.can_reopen()
        return LabelSnapshot(
            steps=tuple(steps),
            current=current,
            error_step=error_step,
            finish_reason=self.finish_reason,
            editable=editable,
            can_undo=can_undo,
        )

    def can_reopen(self, now: datetime | None = None) -> bool:
        """Whether undo may re-open this finished label: its last action finished it and the
        lease it was finished under has not run out (a labeler holding another task is only
        refused when they try)."""
        if self.finish_reason is None or not self.undo_log or not self.assignment_id:
            return False
        assignment = self.assignment
        lease = assignment.lease_expires_at
        return (
            bool(self.undo_log[-1].get("finished"))
            and assignment.state == Assignment.State.SUBMITTED
            and lease is not None
            and lease > (now or timezone.now())
        )

    # --- actions (on a locked row) ------------------------------------------------------------

    def rate(
        self, step: int, rating: int, *, elapsed_ms: object = 0, now: datetime | None = None
    ) -> ActionResult:
        """Rate `step` (0-based) −1, 0 or +1; may finish the task or clear later ratings."""
        rows = self._read_for_action()
        now = self._check_open(now)
        step = self._valid_step(step)
        if rating not in RATINGS or isinstance(rating, bool):
            raise InvalidRating()
        before = _states(rows)
        prefix = _rated_prefix(before)
        if step > prefix:
            raise StepOutOfOrder(f"Rate step {prefix + 1} first.")
        row = rows.get(step) or StepRating(label_id=self.pk, step=step)
        row.rating = rating
        row.save()
        rows[step] = row
        cleared: tuple[int, ...] = ()
        finish = None
        later: list[int] = []
        if rating == -1:
            later = sorted(s for s in rows if s > step)
            cleared = tuple(s for s in later if rows[s].rating is not None)
            if later:
                # Steps after the first error are not part of the label: drop ratings and flags.
                StepRating.objects.filter(label_id=self.pk, step__gt=step).delete()
                for s in later:
                    del rows[s]
            finish = FinishReason.FOUND_ERROR
            dispatch.propose_alternatives(self.pk, self.sample.campaign)  # h8: PRM800K phase 2
        elif step == len(self.step_texts) - 1:
            finish = FinishReason.SOLUTION
        self._push_undo(step, before, [step, *later], finished=finish is not None)
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
        rows = self._read_for_action()
        now = self._check_open(now)
        step = self._valid_step(step)
        before = _states(rows)
        if step > _rated_prefix(before):
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
        self._push_undo(step, before, [step], finished=False)
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
        """Undo the last action: a rating (with the ratings a −1 cleared), a flag, or the
        action that finished the task, which re-opens it while the labeler's lease lasts.

        Labels rated before the undo log existed fall back to removing the last rating."""
        rows = self._read_for_action()
        before = _states(rows)
        entry = self.undo_log[-1] if self.undo_log else None
        reopen = self.finish_reason is not None and entry is not None and entry.get("finished")
        now = self._reopen(now) if reopen else self._check_open(now)
        if entry is None:
            rated = [s for s, r in rows.items() if r.rating is not None]
            if not rated:
                raise NothingToUndo()
            entry = {"step": max(rated), "steps": [[max(rated), None, rows[max(rated)].flagged]]}
        else:
            self.undo_log = self.undo_log[:-1]
        for step, rating, flagged in entry["steps"]:
            self._restore(rows, step, rating, flagged)
        step = entry["step"]
        version = self.version
        added = self._record(elapsed_ms, now, None, reopened=bool(reopen))
        return ActionResult(
            step=step,
            rating=before.get(step, (None, False))[0] if step is not None else None,
            flagged=before.get(step, (None, False))[1] if step is not None else None,
            reopened=bool(reopen),
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
        if reason not in FinishReason.values:
            raise InvalidFinishReason()
        state = _states(self._read_for_action())
        now = self._check_open(now)
        if reason == FinishReason.FOUND_ERROR and not any(r == -1 for r, _ in state.values()):
            raise InvalidFinishReason("Rate a step −1 to finish with an error.")
        if reason == FinishReason.SOLUTION and _rated_prefix(state) < len(self.step_texts):
            raise InvalidFinishReason("Rate every step to finish as a correct solution.")
        self._push_undo(None, state, [], finished=True)
        version = self.version
        added = self._record(elapsed_ms, now, reason)
        if reason == FinishReason.BAD_PROBLEM:
            self._report_bad_problem()
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
        self._read_for_action()
        try:
            now = self._check_open(now)
        except TaskClosed:
            return 0
        return self._record(elapsed_ms, now, None)

    # --- internals ----------------------------------------------------------------------------

    def _report_bad_problem(self) -> int:
        """A "bad problem" report puts the problem's ground truth under suspicion for the
        lead (`annotate.ground_truth`); an undo leaves the report standing."""
        who = self.labeler.get_username() if self.labeler_id else "?"
        note = f"Labeler {who} reported a bad problem (sample {self.sample_id})."
        problem = Sample.objects.filter(pk=self.sample_id).values("problem_id")
        return Problem.objects.filter(pk__in=problem).flag_suspect(note)

    def _step_rows(self) -> dict[int, StepRating]:
        if self.pk is None:
            return {}
        # No ordering: the model's default (label, step) would join the label table.
        rows = StepRating.objects.filter(label_id=self.pk).order_by()
        return {row.step: row for row in rows}

    def _read_for_action(self) -> dict[int, StepRating]:
        """The step ratings, read in one query with the label's and its assignment's current
        state, so a copy of the label loaded before the lock never acts on stale state."""
        label_fields = ["finish_reason", "finished_at", "total_time_ms", "updated_at", "undo_log"]
        assignment_fields = ["assignment__state", "assignment__lease_expires_at"]
        rating_fields = [f.attname for f in StepRating._meta.concrete_fields]
        values = list(
            Label.objects.filter(pk=self.pk)
            .order_by()
            .values_list(
                *label_fields,
                *assignment_fields,
                *(f"ratings__{name}" for name in rating_fields),
            )
        )
        split, end = len(label_fields), len(label_fields) + len(assignment_fields)
        for name, value in zip(label_fields, values[0][:split], strict=True):
            setattr(self, name, value)
        if self.assignment_id:
            self.assignment.state, self.assignment.lease_expires_at = values[0][split:end]
        rows: dict[int, StepRating] = {}
        for value in values:
            if value[end] is not None:  # a label without ratings joins one row of nulls
                row = StepRating.from_db(self._state.db, rating_fields, value[end:])
                rows[row.step] = row
        return rows

    def _check_open(self, now: datetime | None) -> datetime:
        if self.finish_reason is not None:
            raise TaskClosed()
        if self.assignment_id:
            state = self.assignment.state
            if state == Assignment.State.EXPIRED:
                raise LeaseLost()
            if state != Assignment.State.IN_PROGRESS:
                raise TaskClosed()
        return now or timezone.now()

    def _reopen(self, now: datetime | None) -> datetime:
        """Re-open the finished label and its submitted assignment (undo of the finishing
        action), only while the lease lasts and the labeler holds no other task."""
        now = now or timezone.now()
        if not self.can_reopen(now):
            raise UndoTooLate()
        assignment = self.assignment
        holds_other = Assignment.objects.filter(
            labeler_id=assignment.labeler_id, state=Assignment.State.IN_PROGRESS
        )
        reopened = (
            Assignment.objects.filter(
                pk=assignment.pk, state=Assignment.State.SUBMITTED, lease_expires_at__gt=now
            )
            .exclude(Exists(holds_other))
            .update(state=Assignment.State.IN_PROGRESS, submitted_at=None)
        )
        if not reopened:
            raise UndoTooLate()
        assignment.state, assignment.submitted_at = Assignment.State.IN_PROGRESS, None
        self.finish_reason, self.finished_at = None, None
        return now

    def _push_undo(
        self, step: int | None, before: Mapping[int, StepState], touched: list[int], finished: bool
    ) -> None:
        """Remember how to undo this action: the touched steps' states before it."""
        states = [[s, *before.get(s, (None, False))] for s in touched]
        entry = {"step": step, "steps": states, "finished": finished}
        self.undo_log = [*self.undo_log[-(UNDO_DEPTH - 1) :], entry]

    def _restore(
        self, rows: dict[int, StepRating], step: int, rating: int | None, flagged: bool
    ) -> None:
        """Put one step back as it was: a row when it has a rating or flag, else none."""
        row = rows.get(step)
        if rating is None and not flagged:
            if row is not None:
                row.delete()
                del rows[step]
            return
        row = row or StepRating(label_id=self.pk, step=step)
        row.rating, row.flagged = rating, flagged
        row.save()
        rows[step] = row

    def _valid_step(self, step: object) -> int:
        if isinstance(step, bool) or not isinstance(step, int):
            raise InvalidStep()
        if not 0 <= step < len(self.step_texts):
            raise InvalidStep()
        return step

    def _record(
        self, elapsed_ms: object, now: datetime, finish: str | None, *, reopened: bool = False
    ) -> int:
        """Save time, undo log and finish state on the label; renew or close the assignment."""
        since = (now - self.updated_at).total_seconds() * 1000 if self.updated_at else 0
        added = bounded_time_ms(elapsed_ms, since)
        self.total_time_ms += added
        fields = ["total_time_ms", "updated_at", "undo_log"]
        if finish is not None:
            self.finish_reason = finish
            self.finished_at = now
        if finish is not None or reopened:
            fields += ["finish_reason", "finished_at"]
        self.save(update_fields=fields)
        if not self.assignment_id:
            return added
        assignment = self.assignment
        if finish is not None:
            # Conditional, so a label can never submit an assignment that is no longer live.
            submitted = Assignment.objects.filter(
                pk=assignment.pk, state=Assignment.State.IN_PROGRESS
            ).update(state=Assignment.State.SUBMITTED, submitted_at=now)
            if not submitted:
                raise TaskClosed()
            assignment.state, assignment.submitted_at = Assignment.State.SUBMITTED, now
        else:
            # Saves renew the lease, so an active labeler never loses the task.
            lease = timedelta(minutes=self.sample.campaign.lease_minutes)
            until = now + lease
            current = assignment.lease_expires_at
            if current is None or until - current >= min(LEASE_RENEWAL_STEP, lease / 10):
                assignment.lease_expires_at = until
                assignment.save(update_fields=["lease_expires_at"])
        return added


def _rated_prefix(state: Mapping[int, StepState]) -> int:
    """How many steps from the first are rated (all non-negative in an open label)."""
    count = 0
    while count in state and state[count][0] is not None:
        count += 1
    return count


def _states(rows: Mapping[int, StepRating]) -> dict[int, StepState]:
    """{step: (rating, flagged)} of StepRating rows."""
    return {step: (row.rating, row.flagged) for step, row in rows.items()}


class StepRating(models.Model):
    """One step's rating within a native label, saved the moment the labeler clicks."""

    label = models.ForeignKey(Label, on_delete=models.CASCADE, related_name="ratings")
    step = models.PositiveSmallIntegerField()
    rating = models.SmallIntegerField(null=True, blank=True)
    flagged = models.BooleanField(default=False)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["label", "step"]
        constraints = [
            models.UniqueConstraint(fields=["label", "step"], name="step_rating_unique_step"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__in=[-1, 0, 1]),
                name="step_rating_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"step {self.step} of label {self.label_id}: {self.rating}"


class GoldStandard(models.Model):
    """A lead's reference labels for a sample served as quality control or screening."""

    class Purpose(models.TextChoices):
        QUALITY_CONTROL = "qc", "Quality control"
        SCREENING = "screening"

    sample = models.OneToOneField("annotate.Sample", on_delete=models.CASCADE, related_name="gold")
    purpose = models.CharField(max_length=10, choices=Purpose, default=Purpose.QUALITY_CONTROL)
    ratings = models.JSONField(help_text="Gold rating per step, up to and including the first −1.")
    finish_reason = models.CharField(max_length=12, choices=FinishReason)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [
            # Serving QC/screening items: gold of one purpose.
            models.Index(fields=["purpose"], name="gold_purpose"),
        ]

    def __str__(self) -> str:
        return f"gold ({self.purpose}) for sample {self.sample_id}"
