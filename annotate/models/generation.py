from __future__ import annotations

from collections.abc import Iterable

from django.db import models
from django.utils import timezone


class GenerationQuerySet(models.QuerySet):
    def numbered(self) -> GenerationQuerySet:
        """Generations of the loop, not PRM800K's screening generation."""
        return self.filter(number__gt=Generation.SCREENING_NUMBER)

    def open(self) -> GenerationQuerySet:
        return self.filter(status=Generation.Status.OPEN)

    def running(self) -> GenerationQuerySet:
        return self.filter(status__in=Generation.RUNNING_STATES)

    def newest(self) -> Generation | None:
        return self.numbered().order_by("-number").first()


class Generation(models.Model):
    """One turn of the loop: a checkpoint, the samples it picked, their assignments."""

    class Status(models.TextChoices):
        PENDING = "pending"
        GENERATING = "generating"
        SCORING = "scoring"
        SELECTING = "selecting"
        OPEN = "open"
        COMPLETE = "complete"
        FAILED = "failed"

    #: PRM800K files screening questions under this generation number; the loop's start at 0.
    SCREENING_NUMBER = -1
    #: A generation in these states is in the pipeline; one at a time per campaign.
    RUNNING_STATES = (Status.PENDING, Status.GENERATING, Status.SCORING, Status.SELECTING)
    #: Scoring starts from these (scoring itself: a redelivered preparation).
    SCORABLE_STATES = (Status.PENDING, Status.GENERATING, Status.SCORING)

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
    generator = models.JSONField(
        default=dict,
        blank=True,
        help_text="Frozen generator settings (no API key); n = 0: import only.",
    )
    status = models.CharField(max_length=10, choices=Status, default=Status.PENDING)
    samples_generated = models.PositiveIntegerField(default=0)
    samples_wanted = models.PositiveIntegerField(default=0)
    generation_summary = models.JSONField(
        default=dict, blank=True, help_text="What the generator did: counts and tokens."
    )
    progress_done = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)

    objects = GenerationQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["campaign", "number"], name="generation_unique_number")
        ]

    def __str__(self) -> str:
        return f"{self.campaign.slug} generation {self.number}"

    @property
    def generates(self) -> bool:
        """Its pipeline starts by generating samples (the snapshot asks for n > 0)."""
        return bool(self.generator.get("n"))

    @property
    def progress(self) -> float:
        return self.progress_done / self.progress_total if self.progress_total else 0.0

    # --- lifecycle: pending (→ generating) → scoring → selecting → open → complete; failed
    # from any running state, pending again on a restart. Every change is one conditional
    # UPDATE: True for the one caller that made it, so concurrent or redelivered tasks never
    # apply it twice.

    def _flip(self, sources: Iterable[str], target: str, **fields) -> bool:
        rows = Generation.objects.filter(pk=self.pk, status__in=list(sources))
        return self._apply(rows, target, **fields)

    def _apply(self, rows: models.QuerySet, target: str, **fields) -> bool:
        now = timezone.now()
        if not rows.update(status=target, updated_at=now, **fields):
            return False
        self.status, self.updated_at = target, now
        for name, value in fields.items():
            setattr(self, name, value)
        return True

    def restart(self, **fields) -> bool:
        """failed → pending: the lead's next start runs a failed generation again."""
        return self._flip([self.Status.FAILED], self.Status.PENDING, error="", **fields)

    def start_generating(self, *, samples_wanted: int) -> bool:
        """pending (or generating again, on a redelivery) → generating: N samples per problem."""
        return self._flip(
            [self.Status.PENDING, self.Status.GENERATING],
            self.Status.GENERATING,
            samples_wanted=samples_wanted,
        )

    def start_scoring(self, *, progress_total: int, progress_done: int = 0) -> bool:
        """pending or generating (or scoring again, on a redelivery) → scoring, with its
        progress counter."""
        return self._flip(
            self.SCORABLE_STATES,
            self.Status.SCORING,
            progress_done=progress_done,
            progress_total=progress_total,
        )

    def mark_scored(self) -> bool:
        """scoring → selecting, once no scoring chunk is left (none at all: imported scores)."""
        rows = Generation.objects.filter(pk=self.pk, status=self.Status.SCORING).exclude(
            scoring_chunks__done=False
        )
        return self._apply(rows, self.Status.SELECTING)

    def open(self, **fields) -> bool:
        """selecting → open: its selections and assignment slots are written."""
        return self._flip(
            [self.Status.SELECTING], self.Status.OPEN, opened_at=timezone.now(), error="", **fields
        )

    def complete(self) -> bool:
        """open → complete: the loop retrained on it and moved on."""
        return self._flip([self.Status.OPEN], self.Status.COMPLETE, completed_at=timezone.now())

    def fail(self, error: str) -> bool:
        """Any running state → failed, with why; open and complete generations stay."""
        return self._flip(
            (*self.RUNNING_STATES, self.Status.FAILED), self.Status.FAILED, error=error[:5000]
        )


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
