from __future__ import annotations

from django.db import models


class Generation(models.Model):
    """One turn of the loop: a checkpoint, the samples it picked, their assignments."""

    class Status(models.TextChoices):
        PENDING = "pending"
        SCORING = "scoring"
        SELECTING = "selecting"
        OPEN = "open"
        COMPLETE = "complete"
        FAILED = "failed"

    class ScoreSource(models.TextChoices):
        IMPORTED = "imported", "Imported verifier scores"
        CHECKPOINT = "checkpoint", "A checkpoint's scores"

    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="generations"
    )
    number = models.IntegerField()
    checkpoint = models.ForeignKey(
        "annotate.Checkpoint",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="generations",
    )
    score_source = models.CharField(
        max_length=12, choices=ScoreSource, default=ScoreSource.IMPORTED
    )
    params = models.JSONField(default=dict, help_text="Frozen selection parameters.")
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["campaign", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="generation_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.campaign.slug} generation {self.number}"

    @property
    def progress(self) -> float:
        return self.progress_done / self.progress_total if self.progress_total else 0.0


class Selection(models.Model):
    """A sample picked for a generation; a sample is selected at most once per campaign."""

    generation = models.ForeignKey(Generation, on_delete=models.CASCADE, related_name="selections")
    sample = models.OneToOneField(
        "annotate.Sample", on_delete=models.CASCADE, related_name="selection"
    )
    rank = models.PositiveIntegerField(help_text="Position in selection order.")
    score = models.FloatField()
    is_wrong = models.BooleanField()

    class Meta:
        ordering = ["generation", "rank"]
        constraints = [
            models.UniqueConstraint(fields=["generation", "rank"], name="selection_unique_rank")
        ]

    def __str__(self) -> str:
        return f"#{self.rank} of generation {self.generation_id}: sample {self.sample_id}"
