"""Agreement between the overlapping labels of a campaign (overlap > 1), per sample,
per labeler and per generation: exact first-error agreement and Krippendorff's α (ordinal)
over step ratings (`selector.agreement`).

A label's ratings are its StepRating rows (native) or the path of its PRM800K step records
(imported); its outcome is `quality.outcome` (first error, no error, or abandoned). Only
regular finished labels of samples with at least two of them take part; a reviewer's
correction is not an overlapping label.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from django.db.models import Count, Exists, F, IntegerField, OuterRef, QuerySet
from django.db.models.functions import Coalesce

from annotate.models import Campaign, Label, Review, StepRating
from annotate.quality import outcome
from selector.agreement import (
    PairAgreement,
    agreement_by_coder,
    krippendorff_alpha_ordinal,
    pair_agreement,
    step_units,
)
from selector.ratings import Rating
from selector.training import examples_from_prm800k


@dataclass(frozen=True)
class LabelView:
    """What agreement and review need of one finished label."""

    id: int
    sample_id: int
    labeler_id: int | None
    generation: int | None
    finish_reason: str
    ratings: list[Rating]
    flagged: bool = False

    @property
    def outcome(self) -> int | str | None:
        return outcome(self.ratings, self.finish_reason)


def imported_ratings(prm800k_steps: list, phase: int) -> list[Rating]:
    """The ratings along an imported label's path (the sample's steps), as training reads it."""
    question: dict = {"problem": ""}
    if phase == 2:
        question["pre_generated_steps"] = []
    record = {"question": question, "label": {"steps": prm800k_steps}}
    examples = examples_from_prm800k(record, alternatives=False)
    return list(examples[0].ratings) if examples else []


def label_views(labels: QuerySet[Label]) -> list[LabelView]:
    """`labels` (finished ones) with their ratings."""
    rows = list(
        labels.annotate(
            generation_number=Coalesce(
                F("assignment__generation__number"),
                F("prm800k_generation"),
                output_field=IntegerField(),
            )
        ).values_list(
            "id",
            "sample_id",
            "labeler_id",
            "generation_number",
            "finish_reason",
            "prm800k_steps",
            "question_extra",
        )
    )
    steps: dict[int, dict[int, tuple[Rating, bool]]] = defaultdict(dict)
    native = [row[0] for row in rows if row[5] is None]
    if native:
        for label_id, step, rating, flagged in StepRating.objects.filter(
            label_id__in=native
        ).values_list("label_id", "step", "rating", "flagged"):
            steps[label_id][step] = (rating, flagged)
    views = []
    for label_id, sample_id, labeler_id, generation, finish, prm800k_steps, extra in rows:
        if prm800k_steps is not None:
            ratings = imported_ratings(prm800k_steps, (extra or {}).get("phase", 2))
            flagged = any(
                completion.get("flagged")
                for step in prm800k_steps
                for completion in step.get("completions") or []
            )
        else:
            by_step = steps.get(label_id, {})
            width = max(by_step, default=-1) + 1
            ratings = [by_step.get(i, (None, False))[0] for i in range(width)]
            flagged = any(flag for _, flag in by_step.values())
        views.append(
            LabelView(label_id, sample_id, labeler_id, generation, finish, ratings, flagged)
        )
    return views


def overlapping(labels: QuerySet[Label]) -> QuerySet[Label]:
    """The regular finished labels among `labels` whose sample has at least two of them,
    reviewers' corrections left out."""
    corrections = Review.objects.filter(state=Review.State.CORRECTED, chosen=OuterRef("pk"))
    base = labels.regular().finished().exclude(Exists(corrections))
    shared = (
        base.order_by()
        .values("sample_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values("sample_id")
    )
    return base.filter(sample_id__in=shared)


def by_sample(views: Iterable[LabelView]) -> dict[int, list[LabelView]]:
    groups: dict[int, list[LabelView]] = defaultdict(list)
    for view in views:
        groups[view.sample_id].append(view)
    return dict(groups)


def disagreeing(groups: dict[int, list[LabelView]]) -> set[int]:
    """Samples whose labels reach more than one outcome."""
    return {sample for sample, views in groups.items() if len({view.outcome for view in views}) > 1}


@dataclass
class OverlapAgreement:
    """Agreement over a set of samples with overlapping labels."""

    samples: int = 0
    agreeing: int = 0
    labels: int = 0
    pairs: PairAgreement = field(default_factory=PairAgreement)
    alpha: float | None = None

    @property
    def first_error_rate(self) -> float | None:
        """Pairs of labels of one sample with the same outcome, over all such pairs."""
        return self.pairs.rate

    @property
    def sample_rate(self) -> float | None:
        return self.agreeing / self.samples if self.samples else None


def summarize(groups: dict[int, list[LabelView]]) -> OverlapAgreement:
    """Agreement over these samples' labels: pairs, agreeing samples and α."""
    total = OverlapAgreement()
    for views in groups.values():
        total.samples += 1
        total.labels += len(views)
        total.agreeing += len({view.outcome for view in views}) == 1
        total.pairs += pair_agreement([view.outcome for view in views])
    total.alpha = krippendorff_alpha_ordinal(
        step_units([view.ratings for view in views] for views in groups.values())
    )
    return total


def sample_agreement(views: list[LabelView]) -> OverlapAgreement:
    """One sample's labels compared."""
    return summarize({views[0].sample_id: views}) if views else OverlapAgreement()


@dataclass
class OverlapReport:
    """What the dashboard shows: the whole campaign, per generation, per labeler."""

    total: OverlapAgreement
    by_generation: dict[int | None, OverlapAgreement]
    by_labeler: dict[int, OverlapAgreement]


def overlap_report(campaign: Campaign) -> OverlapReport:
    """Agreement of the campaign's overlapping labels (see the module docstring).

    Per labeler: the pairs that include the labeler, the samples they labeled, and α over
    those samples."""
    groups = by_sample(label_views(overlapping(Label.objects.for_campaign(campaign))))
    per_generation: dict[int | None, dict[int, list[LabelView]]] = defaultdict(dict)
    per_labeler: dict[int, dict[int, list[LabelView]]] = defaultdict(dict)
    labeler_pairs: dict[int, PairAgreement] = defaultdict(PairAgreement)
    for sample, views in groups.items():
        generation = min((v.generation for v in views if v.generation is not None), default=None)
        per_generation[generation][sample] = views
        coders = {v.labeler_id: v.outcome for v in views if v.labeler_id is not None}
        for labeler, pairs in agreement_by_coder(coders).items():
            labeler_pairs[labeler] += pairs
            per_labeler[labeler][sample] = views
    by_labeler = {}
    for labeler, samples in per_labeler.items():
        summary = summarize(samples)
        summary.pairs = labeler_pairs[labeler]
        by_labeler[labeler] = summary
    return OverlapReport(
        total=summarize(groups),
        by_generation={g: summarize(s) for g, s in per_generation.items()},
        by_labeler=by_labeler,
    )
