from __future__ import annotations

from django.conf import settings
from django.db import models


class ScreeningResultQuerySet(models.QuerySet):
    def for_campaign(self, campaign) -> ScreeningResultQuerySet:
        return self.filter(campaign=campaign)

    def passed(self) -> ScreeningResultQuerySet:
        return self.filter(status=ScreeningResult.Status.PASSED)

    def failed(self) -> ScreeningResultQuerySet:
        return self.filter(status=ScreeningResult.Status.FAILED)


class ScreeningResult(models.Model):
    """The outcome of one labeler's screening set in one campaign (PRM800K's generation −1).

    Written once the labeler has finished every screening item. A failed labeler stays blocked
    from the campaign's queue until a lead overrides the result in the admin.
    """

    class Status(models.TextChoices):
        PASSED = "passed"
        FAILED = "failed"

    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="screening_results"
    )
    labeler = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="screening_results"
    )
    status = models.CharField(max_length=10, choices=Status)
    agreement = models.FloatField(help_text="First-error agreement over the screening set.")
    step_agreement = models.FloatField(null=True, blank=True)
    items = models.PositiveIntegerField(help_text="Screening items compared with gold.")
    decided_at = models.DateTimeField(auto_now_add=True)
    overridden_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The lead who overrode the computed outcome, if any.",
    )

    objects = ScreeningResultQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "labeler"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "labeler"], name="screening_result_unique_labeler"
            )
        ]

    def __str__(self) -> str:
        return f"{self.labeler} {self.status} screening in {self.campaign}"

    @property
    def passed(self) -> bool:
        return self.status == self.Status.PASSED

    def override_pass(self, lead) -> None:
        """A lead lets a failed labeler into the campaign after reviewing their labels."""
        self.status = self.Status.PASSED
        self.overridden_by = lead
        self.save(update_fields=["status", "overridden_by"])


class QualitySettings(models.Model):
    """A campaign's label-quality settings: review sampling and consensus filtering.

    Kept beside the campaign (one row per campaign, defaults when missing) so the campaign's
    own settings stay about selection and the loop.
    """

    campaign = models.OneToOneField(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="quality_settings"
    )
    review_rate = models.FloatField(
        default=0.0, help_text="Share of finished labels sampled for a lead's review (0–1)."
    )
    train_on_consensus_only = models.BooleanField(
        default=False,
        help_text="Training keeps only samples whose label sources agree on the first error.",
    )

    class Meta:
        verbose_name_plural = "quality settings"
        constraints = [
            models.CheckConstraint(
                condition=models.Q(review_rate__gte=0) & models.Q(review_rate__lte=1),
                name="quality_settings_review_rate_0_1",
            )
        ]

    def __str__(self) -> str:
        return f"quality settings of {self.campaign}"

    @classmethod
    def of(cls, campaign) -> QualitySettings:
        """The campaign's settings, or the defaults (unsaved) when it has none."""
        found = cls.objects.filter(campaign=campaign).first()
        return found if found is not None else cls(campaign=campaign)


class ReviewQuerySet(models.QuerySet):
    def for_campaign(self, campaign) -> ReviewQuerySet:
        return self.filter(sample__campaign=campaign)

    def pending(self) -> ReviewQuerySet:
        return self.filter(state=Review.State.OPEN)

    def decided(self) -> ReviewQuerySet:
        return self.exclude(state=Review.State.OPEN)


class Review(models.Model):
    """A lead's look at one sample's finished labels, side by side.

    Accepting keeps one label; correcting adds the reviewer's own label (the originals stay,
    with their history); rejecting drops them all and re-opens a slot in the queue. Exports
    and training read the decision through `annotate.review.resolved`.
    """

    class State(models.TextChoices):
        OPEN = "open"
        ACCEPTED = "accepted"
        CORRECTED = "corrected"
        REJECTED = "rejected"

    class Reason(models.TextChoices):
        SAMPLED = "sampled", "Sampled at the review rate"
        DISAGREEMENT = "disagreement", "Overlapping labels disagree"
        FLAGGED = "flagged", "A step is flagged"
        SOURCES = "sources", "Label sources disagree"

    sample = models.ForeignKey("annotate.Sample", on_delete=models.CASCADE, related_name="reviews")
    labels = models.ManyToManyField("annotate.Label", related_name="reviews")
    reason = models.CharField(max_length=12, choices=Reason)
    state = models.CharField(max_length=10, choices=State, default=State.OPEN)
    chosen = models.ForeignKey(
        "annotate.Label",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="+",
        help_text="The label exports and training use: the accepted one or the correction.",
    )
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="reviews",
    )
    created_at = models.DateTimeField(auto_now_add=True)
    decided_at = models.DateTimeField(null=True, blank=True)

    objects = ReviewQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["sample"], condition=models.Q(state="open"), name="review_one_open"
            )
        ]

    def __str__(self) -> str:
        return f"review {self.pk} of sample {self.sample_id} ({self.state})"
