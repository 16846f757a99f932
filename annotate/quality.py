"""Quality control: gold standards, the screening gate, QC sampling and agreement with gold.

The labeler queue (`annotate.queue.next_assignment`) calls two hooks here, in this order,
after a labeler's own live lease:

- `next_screening_item(user, campaign)`: while the campaign requires screening and the labeler
  has no verdict yet, serve the next screening gold they have not finished (an assignment with
  kind=screening, no generation, PRM800K's generation −1). Once every screening item is finished
  the verdict is written (`ScreeningResult`): passed when first-error agreement with gold is at
  least `campaign.screening_pass_mark`. A labeler who failed stays blocked: the hook raises
  `ScreeningFailed` (a `PermissionDenied`, so an unhandled one is a 403) on every later call;
  leads see the failure on the dashboard and may override it in the admin.
- `maybe_qc_item(user, campaign, rng)`: with probability `campaign.qc_rate`, serve a QC gold
  sample the labeler has never been given, as a kind=qc assignment in the newest open
  generation.

Agreement (`Agreement`, `compare`) is pure; `labeler_agreement` and `agreements_by_labeler`
read finished QC/screening labels and their gold.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import timedelta

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from annotate.models import (
    Assignment,
    Campaign,
    Generation,
    GoldStandard,
    Label,
    Sample,
    ScreeningResult,
    StepRating,
)
from annotate.models.label import FinishReason
from selector.ratings import Rating, first_error

ABANDONED = (FinishReason.BAD_PROBLEM, FinishReason.GIVE_UP)


class ScreeningFailed(PermissionDenied):
    """The labeler failed this campaign's screening set and may not take its work."""


# --- Agreement (pure) -------------------------------------------------------------------


@dataclass(frozen=True)
class Agreement:
    """Agreement of labels with gold, summed over items.

    `first_error_agree` counts items whose outcome matches gold: the same first −1 index, or
    both reaching the end with no −1. `abandoned` counts the items the labeler gave up on (or
    reported as a bad problem) where gold did not: they are reported apart from
    `disagreements`, but still earn no agreement (giving up never helps pass screening).
    Steps are compared where both rated them, up to and including the earlier of the two
    first errors.
    """

    items: int = 0
    first_error_agree: int = 0
    steps_compared: int = 0
    steps_agree: int = 0
    abandoned: int = 0

    def __add__(self, other: Agreement) -> Agreement:
        return Agreement(
            self.items + other.items,
            self.first_error_agree + other.first_error_agree,
            self.steps_compared + other.steps_compared,
            self.steps_agree + other.steps_agree,
            self.abandoned + other.abandoned,
        )

    @property
    def disagreements(self) -> int:
        """Items judged to the end with another outcome than gold (give-ups not included)."""
        return self.items - self.first_error_agree - self.abandoned

    @property
    def first_error_rate(self) -> float | None:
        return self.first_error_agree / self.items if self.items else None

    @property
    def step_rate(self) -> float | None:
        return self.steps_agree / self.steps_compared if self.steps_compared else None

    @property
    def score(self) -> float | None:
        """The headline number (screening pass mark, dashboard): first-error agreement."""
        return self.first_error_rate


def outcome(ratings: Sequence[Rating], finish_reason: str | None) -> int | str | None:
    """What a label concluded: the first −1's index, None (no error), or how it was abandoned.

    Giving up or flagging a bad problem is its own outcome, so abandoning a correct gold
    solution does not count as agreeing that it has no error.
    """
    index = first_error(ratings)
    if index is not None:
        return index
    if finish_reason in ABANDONED:
        return str(finish_reason)
    return None


def compare(
    ratings: Sequence[Rating],
    finish_reason: str | None,
    gold_ratings: Sequence[Rating],
    gold_finish_reason: str | None,
) -> Agreement:
    """One finished label against its gold."""
    same = outcome(ratings, finish_reason) == outcome(gold_ratings, gold_finish_reason)
    gave_up = not same and finish_reason in ABANDONED
    ends = [first_error(r) for r in (ratings, gold_ratings)]
    limit = min([len(ratings), len(gold_ratings)] + [e + 1 for e in ends if e is not None])
    pairs = [
        (ratings[i], gold_ratings[i])
        for i in range(limit)
        if ratings[i] is not None and gold_ratings[i] is not None
    ]
    return Agreement(
        items=1,
        first_error_agree=int(same),
        steps_compared=len(pairs),
        steps_agree=sum(a == b for a, b in pairs),
        abandoned=int(gave_up),
    )


def agreement(
    items: Iterable[tuple[Sequence[Rating], str | None, Sequence[Rating], str | None]],
) -> Agreement:
    """Sum of `compare` over (ratings, finish reason, gold ratings, gold finish reason)."""
    total = Agreement()
    for item in items:
        total += compare(*item)
    return total


# --- Agreement from the database ----------------------------------------------------------


def gold_labels(campaign: Campaign | None = None, purpose: str | None = None) -> QuerySet[Label]:
    """Finished QC/screening labels whose sample has gold (composable: filter further)."""
    labels = Label.objects.gold(purpose).finished()
    if campaign is not None:
        labels = labels.for_campaign(campaign)
    return labels


def agreements_by_labeler(labels: QuerySet[Label]) -> dict[int, Agreement]:
    """Agreement with gold per labeler id over `labels`."""
    rows = list(
        labels.values_list(
            "id",
            "labeler_id",
            "finish_reason",
            "sample__gold__ratings",
            "sample__gold__finish_reason",
        )
    )
    if not rows:
        return {}
    steps: dict[int, dict[int, Rating]] = defaultdict(dict)
    for label_id, step, rating in StepRating.objects.filter(
        label__in=labels.values("id")
    ).values_list("label_id", "step", "rating"):
        steps[label_id][step] = rating
    result: dict[int, Agreement] = defaultdict(Agreement)
    for label_id, labeler_id, finish, gold_ratings, gold_finish in rows:
        ratings = _in_step_order(steps.get(label_id, {}))
        result[labeler_id] += compare(ratings, finish, gold_ratings or [], gold_finish)
    return dict(result)


def _in_step_order(by_step: dict[int, Rating]) -> list[Rating]:
    """{step: rating} as a list up to the last rated step, None where unrated."""
    return [by_step.get(i) for i in range(max(by_step, default=-1) + 1)]


def labeler_agreement(
    user, campaign: Campaign | None = None, purpose: str | None = None
) -> Agreement:
    """A labeler's agreement with gold over their finished QC and screening labels."""
    labels = gold_labels(campaign, purpose).for_labeler(user)
    return agreements_by_labeler(labels).get(user.pk, Agreement())


# --- Serving gold: screening and QC ------------------------------------------------------


def _lease(user, campaign: Campaign, sample_id: int, kind: str, generation) -> Assignment:
    """Claim a gold sample for `user`, or return the live claim a concurrent request made."""
    now = timezone.now()
    try:
        with transaction.atomic():
            return Assignment.objects.create(
                generation=generation,
                sample_id=sample_id,
                labeler=user,
                kind=kind,
                state=Assignment.State.IN_PROGRESS,
                reason=Assignment.reason_for(kind),
                claimed_at=now,
                lease_expires_at=now + timedelta(minutes=campaign.lease_minutes),
            )
    except IntegrityError:
        # The partial unique constraint (one live assignment per sample and labeler) fired.
        return Assignment.objects.live().get(sample_id=sample_id, labeler=user)


def screening_gold(campaign: Campaign) -> QuerySet[GoldStandard]:
    return GoldStandard.objects.filter(
        purpose=GoldStandard.Purpose.SCREENING, sample__campaign=campaign
    )


def decide_screening(user, campaign: Campaign) -> ScreeningResult:
    """Write the labeler's screening verdict from their finished screening labels."""
    score = labeler_agreement(user, campaign, GoldStandard.Purpose.SCREENING)
    rate = score.first_error_rate or 0.0
    status = (
        ScreeningResult.Status.PASSED
        if rate >= campaign.screening_pass_mark
        else ScreeningResult.Status.FAILED
    )
    result, _ = ScreeningResult.objects.get_or_create(
        campaign=campaign,
        labeler=user,
        defaults={
            "status": status,
            "agreement": rate,
            "step_agreement": score.step_rate,
            "items": score.items,
        },
    )
    return result


def next_screening_item(user, campaign: Campaign) -> Assignment | None:
    """The labeler's next screening assignment, or None once screening does not apply.

    Raises `ScreeningFailed` for a labeler who failed the screening set.
    """
    if not campaign.screening_required:
        return None
    result = ScreeningResult.objects.filter(campaign=campaign, labeler=user).first()
    if result is not None:
        if result.passed:
            return None
        raise ScreeningFailed("You did not pass this campaign's screening set.")
    live = (
        Assignment.objects.live()
        .filter(labeler=user, kind=Assignment.Kind.SCREENING, sample__campaign=campaign)
        .first()
    )
    if live is not None:
        return live
    gold = screening_gold(campaign)
    finished = (
        Label.objects.for_labeler(user)
        .finished()
        .filter(is_initial_screening=True, sample=OuterRef("sample"))
    )
    unseen = gold.exclude(Exists(finished)).order_by("id").values_list("sample_id", flat=True)
    sample_id = unseen.first()
    if sample_id is not None:
        return _lease(user, campaign, sample_id, Assignment.Kind.SCREENING, None)
    if not gold.exists():
        # No screening set configured: nobody can be screened; the dashboard warns the lead.
        return None
    result = decide_screening(user, campaign)
    if result.passed:
        return None
    raise ScreeningFailed("You did not pass this campaign's screening set.")


def screening_passed(user, campaign: Campaign) -> bool:
    """Whether the labeler may take regular work as far as screening goes."""
    if not campaign.screening_required:
        return True
    return ScreeningResult.objects.filter(campaign=campaign, labeler=user).passed().exists()


def _newest_open_generation(campaign: Campaign) -> Generation | None:
    """Where QC items go: the campaign's newest open generation."""
    return Generation.objects.filter(campaign=campaign).open().newest()


def qc_draw(rate: float, rng: random.Random | None = None) -> bool:
    """One draw at `rate`: exact at 0 and 1, since `random()` lies in [0, 1)."""
    return (rng or random).random() < rate


def maybe_qc_item(user, campaign: Campaign, rng: random.Random | None = None) -> Assignment | None:
    """With probability `campaign.qc_rate`, a QC assignment on gold this user never saw."""
    if not qc_draw(campaign.qc_rate, rng):
        return None
    generation = _newest_open_generation(campaign)
    if generation is None:
        return None
    given = Assignment.objects.filter(labeler=user, sample=OuterRef("sample"))
    labeled = Label.objects.for_labeler(user).filter(sample=OuterRef("sample"))
    sample_id = (
        GoldStandard.objects.filter(
            purpose=GoldStandard.Purpose.QUALITY_CONTROL, sample__campaign=campaign
        )
        .exclude(Exists(given))
        .exclude(Exists(labeled))
        .order_by("id")
        .values_list("sample_id", flat=True)
        .first()
    )
    if sample_id is None:
        return None
    return _lease(user, campaign, sample_id, Assignment.Kind.QUALITY_CONTROL, generation)


# --- Marking gold -------------------------------------------------------------------------


def validate_gold(ratings: Sequence[Rating], finish_reason: str, n_steps: int) -> list[int]:
    """Check gold ratings against the labeling rules; return them without trailing blanks."""
    cleaned = list(ratings)
    while cleaned and cleaned[-1] is None:
        cleaned.pop()
    if len(cleaned) > n_steps:
        raise ValidationError("More ratings than the sample has steps.")
    if any(r is None for r in cleaned):
        raise ValidationError("Steps are rated in order: leave no unrated step before a rated one.")
    if any(r not in (-1, 0, 1) for r in cleaned):
        raise ValidationError("Ratings are −1, 0 or +1.")
    error = first_error(cleaned)
    if error is not None and error != len(cleaned) - 1:
        raise ValidationError("A −1 ends the solution: rate no step after the first error.")
    if finish_reason not in FinishReason.values:
        raise ValidationError("Unknown finish reason.")
    if (error is not None) != (finish_reason == FinishReason.FOUND_ERROR):
        raise ValidationError("Finish reason is found_error exactly when a step is rated −1.")
    if finish_reason == FinishReason.SOLUTION and len(cleaned) != n_steps:
        raise ValidationError("A solution without error has every step rated.")
    return cleaned


def mark_gold(
    sample: Sample, purpose: str, ratings: Sequence[Rating], finish_reason: str, by=None
) -> GoldStandard:
    """Make (or replace) the sample's gold standard for QC or screening."""
    cleaned = validate_gold(ratings, finish_reason, len(sample.steps))
    gold, _ = GoldStandard.objects.update_or_create(
        sample=sample,
        defaults={
            "purpose": purpose,
            "ratings": cleaned,
            "finish_reason": finish_reason,
            "created_by": by,
        },
    )
    return gold


def label_ratings(label: Label) -> list[Rating]:
    """A native label's ratings per step (None where unrated)."""
    return _in_step_order(dict(label.ratings.values_list("step", "rating")))


def gold_from_label(label: Label, purpose: str, by=None) -> GoldStandard:
    """Copy a finished native label's ratings into its sample's gold standard."""
    if not label.is_finished:
        raise ValidationError(f"Label {label.pk} is not finished.")
    if label.prm800k_steps and not label.ratings.exists():
        raise ValidationError(f"Label {label.pk} is imported; enter its gold by hand.")
    return mark_gold(label.sample, purpose, label_ratings(label), label.finish_reason, by)


# --- Feedback to the labeler: their QC labels beside gold ---------------------------------


RATING_TEXT = {-1: "−1", 0: "0", 1: "+1", None: "—"}


@dataclass(frozen=True)
class StepFeedback:
    index: int
    text: str
    mine: Rating | None
    gold: Rating | None

    @property
    def same(self) -> bool:
        return self.mine == self.gold

    @property
    def mine_text(self) -> str:
        return RATING_TEXT[self.mine]

    @property
    def gold_text(self) -> str:
        return RATING_TEXT[self.gold]


@dataclass(frozen=True)
class ItemFeedback:
    """One scored QC or screening item: the labeler's step labels beside the gold ones."""

    label: Label
    steps: list[StepFeedback]
    verdict: str  # "agree", "disagree" or "gave_up"


def feedback_for(user, limit: int = 50) -> list[ItemFeedback]:
    """The labeler's own scored gold items, newest first (their labels only, ever)."""
    labels = list(
        gold_labels()
        .for_labeler(user)
        .select_related("sample__problem", "sample__gold", "sample__campaign")
        .order_by("-finished_at", "-id")[:limit]
    )
    steps: dict[int, dict[int, Rating]] = defaultdict(dict)
    for label_id, step, rating in StepRating.objects.filter(label__in=labels).values_list(
        "label_id", "step", "rating"
    ):
        steps[label_id][step] = rating
    items = []
    for label in labels:
        gold = label.sample.gold
        mine = _in_step_order(steps.get(label.pk, {}))
        scored = compare(mine, label.finish_reason, gold.ratings or [], gold.finish_reason)
        verdict = (
            "agree" if scored.first_error_agree else "gave_up" if scored.abandoned else "disagree"
        )
        shown = min(len(label.sample.steps), max(len(mine), len(gold.ratings or [])))
        rows = [
            StepFeedback(
                i,
                label.sample.steps[i],
                mine[i] if i < len(mine) else None,
                gold.ratings[i] if i < len(gold.ratings) else None,
            )
            for i in range(shown)
        ]
        items.append(ItemFeedback(label, rows, verdict))
    return items
