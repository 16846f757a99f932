from __future__ import annotations

from django.db import models


class Checkpoint(models.Model):
    """A PRM on disk, as a record: where it is, how to load it, what it was trained on."""

    class Status(models.TextChoices):
        TRAINING = "training"
        READY = "ready"
        ACTIVE = "active"
        REJECTED = "rejected"
        FAILED = "failed"

    class Adapter(models.TextChoices):
        TOKEN_CLASSIFICATION = "token-classification"
        QWEN_PRM = "qwen-prm"
        TAG_TOKEN = "tag-token"

    campaign = models.ForeignKey(
        "annotate.Campaign",
        null=True,
        blank=True,
        on_delete=models.CASCADE,
        related_name="checkpoints",
    )
    name = models.CharField(max_length=200)
    path = models.CharField(max_length=1000, help_text="Local directory with the weights.")
    adapter = models.CharField(max_length=30, choices=Adapter, default=Adapter.TOKEN_CLASSIFICATION)
    base_model = models.CharField(max_length=1000, blank=True)
    trained_on_labels = models.PositiveIntegerField(default=0)
    trained_on_generation = models.IntegerField(null=True, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    training_record = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status, default=Status.READY)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"checkpoint {self.pk}"


class Score(models.Model):
    """A checkpoint's verdict on one sample: solution score and per-step scores."""

    sample = models.ForeignKey("annotate.Sample", on_delete=models.CASCADE, related_name="scores")
    checkpoint = models.ForeignKey(Checkpoint, on_delete=models.CASCADE, related_name="scores")
    score = models.FloatField()
    step_scores = models.JSONField(default=list)
    truncated = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["sample", "checkpoint"], name="score_unique_sample_checkpoint"
            ),
            models.CheckConstraint(
                condition=models.Q(score__gte=0) & models.Q(score__lte=1),
                name="score_between_0_1",
            ),
        ]
        indexes = [
            # Selection pool with model scores: every score of one checkpoint, by sample.
            models.Index(fields=["checkpoint", "sample"], name="score_checkpoint_sample"),
        ]

    def __str__(self) -> str:
        return f"score {self.score:.4f}, sample {self.sample_id}, checkpoint {self.checkpoint_id}"
