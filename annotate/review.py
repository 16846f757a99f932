"""The review queue for leads, and the resolved labels exports and training read.

A sample comes up for review (`refresh_reviews`) when one of its regular finished labels is
not in any review yet and: it is drawn at the campaign's review rate (a stable draw per
label), the sample's labels disagree on the outcome, or a step of it is flagged. A review
holds the sample's current labels side by side; a lead decides once (conditional UPDATE):

- `accept(review, label)`: that label stands, the others are superseded;
- `correct(review, ratings, finish_reason)`: the reviewer's own label stands (a new label;
  the originals are kept, superseded);
- `reject(review)`: every label is superseded and the sample goes back to the queue (open
  slots in the newest open generation).

`resolved(labels)` leaves out superseded labels, and on request the labels of samples whose
disagreement no review has settled yet.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from annotate.agreement import LabelView, by_sample, disagreeing, label_views
from annotate.models import (
    Assignment,
    AuditEvent,
    Campaign,
    Generation,
    Label,
    QualitySettings,
    Review,
    StepRating,
)
from annotate.quality import validate_gold
from selector.ratings import Rating


class ReviewClosed(Exception):
    """The review was already decided (by another lead, or in another tab)."""


# --- what exports and training read ---------------------------------------------------------


def superseded() -> Exists:
    """True for a label a decided review set aside (not the one it chose)."""
    decisions = (
        Review.objects.decided()
        .filter(labels=OuterRef("pk"))
        .filter(Q(chosen__isnull=True) | ~Q(chosen=OuterRef("pk")))
    )
    return Exists(decisions)


def unresolved_samples(labels: QuerySet[Label]) -> set[int]:
    """Samples of `labels` whose regular finished, not superseded labels still disagree."""
    current = labels.regular().finished().exclude(superseded())
    return disagreeing(by_sample(label_views(_shared(current))))


def resolved(labels: QuerySet[Label], *, include_unresolved: bool = True) -> QuerySet[Label]:
    """`labels` as reviews resolved them: superseded labels left out, and with
    `include_unresolved=False` also every label of a sample whose labels still disagree."""
    labels = labels.exclude(superseded())
    if not include_unresolved:
        labels = labels.exclude(sample_id__in=unresolved_samples(labels))
    return labels


def _shared(labels: QuerySet[Label]) -> QuerySet[Label]:
    """Labels whose sample has another label in `labels`."""
    other = labels.filter(sample_id=OuterRef("sample_id")).exclude(pk=OuterRef("pk"))
    return labels.filter(Exists(other))


# --- filling the queue ------------------------------------------------------------------------


def drawn(label_id: int, rate: float) -> bool:
    """A stable draw at `rate` per label: the same label is always in or out."""
    digest = hashlib.blake2b(f"review:{label_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest) / 2**64 < rate


def _reason(views: list[LabelView], unreviewed: set[int], rate: float, disagree: bool) -> str:
    fresh = [view for view in views if view.id in unreviewed]
    if not fresh:
        return ""
    if disagree:
        return Review.Reason.DISAGREEMENT
    if any(view.flagged for view in fresh):
        return Review.Reason.FLAGGED
    if any(drawn(view.id, rate) for view in fresh):
        return Review.Reason.SAMPLED
    return ""


@transaction.atomic
def refresh_reviews(campaign: Campaign) -> int:
    """Open reviews for the samples that need one (see the module docstring); labels that
    arrive for a sample under an open review join it. Returns the reviews opened.

    Only the candidates are read in full: samples of a drawn label, with two or more
    current labels, or with a flagged step (native labels: PRM800K's own flags were its
    review's business), among those with a label not reviewed yet."""
    rate = QualitySettings.of(campaign).review_rate
    current = Label.objects.for_campaign(campaign).regular().finished().exclude(superseded())
    # A correction is the reviewer's decision: it is never reviewed itself.
    in_review = Review.objects.filter(Q(labels=OuterRef("pk")) | Q(chosen=OuterRef("pk")))
    fresh = current.exclude(Exists(in_review))
    rows = list(fresh.values_list("id", "sample_id"))
    if not rows:
        return 0
    unreviewed = {label_id for label_id, _ in rows}
    candidates = {sample_id for label_id, sample_id in rows if drawn(label_id, rate)}
    candidates |= set(
        current.filter(sample_id__in=fresh.values("sample_id"))
        .order_by()
        .values("sample_id")
        .annotate(n=Count("id"))
        .filter(n__gte=2)
        .values_list("sample_id", flat=True)
    )
    flagged = StepRating.objects.filter(label__in=fresh, flagged=True)
    candidates |= set(flagged.values_list("label__sample_id", flat=True))
    pending = {
        review.sample_id: review
        for review in Review.objects.pending().filter(sample__campaign=campaign)
    }
    candidates |= {sample_id for _, sample_id in rows if sample_id in pending}
    groups = by_sample(label_views(current.filter(sample_id__in=candidates)))
    disagree = disagreeing(groups)
    opened = 0
    for sample_id, views in sorted(groups.items()):
        review = pending.get(sample_id)
        if review is not None:
            review.labels.add(*[view.id for view in views if view.id in unreviewed])
            continue
        reason = _reason(views, unreviewed, rate, sample_id in disagree)
        if not reason:
            continue
        review = Review.objects.create(sample_id=sample_id, reason=reason)
        review.labels.add(*[view.id for view in views])
        opened += 1
    return opened


def open_review(sample_id: int, reason: str) -> Review:
    """The sample's open review, opened (with its current labels) when it has none."""
    with transaction.atomic():
        review, created = Review.objects.get_or_create(
            sample_id=sample_id, state=Review.State.OPEN, defaults={"reason": reason}
        )
        if created:
            current = Label.objects.filter(sample_id=sample_id).regular().finished()
            review.labels.add(*current.exclude(superseded()).values_list("id", flat=True))
    return review


def review_queue(campaign: Campaign) -> QuerySet[Review]:
    """The campaign's open reviews, oldest first."""
    return Review.objects.for_campaign(campaign).pending().order_by("id")


# --- deciding -------------------------------------------------------------------------------


def _decide(review: Review, state: str, reviewer, chosen: Label | None) -> None:
    now = timezone.now()
    changed = Review.objects.filter(pk=review.pk, state=Review.State.OPEN).update(
        state=state, reviewer=reviewer, chosen=chosen, decided_at=now
    )
    if not changed:
        raise ReviewClosed(f"review {review.pk} is already decided")
    review.state, review.reviewer, review.chosen, review.decided_at = state, reviewer, chosen, now
    # Reviews are decided on the review pages only, hence "web".
    AuditEvent.record(
        reviewer,
        AuditEvent.Via.WEB,
        AuditEvent.Action.LABEL_RESOLVED,
        f"review {review.pk}",
        campaign=review.sample.campaign,
        decision=state,
        label=None if chosen is None else chosen.pk,
    )


@transaction.atomic
def accept(review: Review, label: Label, reviewer) -> None:
    """`label` (one of the review's) stands; the review's other labels are superseded."""
    if not review.labels.filter(pk=label.pk).exists():
        raise ValidationError(f"label {label.pk} is not under review {review.pk}")
    _decide(review, Review.State.ACCEPTED, reviewer, label)


@transaction.atomic
def correct(review: Review, ratings: Sequence[Rating], finish_reason: str, reviewer) -> Label:
    """The reviewer's own label of the sample stands (checked against the labeling rules);
    the review's labels are kept, superseded."""
    sample = review.sample
    cleaned = validate_gold(ratings, finish_reason, len(sample.steps or []))
    first = review.labels.order_by("id").first()
    now = timezone.now()
    label = Label.objects.create(
        sample=sample,
        labeler=reviewer,
        prm800k_generation=_generation_of(first),
        finish_reason=finish_reason,
        finished_at=now,
    )
    StepRating.objects.bulk_create(
        StepRating(label=label, step=i, rating=rating) for i, rating in enumerate(cleaned)
    )
    _decide(review, Review.State.CORRECTED, reviewer, label)
    return label


def _generation_of(label: Label | None) -> int | None:
    if label is None:
        return None
    if label.assignment_id and label.assignment.generation_id:
        return label.assignment.generation.number
    return label.prm800k_generation


@transaction.atomic
def reject(review: Review, reviewer) -> int:
    """Every label of the review is superseded; the sample gets `overlap` open slots again
    in the campaign's newest open generation (else its labels' own). Returns the slots."""
    _decide(review, Review.State.REJECTED, reviewer, None)
    campaign = review.sample.campaign
    generation = Generation.objects.filter(campaign=campaign).open().newest()
    if generation is None:
        generation_id = (
            review.labels.filter(assignment__generation__isnull=False)
            .values_list("assignment__generation_id", flat=True)
            .first()
        )
    else:
        generation_id = generation.pk
    if generation_id is None:
        return 0
    slots = [
        Assignment(
            generation_id=generation_id,
            sample_id=review.sample_id,
            kind=Assignment.Kind.REGULAR,
            state=Assignment.State.OPEN,
        )
        for _ in range(campaign.overlap)
    ]
    Assignment.objects.bulk_create(slots)
    return len(slots)
