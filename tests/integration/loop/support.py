"""A learnable synthetic campaign for the retraining-loop tests, and simulated labelers.

Step truth is in the text: a step containing the word "oops" is wrong (−1), every other step
is right (+1). Wrong-answer samples carry one "oops" step, so a tiny PRM can learn the rule
from a few dozen labels and validation loss, AUC and F1 have something to measure.
"""

from __future__ import annotations

import random
import uuid
from datetime import timedelta

from django.utils import timezone

from annotate.models import Assignment, Campaign, Generation, Label, Problem, Sample
from selector.selection import steps_fingerprint

WORDS = ["add", "the", "two", "numbers", "then", "multiply", "by", "three", "divide", "so"]
MARKER = "oops"


def first_error(steps: list[str]) -> int:
    """The known truth: index of the first step with the marker, or −1."""
    return next((i for i, s in enumerate(steps) if MARKER in s), -1)


def truth_ratings(steps: list[str]) -> list[int]:
    """+1 before the first error, −1 at it (a labeler following the rules)."""
    error = first_error(steps)
    n = len(steps) if error < 0 else error + 1
    return [1] * (n - 1) + [-1 if error >= 0 else 1]


def _steps(rng: random.Random, wrong: bool, answer: str) -> list[str]:
    n = rng.randint(2, 4)
    steps = [" ".join(rng.sample(WORDS, 4)) + "." for _ in range(n - 1)]
    steps.append(f"# Answer\n\n{answer}")
    if wrong:
        at = rng.randrange(n - 1)
        steps[at] = steps[at].rstrip(".") + f" {MARKER}."
    return steps


def make_campaign_pool(
    campaign: Campaign,
    *,
    n_problems: int = 8,
    per_problem: int = 6,
    n_test: int = 2,
    test_per_problem: int = 4,
    seed: int = 0,
) -> None:
    """Train-split problems (half their samples wrong) and test problems with graded samples."""
    rng = random.Random(seed)
    rows = []
    for p in range(n_problems + n_test):
        test = p >= n_problems
        problem = Problem.objects.create(
            campaign=campaign,
            unique_id=f"loop/{p}",
            problem=f"Problem {p}: compute {rng.randint(1, 99)} plus {rng.randint(1, 99)}.",
            ground_truth_answer=str(p),
            split=Problem.Split.TEST if test else Problem.Split.TRAIN,
        )
        for j in range(test_per_problem if test else per_problem):
            wrong = j % 2 == 1
            answer = str(p + 1 if wrong else p)
            steps = _steps(rng, wrong, answer)
            rows.append(
                Sample(
                    campaign=campaign,
                    problem=problem,
                    external_id=f"{problem.unique_id}/{j}",
                    steps=steps,
                    answer=answer,
                    is_correct=not wrong,
                    steps_hash=steps_fingerprint(steps).hex(),
                )
            )
    Sample.objects.bulk_create(rows)


def label(labeler, sample: Sample, generation: Generation) -> Label:
    """Label one sample from the truth through the labeling rules (claimed assignment)."""
    now = timezone.now()
    assignment = Assignment.objects.create(
        generation=generation,
        sample=sample,
        labeler=labeler,
        state=Assignment.State.IN_PROGRESS,
        claimed_at=now,
        lease_expires_at=now + timedelta(minutes=30),
    )
    return rate_from_truth(Label.for_assignment(assignment))


def rate_from_truth(label: Label) -> Label:
    steps = label.sample.steps
    for step, rating in enumerate(truth_ratings(steps)):
        label.rate(step, rating, elapsed_ms=1500)
    return label


def label_train_samples(campaign: Campaign, labeler, *, per_problem: int = 4) -> Generation:
    """An open generation in which `labeler` labeled `per_problem` samples of every train
    problem."""
    generation = Generation.objects.create(
        campaign=campaign,
        number=campaign.next_generation_number(),
        status=Generation.Status.OPEN,
        opened_at=timezone.now(),
    )
    for problem in campaign.problems.filter(split=Problem.Split.TRAIN):
        for sample in problem.samples.order_by("pk")[:per_problem]:
            label(labeler, sample, generation)
    return generation


def unique_name() -> str:
    return uuid.uuid4().hex[:8]
