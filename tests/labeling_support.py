"""Builders for labeling tests: generations with open slots, claimed tasks."""

from __future__ import annotations

import itertools
import uuid
from datetime import timedelta

from django.utils import timezone

from annotate.models import Assignment, Campaign, Generation, Label, Problem, Sample

_ids = itertools.count()


DEFAULT_STEPS = [
    "Let $x = 2$.",
    "Then $x^2 = 4$.",
    "So $x^2 + 1 = 5$.",
    "# Answer\n\n5",
]


def make_problem(campaign: Campaign, text: str = "Compute $x^2+1$ for $x=2$.") -> Problem:
    return Problem.objects.create(
        campaign=campaign,
        unique_id=f"test/labeling/{next(_ids)}.json",
        problem=text,
        ground_truth_answer="5",
    )


def make_sample(campaign: Campaign, steps: list[str] | None = None, problem=None) -> Sample:
    problem = problem or make_problem(campaign)
    return Sample.objects.create(
        campaign=campaign,
        problem=problem,
        external_id=f"labeling-{next(_ids)}",
        steps=list(steps or DEFAULT_STEPS),
        answer="5",
        is_correct=False,
        steps_hash=uuid.uuid4().hex,
    )


def make_generation(campaign: Campaign, number: int | None = None, status: str = "open"):
    if number is None:
        number = campaign.next_generation_number()
    return Generation.objects.create(
        campaign=campaign, number=number, status=status, opened_at=timezone.now()
    )


def open_slots(generation: Generation, samples: list[Sample], overlap: int = 1):
    """Unclaimed regular slots, `overlap` per sample, in sample order."""
    return Assignment.objects.bulk_create(
        Assignment(generation=generation, sample=sample)
        for sample in samples
        for _ in range(overlap)
    )


def make_task(
    labeler, campaign: Campaign, steps: list[str] | None = None, generation=None
) -> tuple[Assignment, Label]:
    """A claimed in-progress assignment for `labeler` with its open label."""
    campaign.labelers.add(labeler)
    generation = generation or make_generation(campaign)
    now = timezone.now()
    assignment = Assignment.objects.create(
        generation=generation,
        sample=make_sample(campaign, steps),
        labeler=labeler,
        state=Assignment.State.IN_PROGRESS,
        claimed_at=now,
        lease_expires_at=now + timedelta(minutes=campaign.lease_minutes),
    )
    return assignment, Label.for_assignment(assignment)


def stored_ratings(label: Label) -> dict[int, tuple[int | None, bool]]:
    """{step: (rating, flagged)} as stored."""
    return {r.step: (r.rating, r.flagged) for r in label.ratings.all()}
