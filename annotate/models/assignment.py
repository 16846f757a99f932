"""Assignments: one sample for one labeler within a generation, held under a lease."""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q


class AssignmentQuerySet(models.QuerySet):
    def live(self) -> AssignmentQuerySet:
        return self.filter(state__in=Assignment.LIVE_STATES)

    def for_labeler(self, user) -> AssignmentQuerySet:
        return self.filter(labeler=user)

    def unclaimed(self) -> AssignmentQuerySet:
        return self.filter(state=Assignment.State.OPEN, labeler__isnull=True)


class Assignment(models.Model):
    """A unit of work: one sample for one labeler within a generation, held under a lease.

    Selection creates unclaimed slots (`labeler` empty, `overlap` per sample); handing out
    work claims a slot for a labeler until `lease_expires_at`.
    """

    class State(models.TextChoices):
        OPEN = "open"
        IN_PROGRESS = "in_progress"
        SUBMITTED = "submitted"
        EXPIRED = "expired"

    class Kind(models.TextChoices):
        REGULAR = "regular"
        QUALITY_CONTROL = "qc", "Quality control"
        SCREENING = "screening"

    class Reason(models.TextChoices):
        """Why the queue served the assignment (see `annotate.queue`); empty until claimed."""

        REGULAR = "regular", "Next open slot"
        LAPSED_LEASE = "lapsed_lease", "Taken over from a lapsed lease"
        QUALITY_CONTROL = "qc", "Quality control gold"
        SCREENING = "screening", "Screening gold"

    class Arm(models.TextChoices):
        """Which selection drew the sample (`selector.selection.select_arms`); never shown to
        labelers."""

        ACTIVE = "active"
        UNIFORM = "uniform", "Uniform control"

    LIVE_STATES = (State.OPEN, State.IN_PROGRESS)

    generation = models.ForeignKey(
        "annotate.Generation",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="assignments",
        help_text="Empty for screening items (PRM800K's generation −1).",
    )
    sample = models.ForeignKey(
        "annotate.Sample", on_delete=models.CASCADE, related_name="assignments"
    )
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="assignments",
    )
    kind = models.CharField(max_length=10, choices=Kind, default=Kind.REGULAR)
    state = models.CharField(max_length=12, choices=State, default=State.OPEN)
    reason = models.CharField(max_length=12, choices=Reason, blank=True)
    arm = models.CharField(max_length=8, choices=Arm, default=Arm.ACTIVE)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(null=True, blank=True)

    objects = AssignmentQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sample", "labeler"],
                condition=Q(state__in=["open", "in_progress"]),
                name="assignment_one_live_per_sample_labeler",
            ),
            models.CheckConstraint(
                condition=Q(labeler__isnull=False) | Q(state="open"),
                name="assignment_unclaimed_is_open",
            ),
        ]
        indexes = [
            # Next task: oldest unclaimed open slot of the newest generation.
            models.Index(
                fields=["generation", "id"],
                condition=Q(state="open", labeler__isnull=True),
                name="assignment_unclaimed_queue",
            ),
            # A labeler's own work: live lease first, counts on the home page.
            models.Index(fields=["labeler", "state"], name="assignment_labeler_state"),
            # Lease expiry sweep: claimed work whose lease ran out.
            models.Index(
                fields=["lease_expires_at"],
                condition=Q(state="in_progress"),
                name="assignment_lease_expiry",
            ),
        ]

    def __str__(self) -> str:
        return f"assignment {self.pk} ({self.state})"

    @classmethod
    def reason_for(cls, kind: str) -> str:
        """Why a claim of an assignment of `kind` was served, unless it took a lapsed lease."""
        reasons = {
            cls.Kind.REGULAR: cls.Reason.REGULAR,
            cls.Kind.QUALITY_CONTROL: cls.Reason.QUALITY_CONTROL,
            cls.Kind.SCREENING: cls.Reason.SCREENING,
        }
        return reasons[kind]
