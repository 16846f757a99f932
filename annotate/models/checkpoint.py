from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db import models


class Checkpoint(models.Model):
    """A PRM on disk, as a record: where it is, how to load it, what it was trained on.

    A checkpoint of the retraining loop also records its stage in the loop, what triggered it
    and the generation whose labels it was trained for.
    """

    class Status(models.TextChoices):
        TRAINING = "training"
        READY = "ready"
        ACTIVE = "active"
        REJECTED = "rejected"
        FAILED = "failed"

    class Adapter(models.TextChoices):
        TOKEN_CLASSIFICATION = "token-classification"
        QWEN_PRM = "qwen-prm"
        SKYWORK_PRM = "skywork-prm"
        TAG_TOKEN = "tag-token"

    class Stage(models.TextChoices):
        TRAINING = "training"
        EVALUATING = "evaluating"
        GATING = "gating"
        DONE = "done"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        LABEL_TARGET = "label_target", "Label target reached"
        SCHEDULE = "schedule", "Campaign schedule"
        MANUAL = "manual", "Retrain now"

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
    # --- the retraining loop (empty for checkpoints trained or registered outside it) ---
    retrain_trigger = models.CharField(max_length=12, choices=Trigger, blank=True)
    retrain_stage = models.CharField(max_length=10, choices=Stage, blank=True)
    retrain_generation = models.IntegerField(
        null=True, blank=True, help_text="Number of the generation whose labels triggered it."
    )
    next_generation = models.IntegerField(
        null=True, blank=True, help_text="Number of the generation the loop opened after it."
    )
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return self.name or f"checkpoint {self.pk}"

    @staticmethod
    def directory_for(campaign, name: str) -> Path:
        """Where a checkpoint of `campaign` called `name` keeps its weights."""
        return Path(settings.STEPWISE_MODEL_DIR) / campaign.slug / name

    # --- lifecycle: training → ready | rejected | failed; ready ⇄ active. In the loop, a
    # training checkpoint goes through the stages training → evaluating → gating → done.
    # Every change is one conditional UPDATE: True for the one caller that made it.

    def _flip(self, rows: models.QuerySet, **fields) -> bool:
        if not rows.filter(pk=self.pk).update(**fields):
            return False
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def advance(self, source: str, target: str) -> bool:
        """Move a training checkpoint from loop stage `source` to `target`."""
        rows = Checkpoint.objects.filter(status=self.Status.TRAINING, retrain_stage=source)
        return self._flip(rows, retrain_stage=target)

    def finish_training(self, status: str = Status.READY) -> bool:
        """training → `status` (ready for a command's run; the gate decides in the loop)."""
        return self._flip(Checkpoint.objects.filter(status=self.Status.TRAINING), status=status)

    def resume_training(self) -> bool:
        """failed (or training) → training: a command picks a stopped training up again."""
        sources = [self.Status.TRAINING, self.Status.FAILED]
        return self._flip(
            Checkpoint.objects.filter(status__in=sources), status=self.Status.TRAINING
        )

    #: What `make_active` accepts.
    ACTIVATABLE = (Status.READY, Status.ACTIVE, Status.REJECTED)

    def make_active(self) -> bool:
        """ready (active already, or rejected and now promoted by a later gate) → active;
        Campaign.activate keeps one active per campaign."""
        sources = Checkpoint.objects.filter(status__in=self.ACTIVATABLE)
        return self._flip(sources, status=self.Status.ACTIVE)

    def deactivate(self) -> bool:
        """active → ready: another checkpoint now scores the campaign."""
        rows = Checkpoint.objects.filter(status=self.Status.ACTIVE)
        return self._flip(rows, status=self.Status.READY)

    def reject(self) -> bool:
        """training (or ready, or rejected before) → rejected: the gate kept the active one."""
        sources = [self.Status.TRAINING, self.Status.READY, self.Status.REJECTED]
        rows = Checkpoint.objects.filter(status__in=sources)
        return self._flip(rows, status=self.Status.REJECTED)

    def fail(self, error: str) -> bool:
        """training → failed, with why, so the loop can retry its generation."""
        rows = Checkpoint.objects.filter(status=self.Status.TRAINING)
        return self._flip(
            rows, status=self.Status.FAILED, retrain_stage=self.Stage.FAILED, error=error[:5000]
        )


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
            # Selection pool with model scores: one checkpoint's scores by sample, index-only.
            models.Index(
                fields=["checkpoint", "sample"], include=["score"], name="score_checkpoint_pool"
            ),
        ]

    def __str__(self) -> str:
        return f"score {self.score:.4f}, sample {self.sample_id}, checkpoint {self.checkpoint_id}"
