"""Consensus between label sources: per sample, do the sources (human, mc, judge, …) agree
on the first-error index? (Qwen's "Lessons of Developing PRMs" filtering.)

Each source gives a sample at most one first error (None = no error):
- `human`: the sample's resolved labels (`review.resolved`), when they all reach the same
  first error; abandoned labels (give_up, bad_problem) say nothing about the first error;
  resolved labels that still disagree make the human source disagree with itself;
- an automatic source: its hard ratings' first −1, or its soft scores' first step below
  `SOFT_THRESHOLD` (the step more likely wrong than right).

A sample is a consensus sample when at least two sources speak to it and all agree; it is a
disagreement when they do not. Disagreements go to the review queue or back to labeling
(`route_disagreements`, the `disagreement` strategy).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass

from django.db import transaction
from django.db.models import QuerySet

from annotate.agreement import by_sample, label_views
from annotate.models import (
    Assignment,
    Campaign,
    Generation,
    Label,
    LabelSource,
    Review,
    SourceLabel,
)
from annotate.quality import ABANDONED
from annotate.review import open_review, resolved
from selector.evaluation import predict_first_error
from selector.ratings import first_error
from selector.training import TrainingExample

#: The labelers' source (a reserved source name).
HUMAN = "human"
#: Soft scores are P(step correct): below this a step counts as the error.
SOFT_THRESHOLD = 0.5
#: The human source's first error when its resolved labels disagree with each other.
SPLIT = "split"

ROUTE_REVIEW = "review"
ROUTE_LABELING = "labeling"


def soft_first_error(scores: list[float]) -> int | None:
    index = predict_first_error(scores, SOFT_THRESHOLD)
    return None if index == -1 else index


def source_first_error(label: SourceLabel) -> int | None:
    """An automatic source's first error on its sample."""
    if label.ratings is not None:
        return first_error(label.ratings)
    return soft_first_error(label.scores or [])


def source_ratings(label: SourceLabel) -> list[int]:
    """Hard ratings of a source label: soft scores at `SOFT_THRESHOLD` (+1 or −1)."""
    if label.ratings is not None:
        return list(label.ratings)
    return [1 if score >= SOFT_THRESHOLD else -1 for score in label.scores or []]


def source_labels(campaign: Campaign, names: list[str] | None = None) -> QuerySet[SourceLabel]:
    labels = SourceLabel.objects.filter(source__campaign=campaign).select_related("source")
    if names is not None:
        labels = labels.filter(source__name__in=names)
    return labels


def first_errors(
    campaign: Campaign, *, sources: list[str] | None = None
) -> dict[int, dict[str, int | str | None]]:
    """{sample: {source: first error}} for every sample some source speaks to (`sources`:
    only these names; `human` is the labelers' resolved labels)."""
    result: dict[int, dict[str, int | str | None]] = defaultdict(dict)
    if sources is None or HUMAN in sources:
        human = resolved(Label.objects.for_campaign(campaign).regular().finished())
        for sample, views in by_sample(label_views(human)).items():
            said = {v.outcome for v in views if v.finish_reason not in ABANDONED}
            if said:
                result[sample][HUMAN] = said.pop() if len(said) == 1 else SPLIT
    for label in source_labels(campaign, sources):
        result[label.sample_id][label.source.name] = source_first_error(label)
    return dict(result)


def agrees(by_source: dict[str, int | str | None]) -> bool | None:
    """True when at least two sources agree (and none splits), False when they differ, None
    when fewer than two speak."""
    if len(by_source) < 2:
        return None
    values = list(by_source.values())
    return SPLIT not in values and len(set(values)) == 1


def consensus_samples(campaign: Campaign, *, sources: list[str] | None = None) -> set[int]:
    return {s for s, by in first_errors(campaign, sources=sources).items() if agrees(by)}


def disagreement_samples(campaign: Campaign, *, sources: list[str] | None = None) -> set[int]:
    return {s for s, by in first_errors(campaign, sources=sources).items() if agrees(by) is False}


@transaction.atomic
def route_disagreements(campaign: Campaign, *, to: str = ROUTE_LABELING) -> int:
    """Send the samples whose sources disagree to the review queue (an open review each) or
    to labeling (one open slot each in the newest open generation, unless one is live).
    Returns how many were routed; ValueError without an open generation to label in."""
    samples = sorted(disagreement_samples(campaign))
    if to == ROUTE_REVIEW:
        for sample_id in samples:
            open_review(sample_id, Review.Reason.SOURCES)
        return len(samples)
    if to != ROUTE_LABELING:
        raise ValueError(f"route to {ROUTE_REVIEW!r} or {ROUTE_LABELING!r}, not {to!r}")
    generation = Generation.objects.filter(campaign=campaign).open().newest()
    if generation is None:
        raise ValueError(f"campaign {campaign.slug} has no open generation to label in")
    live = set(
        Assignment.objects.live()
        .filter(sample_id__in=samples, labeler__isnull=True)
        .values_list("sample_id", flat=True)
    )
    slots = [
        Assignment(
            generation=generation,
            sample_id=sample_id,
            kind=Assignment.Kind.REGULAR,
            state=Assignment.State.OPEN,
        )
        for sample_id in samples
        if sample_id not in live
    ]
    Assignment.objects.bulk_create(slots)
    return len(slots)


@dataclass(frozen=True)
class Suggestion:
    """One source's verdict on a sample, as a labeler may be shown it."""

    source: str
    first_error: int | None

    @property
    def step_number(self) -> int | None:
        return None if self.first_error is None else self.first_error + 1


def suggestions(sample_id: int) -> list[Suggestion]:
    """The suggestions labelers see on a sample: only the sources their campaign shows
    (`LabelSource.show_to_labelers`, off by default to avoid anchoring)."""
    labels = SourceLabel.objects.filter(
        sample_id=sample_id, source__show_to_labelers=True
    ).select_related("source")
    return [Suggestion(label.source.name, source_first_error(label)) for label in labels]


def training_sources(campaign: Campaign) -> list[str]:
    return list(
        LabelSource.objects.filter(campaign=campaign, use_for_training=True).values_list(
            "name", flat=True
        )
    )


def source_training_examples(
    campaign: Campaign, *, only: set[int] | None = None
) -> Iterator[TrainingExample]:
    """Examples from the sources the campaign trains on (`only`: these samples)."""
    names = training_sources(campaign)
    if not names:
        return
    labels = source_labels(campaign, names).select_related("sample__problem").order_by("id")
    if only is not None:
        labels = labels.filter(sample_id__in=only)
    for label in labels.iterator(chunk_size=2000):
        sample = label.sample
        ratings = source_ratings(label)
        steps = list(sample.steps or [])[: len(ratings)]
        # Keyed by problem text like the labelers' examples, so both fall on one side of the
        # validation hold-out.
        example = TrainingExample(sample.problem.problem, steps, ratings[: len(steps)])
        if example.steps:
            yield example
