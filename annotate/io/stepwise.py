"""TRL stepwise supervision export: `{"prompt", "completions", "labels"}` per finished label.

TRL's "stepwise supervision" dataset type (PRMTrainer) has a string `prompt`, a list of step
strings `completions` and a list of booleans `labels`, one per step. Steps run up to and
including the first error: a −1 is False, +1 True, and a neutral 0 follows `neutral`:
`positive` (True, as Qwen's PRM800K conversion and the paper's best setting) or `negative`
(False, as TRL's own PRM800K script); by default the campaign's `neutral_is_positive`.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from typing import IO, Any

from django.db.models import QuerySet

from annotate.consensus import consensus_samples
from annotate.io.prm800k import finished_labels, iter_chunks, ratings_for
from annotate.models import Campaign
from annotate.models.label import FinishReason
from annotate.review import unresolved_samples

_FIELDS = ("id", "prm800k_steps", "sample__steps", "sample__problem__problem")


def rated_path(
    steps: list[str] | None,
    prm800k_steps: list[dict[str, Any]] | None,
    ratings: dict[int, tuple[int | None, bool]],
) -> list[tuple[str, int]]:
    """(step text, rating) along the labeled solution, up to and including the first −1.

    Native labels pair the sample's steps with their StepRatings. Imported PRM800K labels
    follow each step's chosen completion; a step with none chosen ends the path, with its
    first completion when that one was rated −1 (the error the labeler found).
    """
    path: list[tuple[str, int]] = []
    if prm800k_steps is None:
        for index, text in enumerate(steps or []):
            rating = ratings.get(index, (None, False))[0]
            if rating is None:
                break
            path.append((text, rating))
            if rating < 0:
                break
        return path
    for step in prm800k_steps:
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        if chosen is not None:
            completion = completions[chosen]
            if completion.get("rating") is None:
                break
            path.append((completion["text"], completion["rating"]))
            if completion["rating"] < 0:
                break
            continue
        if completions and completions[0].get("rating") == -1:
            path.append((completions[0]["text"], -1))
        break
    return path


NEUTRAL = ("positive", "negative")

#: Finish reasons that judged the whole solution (`finished_only` keeps only these).
VERDICTS = (FinishReason.FOUND_ERROR, FinishReason.SOLUTION)

#: Why a finished label is left out, in the order the rules apply (the export's report).
SKIP_REASONS = {
    "unresolved": "its sample's labels disagree and no review settled them",
    "no_consensus": "its label sources disagree on the first error",
    "gold": "its sample is a gold (QC or screening) item",
    "not_finished": "it ended in give_up or bad_problem",
    "no_rated_step": "it rated no step",
}


class StepwiseExport:
    """One stepwise export of a campaign: `records()` streams it, and `skipped` counts the
    finished labels left out, by `SKIP_REASONS` key (complete once the stream has ended)."""

    def __init__(
        self,
        campaign: Campaign,
        *,
        generation: int | None = None,
        chunk_size: int = 2000,
        neutral: str | None = None,
        include_unresolved: bool = True,
        consensus_only: bool = False,
        exclude_gold: bool = False,
        finished_only: bool = False,
    ) -> None:
        if neutral is not None and neutral not in NEUTRAL:
            raise ValueError(f"neutral maps to one of {NEUTRAL}, not {neutral!r}")
        self.campaign, self.generation, self.chunk_size = campaign, generation, chunk_size
        self.neutral_ok = campaign.neutral_is_positive if neutral is None else neutral == "positive"
        self.rules = {
            "unresolved": not include_unresolved,
            "no_consensus": consensus_only,
            "gold": exclude_gold,
            "not_finished": finished_only,
        }
        self.skipped: Counter[str] = Counter()
        self._labels: QuerySet | None = None

    def labels(self) -> QuerySet:
        """The finished labels to write; each rule asked for costs one count, into `skipped`
        (once: later calls return the same queryset)."""
        if self._labels is None:
            self._labels = self._filtered()
        return self._labels

    def _filtered(self) -> QuerySet:
        labels = finished_labels(self.campaign, self.generation)
        before = None
        for reason, wanted in self.rules.items():
            if not wanted:
                continue
            before = labels.count() if before is None else before
            labels = self._apply(reason, labels)
            after = labels.count()
            self.skipped[reason] += before - after
            before = after
        return labels

    def _apply(self, reason: str, labels: QuerySet) -> QuerySet:
        if reason == "unresolved":  # disagreement over every generation, as finished_labels
            return labels.exclude(sample_id__in=unresolved_samples(finished_labels(self.campaign)))
        if reason == "no_consensus":
            return labels.filter(sample_id__in=consensus_samples(self.campaign))
        if reason == "gold":
            return labels.filter(sample__gold__isnull=True)
        return labels.filter(finish_reason__in=VERDICTS)

    def records(self) -> Iterator[dict[str, Any]]:
        """One TRL stepwise-supervision record per kept label with at least one rated step."""
        for rows in iter_chunks(self.labels(), _FIELDS, self.chunk_size):
            ratings = ratings_for([row[0] for row in rows if row[1] is None])
            for label_id, prm800k_steps, steps, prompt in rows:
                path = rated_path(steps, prm800k_steps, ratings.get(label_id, {}))
                if not path:
                    self.skipped["no_rated_step"] += 1
                    continue
                yield {
                    "prompt": prompt,
                    "completions": [text for text, _ in path],
                    "labels": [r > 0 or (r == 0 and self.neutral_ok) for _, r in path],
                }

    def report(self) -> str:
        """`skipped` in words, for stderr or a response header ("none" when nothing was)."""
        parts = [f"{self.skipped[r]} {r}" for r in SKIP_REASONS if self.skipped[r]]
        return ", ".join(parts) or "none"


def iter_stepwise_records(campaign: Campaign, **options: Any) -> Iterator[dict[str, Any]]:
    """One TRL stepwise-supervision record per finished label with at least one rated step
    (`options` as `StepwiseExport`)."""
    return StepwiseExport(campaign, **options).records()


def export_stepwise(out: IO[str], campaign: Campaign, **options: Any) -> int:
    """Write stepwise-supervision JSONL to `out` (`options` as `iter_stepwise_records`);
    returns the number of records."""
    count = 0
    for record in iter_stepwise_records(campaign, **options):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
