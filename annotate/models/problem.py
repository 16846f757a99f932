from __future__ import annotations

from django.db import models
from django.db.models import Q


class GroundTruthStatus(models.TextChoices):
    """Whether a problem's ground-truth answer can be trusted for selection's wrong phase."""

    OK = "ok", "OK"
    SUSPECT = "suspect", "Suspect (a lead should check it)"
    CONFIRMED = "confirmed", "Confirmed by a lead"


class ProblemQuerySet(models.QuerySet):
    def suspect(self) -> ProblemQuerySet:
        return self.filter(ground_truth_status=GroundTruthStatus.SUSPECT)

    def flag_suspect(self, note: str) -> int:
        """Mark these problems' ground truth suspect, with why; only problems still `ok`
        (a lead's confirmation stands). Returns how many were flagged."""
        return self.filter(ground_truth_status=GroundTruthStatus.OK).update(
            ground_truth_status=GroundTruthStatus.SUSPECT, ground_truth_note=note
        )

    def confirm_ground_truth(self, note: str) -> int:
        """A lead vouches for these ground truths: their samples count as wrong again."""
        return self.exclude(ground_truth_status=GroundTruthStatus.CONFIRMED).update(
            ground_truth_status=GroundTruthStatus.CONFIRMED, ground_truth_note=note
        )


class Problem(models.Model):
    """A math problem with its ground truth, as MATH/PRM800K describe it."""

    GroundTruth = GroundTruthStatus

    class Split(models.TextChoices):
        TRAIN = "train"
        TEST = "test"

    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="problems"
    )
    unique_id = models.CharField(max_length=255)
    problem = models.TextField()
    ground_truth_answer = models.TextField()
    ground_truth_solution = models.TextField(blank=True)
    subject = models.CharField(max_length=100, blank=True)
    level = models.PositiveSmallIntegerField(null=True, blank=True)
    split = models.CharField(max_length=5, choices=Split, default=Split.TRAIN)
    # Suspect: its samples are not "wrong" for selection until a lead confirms or fixes it.
    ground_truth_status = models.CharField(
        max_length=10, choices=GroundTruthStatus, default=GroundTruthStatus.OK
    )
    ground_truth_note = models.TextField(
        blank=True, help_text="Why the ground truth was flagged, or who confirmed it."
    )

    objects = ProblemQuerySet.as_manager()

    class Meta:
        ordering = ["campaign", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "unique_id"], name="problem_unique_per_campaign"
            )
        ]
        indexes = [
            # Selection pool: a campaign's problems of one split.
            models.Index(fields=["campaign", "split"], name="problem_campaign_split"),
        ]

    def __str__(self) -> str:
        return self.unique_id


def counts_as_wrong(prefix: str = "") -> Q:
    """The one rule for a wrong-answer sample in selection (`prefix`: the path to the sample,
    e.g. "sample__"): graded wrong, and its problem's ground truth not under suspicion."""
    return Q(**{f"{prefix}is_correct": False}) & ~Q(
        **{f"{prefix}problem__ground_truth_status": GroundTruthStatus.SUSPECT}
    )


class SampleQuerySet(models.QuerySet):
    def for_campaign(self, campaign) -> SampleQuerySet:
        return self.filter(campaign=campaign)

    def train(self) -> SampleQuerySet:
        return self.filter(problem__split=Problem.Split.TRAIN)

    def test(self) -> SampleQuerySet:
        return self.filter(problem__split=Problem.Split.TEST)

    def answered(self) -> SampleQuerySet:
        return self.exclude(answer__isnull=True)


class Sample(models.Model):
    """One model-written solution to a problem, split into steps.

    Steps are one JSON array column: a pool is ~10⁷ samples, not 10⁸ step rows. The primary
    key follows import order, which breaks score ties in selection.
    """

    campaign = models.ForeignKey(
        "annotate.Campaign", on_delete=models.CASCADE, related_name="samples"
    )
    problem = models.ForeignKey(Problem, on_delete=models.CASCADE, related_name="samples")
    external_id = models.CharField(max_length=255)
    steps = models.JSONField()
    answer = models.TextField(null=True, blank=True)
    is_correct = models.BooleanField(null=True)
    generator = models.CharField(max_length=200, blank=True)
    steps_hash = models.CharField(
        max_length=32, help_text="Digest of the whitespace-normalized steps, for dedup."
    )
    verifier_score = models.FloatField(null=True, blank=True)
    # Generated samples: solution `index` of `problem`, by generation (none: the `generate`
    # command outside the loop); empty for imported ones.
    generation = models.ForeignKey(
        "annotate.Generation",
        null=True,
        blank=True,
        on_delete=models.RESTRICT,
        related_name="generated_samples",
    )
    index = models.PositiveIntegerField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SampleQuerySet.as_manager()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["campaign", "external_id"], name="sample_unique_external_id"
            ),
            # The keys that make generating idempotent: a retried request never duplicates.
            models.UniqueConstraint(
                fields=["problem", "generation", "index"],
                condition=Q(generation__isnull=False, index__isnull=False),
                name="sample_unique_generated_index",
            ),
            models.UniqueConstraint(
                fields=["problem", "index"],
                condition=Q(generation__isnull=True, index__isnull=False),
                name="sample_unique_command_index",
            ),
        ]
        indexes = [
            # Selection pool scan: a campaign's samples in import order.
            models.Index(fields=["campaign", "id"], name="sample_campaign_import_order"),
            # Dedup: samples of one problem with the same normalized steps.
            models.Index(fields=["problem", "steps_hash"], name="sample_problem_steps_hash"),
            # The selection pool without the heap (an index-only scan; steps make rows ~1.5 kB):
            # at 12M samples one 10⁶-id range took 4.3 s through the heap, 1.5 s from here.
            # external_id: a preview names its ~10⁵ picks from here too, not from cold heap pages.
            models.Index(
                fields=["campaign", "id"],
                include=["problem", "is_correct", "verifier_score", "steps_hash", "external_id"],
                condition=Q(answer__isnull=False),
                name="sample_pool",
            ),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_wrong(self) -> bool:
        return self.is_correct is False
