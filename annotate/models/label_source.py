"""Automatic label sources: step labels from something other than a labeler.

A `LabelSource` is one named source within a campaign (`mc`, `judge`, …) with the campaign's
settings for it; a `SourceLabel` is its verdict on one sample: hard ratings (−1/0/+1) or soft
scores in [0, 1] (the probability the step is correct) per step, with provenance (for `mc` the
rollouts per step and the completer model, for `judge` the judge model and its critique).
"""

from __future__ import annotations

from django.db import models


class LabelSource(models.Model):
    class Kind(models.TextChoices):
        HARD = "hard", "Hard ratings (−1/0/+1)"
        SOFT = "soft", "Soft scores in [0, 1]"

    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="label_sources"
    )
    name = models.SlugField(max_length=50)
    kind = models.CharField(max_length=4, choices=Kind)
    show_to_labelers = models.BooleanField(
        default=False,
        help_text="Labelers see this source's suggestion (off by default: it anchors them).",
    )
    use_for_training = models.BooleanField(
        default=False, help_text="Training adds this source's labels as examples."
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["campaign", "name"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "name"], name="label_source_unique_name")
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.campaign})"


class SourceLabel(models.Model):
    """One source's step labels for one sample: `ratings` (hard) or `scores` (soft)."""

    source = models.ForeignKey(LabelSource, on_delete=models.CASCADE, related_name="labels")
    sample = models.ForeignKey(
        "annotate.Sample", on_delete=models.CASCADE, related_name="source_labels"
    )
    ratings = models.JSONField(null=True, blank=True, help_text="−1/0/+1 per step (hard).")
    scores = models.JSONField(null=True, blank=True, help_text="[0, 1] per step (soft).")
    provenance = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "sample"], name="source_label_unique"),
            models.CheckConstraint(
                condition=models.Q(ratings__isnull=True, scores__isnull=False)
                | models.Q(ratings__isnull=False, scores__isnull=True),
                name="source_label_hard_or_soft",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source.name} label of sample {self.sample_id}"
