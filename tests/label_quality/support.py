"""Labels of an overlap-2 campaign, finished the way the labeling page stores them."""

from __future__ import annotations

from django.contrib.auth import get_user_model

from annotate.models import Assignment, Campaign, Generation, Label, Sample, StepRating
from tests.labeling_support import make_generation, make_sample
from tests.quality.helpers import finish

STEPS = ["Let $x = 2$.", "Then $x^2 = 4$.", "So $x^2 + 1 = 5$.", "# Answer\n\n5"]


def person(name: str, campaign: Campaign | None = None, **fields):
    user = get_user_model().objects.create_user(name, password=f"{name}-password", **fields)
    if campaign is not None:
        campaign.labelers.add(user)
    return user


def label(
    user, sample: Sample, generation: Generation, ratings: list, reason: str, *, flagged=()
) -> Label:
    """`user`'s finished label of `sample` (`flagged`: step indexes flagged)."""
    assignment = Assignment.objects.create(
        generation=generation,
        sample=sample,
        labeler=user,
        state=Assignment.State.IN_PROGRESS,
        reason=Assignment.Reason.REGULAR,
    )
    done = finish(assignment, ratings, reason)
    if flagged:
        StepRating.objects.filter(label=done, step__in=flagged).update(flagged=True)
    return done


def overlap_campaign(campaign: Campaign) -> tuple[Generation, list[Sample]]:
    campaign.overlap = 2
    campaign.save(update_fields=["overlap"])
    generation = make_generation(campaign, 0)
    samples = [make_sample(campaign, STEPS) for _ in range(4)]
    return generation, samples
