"""Alternatives at the first error (PRM800K phase 2): other versions of the step a labeler
rated −1, proposed by the campaign's generator and rated by the same labeler.

The PRM800K export writes the rated ones after the original as that step's `completions`
(`chosen_completion` null, as PRM800K records found_error steps); training takes each rated
one as one more example ending at its step.
"""

from __future__ import annotations

from collections.abc import Sequence

from django.db import models
from django.db.models import Q
from django.utils import timezone

RATINGS = (-1, 0, 1)


class AlternativeQuerySet(models.QuerySet):
    def rated(self) -> AlternativeQuerySet:
        return self.filter(rating__isnull=False)

    def unrated(self) -> AlternativeQuerySet:
        return self.filter(rating__isnull=True)


class Alternative(models.Model):
    """Candidate `index` for step `step` of a found_error label."""

    label = models.ForeignKey(
        "annotate.Label", on_delete=models.CASCADE, related_name="alternatives"
    )
    step = models.PositiveSmallIntegerField(help_text="The erroneous step it replaces.")
    index = models.PositiveSmallIntegerField(help_text="Order proposed, from 0.")
    text = models.TextField()
    rating = models.SmallIntegerField(null=True, blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = AlternativeQuerySet.as_manager()

    class Meta:
        ordering = ["label", "index"]
        constraints = [
            # A redelivered proposal task inserts nothing twice.
            models.UniqueConstraint(fields=["label", "index"], name="alternative_unique_index"),
            models.CheckConstraint(
                condition=Q(rating__isnull=True) | Q(rating__in=RATINGS),
                name="alternative_rating_in_range",
            ),
        ]

    def __str__(self) -> str:
        return f"alternative {self.index} to step {self.step} of label {self.label_id}"

    @classmethod
    def store(cls, label_id: int, step: int, texts: Sequence[str]) -> int:
        """Keep `texts` (already deduplicated) as the label's alternatives, unless it has some
        already; returns how many were written."""
        rows = [
            cls(label_id=label_id, step=step, index=i, text=text) for i, text in enumerate(texts)
        ]
        if cls.objects.filter(label_id=label_id).exists():
            return 0
        return len(cls.objects.bulk_create(rows, ignore_conflicts=True))

    def rate(self, rating: int) -> bool:
        """Rate it −1, 0 or +1 (again, to change); False when its label is no longer a
        found_error (the rating is then not written). Raises ValueError on another value."""
        if rating not in RATINGS or isinstance(rating, bool):
            raise ValueError("an alternative is rated -1, 0 or 1")
        now = timezone.now()
        rows = Alternative.objects.filter(
            pk=self.pk,
            label__finish_reason="found_error",
            label__ratings__step=self.step,
            label__ratings__rating=-1,
        )
        if not rows.update(rating=rating, rated_at=now):
            return False
        self.rating, self.rated_at = rating, now
        return True
