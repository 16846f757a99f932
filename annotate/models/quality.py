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
