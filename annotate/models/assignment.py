"""Assignments: one sample for one labeler within a generation, held under a lease."""

from __future__ import annotations

from django.conf import settings
from django.db import models, transaction
from django.db.models import Q
from django.db.models.signals import m2m_changed
from django.dispatch import receiver


class AssignmentQuerySet(models.QuerySet):
    def live(self) -> AssignmentQuerySet:
        return self.filter(state__in=Assignment.LIVE_STATES)

    def for_labeler(self, user) -> AssignmentQuerySet:
        return self.filter(labeler=user)

    def unclaimed(self) -> AssignmentQuerySet:
        return self.filter(state=Assignment.State.OPEN, labeler__isnull=True)

    def release(self) -> int:
        """Take these in-progress assignments from their labelers: mark them `expired` (their
        labels stay attached) and put regular work back in the queue as fresh unclaimed
        slots; QC and screening slots are per-labeler, so those are only expired.

        Returns how many were released."""
        with transaction.atomic():
            held = list(
                self.filter(state=Assignment.State.IN_PROGRESS)
                .select_for_update(of=("self",))
                .order_by()
                .values_list("pk", "generation_id", "sample_id", "kind")
            )
            if not held:
                return 0
            Assignment.objects.filter(pk__in=[pk for pk, *_ in held]).update(
                state=Assignment.State.EXPIRED
            )
            Assignment.objects.bulk_create(
                Assignment(generation_id=generation_id, sample_id=sample_id, kind=kind)
                for _, generation_id, sample_id, kind in held
                if kind == Assignment.Kind.REGULAR and generation_id is not None
            )
            return len(held)


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


@receiver(m2m_changed, sender="annotate.Campaign_labelers")
def release_work_of_removed_labelers(sender, instance, action, reverse, pk_set, **kwargs) -> None:
    """A labeler taken off a campaign loses the tasks of it they hold, whichever side of the
    membership was changed (`campaign.labelers.remove(user)`, `user.campaigns.clear()`)."""
    if action not in ("post_remove", "pre_clear"):
        return
    held = Assignment.objects.all()
    if reverse:  # `instance` is the user
        held = held.filter(labeler=instance)
        if action == "post_remove":
            held = held.filter(sample__campaign_id__in=pk_set)
    else:
        held = held.filter(sample__campaign=instance)
        if action == "post_remove":
            held = held.filter(labeler_id__in=pk_set)
        else:
            held = held.filter(labeler__isnull=False)
    held.release()
