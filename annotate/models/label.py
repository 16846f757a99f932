from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

from annotate.models.label_rules import LabelRules


class FinishReason(models.TextChoices):
    FOUND_ERROR = "found_error"
    SOLUTION = "solution"
    BAD_PROBLEM = "bad_problem"
    GIVE_UP = "give_up"


class Label(LabelRules, models.Model):
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
    generation = models.IntegerField(
        null=True, blank=True, help_text="PRM800K generation: empty for phase 1, −1 screening."
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

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(condition=Q(total_time_ms__gte=0), name="label_time_positive")
        ]
        indexes = [
            # Export and training: a campaign's finished labels by generation.
            models.Index(fields=["generation", "id"], name="label_generation"),
        ]

    def __str__(self) -> str:
        return f"label {self.pk}"

    @property
    def is_finished(self) -> bool:
        return self.finish_reason is not None

    @classmethod
    def for_assignment(cls, assignment) -> Label:
        """The assignment's label, created on first open with its QC/screening flags set."""
        kind = assignment.kind
        screening = kind == assignment.Kind.SCREENING
        if screening:
            number = -1  # PRM800K files screening questions under generation −1.
        else:
            number = assignment.generation.number if assignment.generation_id else None
        label, _ = cls.objects.get_or_create(
            assignment=assignment,
            defaults={
                "sample_id": assignment.sample_id,
                "labeler_id": assignment.labeler_id,
                "generation": number,
                "is_quality_control": kind == assignment.Kind.QUALITY_CONTROL,
                "is_initial_screening": screening,
            },
        )
        return label


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
