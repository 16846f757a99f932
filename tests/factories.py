"""Builders every test shares: personas live in conftest.py, everything else is made here.

Sections: real data, labeling (tasks and slots), finished labels, API clients and bodies, the
scoring pipeline's pool, and the retraining loop's learnable campaign.
"""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterable
from datetime import timedelta
from pathlib import Path

import numpy as np
from django.contrib.auth import get_user_model
from django.utils import timezone
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from annotate.models import (
    Assignment,
    Campaign,
    Generation,
    Label,
    Problem,
    Sample,
    Score,
    Selection,
    StepRating,
)
from selector.selection import steps_fingerprint
from tests.selector.oracle import reference_select

# --- Real data ------------------------------------------------------------------------------------

DATA_DIR = Path(__file__).resolve().parent.parent / "data"  # sources in data/README.md


# --- Labeling: problems, samples, generations with open slots, claimed tasks ----------------------

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


# --- Finishing a label directly, the way the labeling page stores it ------------------------------


def finish(assignment: Assignment, ratings: list, finish_reason: str) -> Label:
    """Rate and finish an assignment's label the way the labeling page stores it."""
    label = Label.for_assignment(assignment)
    StepRating.objects.bulk_create(
        StepRating(label=label, step=i, rating=r) for i, r in enumerate(ratings)
    )
    now = timezone.now()
    label.finish_reason = finish_reason
    label.finished_at = now
    label.save(update_fields=["finish_reason", "finished_at", "updated_at"])
    assignment.state = Assignment.State.SUBMITTED
    assignment.submitted_at = now
    assignment.save(update_fields=["state", "submitted_at"])
    return label


# --- API: clients per persona, JSONL bodies from real data ----------------------------------------

JSONL = "application/x-ndjson"
API = "/api/v1"

COT = DATA_DIR / "math_cot_samples.jsonl"


def jsonl(records: Iterable[dict]) -> bytes:
    return "".join(json.dumps(record) + "\n" for record in records).encode("utf-8")


def session_client(user=None) -> APIClient:
    client = APIClient()
    if user is not None:
        client.force_login(user)
    return client


def token_client(user) -> APIClient:
    token, _ = Token.objects.get_or_create(user=user)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {token.key}")
    return client


def cot_records(n_problems: int) -> list[dict]:
    """The first problems of the real MATH CoT sample file (8 model solutions each)."""
    out = []
    with COT.open(encoding="utf-8") as handle:
        for line in handle:
            out.append(json.loads(line))
            if len(out) == n_problems:
                break
    return out


def cot_problems_and_samples(n_problems: int) -> tuple[list[dict], list[dict]]:
    """Upload bodies from real data: problems, and samples with a made-up verifier score
    that ranks each problem's solutions in file order (deterministic, distinct)."""
    problems, samples = [], []
    for record in cot_records(n_problems):
        uid = f"cot/{record['idx']}"
        problems.append(
            {
                "unique_id": uid,
                "problem": record["problem"],
                "ground_truth_answer": record["ground_truth_answer"],
                "ground_truth_solution": record["ground_truth_solution"],
                "level": record["level"],
            }
        )
        for j, sample in enumerate(record["samples"]):
            samples.append(
                {
                    "id": f"{uid}#{j}",
                    "unique_id": uid,
                    "response": sample["response"],
                    "generator": "math-cot",
                    "verifier_score": round(0.9 - 0.1 * j, 3),
                }
            )
    return problems, samples


# --- Scoring pipeline: a small pool, tiny-model settings, the selection oracle over Score rows ----

#: A bootstrap PRM small enough to build and run in well under a second on one slow core.
TINY_BOOTSTRAP = {"hidden": 32, "layers": 1, "heads": 2, "vocab_size": 400, "max_length": 128}
TINY_ENV = {
    "STEPWISE_BOOTSTRAP_HIDDEN": "32",
    "STEPWISE_BOOTSTRAP_LAYERS": "1",
    "STEPWISE_BOOTSTRAP_HEADS": "2",
    "STEPWISE_BOOTSTRAP_VOCAB": "400",
    "STEPWISE_BOOTSTRAP_MAX_LENGTH": "128",
}

POOL_WORDS = ["add", "multiply", "divide", "square", "simplify", "factor", "expand", "subtract"]


def make_pool(campaign: Campaign, n_problems: int = 4, per_problem: int = 6) -> list[int]:
    """Train-split problems with right and wrong samples, plus what the pool must leave out
    (a test-split problem, a sample with no answer); returns the pool's sample ids."""
    problems = [
        Problem.objects.create(
            campaign=campaign,
            unique_id=f"train/{i}",
            problem=f"Compute ${i} + {i}$ and {POOL_WORDS[i % len(POOL_WORDS)]} the result.",
            ground_truth_answer=str(2 * i),
            split="train",
        )
        for i in range(n_problems)
    ]
    problems.append(
        Problem.objects.create(
            campaign=campaign,
            unique_id="test/0",
            problem="A held-out problem.",
            ground_truth_answer="0",
            split="test",
        )
    )
    rows = []
    for p, problem in enumerate(problems):
        for j in range(per_problem):
            answer = str(2 * p + (j % 3))
            steps = [
                f"We {POOL_WORDS[(p + j) % len(POOL_WORDS)]} {p} and {j}.",
                f"Then ${p} \\cdot {j} = {p * j}$.",
                f"# Answer\n\n{answer}",
            ][: 2 + j % 2]
            rows.append(
                Sample(
                    campaign=campaign,
                    problem=problem,
                    external_id=f"{problem.unique_id}/{j}",
                    steps=steps,
                    answer=None if (p == 0 and j == per_problem - 1) else answer,
                    is_correct=j % 3 == 0,
                    steps_hash=steps_fingerprint(steps).hex(),
                )
            )
    Sample.objects.bulk_create(rows)
    return list(
        Sample.objects.filter(campaign=campaign, problem__split="train", answer__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )


def reference_selection(
    campaign: Campaign, checkpoint_id: int, params: dict, generation_id: int | None = None
) -> list[int]:
    """The oracle over arrays built straight from the ORM and the checkpoint's Score rows;
    samples selected by generations other than `generation_id` are excluded."""
    samples = list(
        Sample.objects.filter(campaign=campaign, problem__split="train", answer__isnull=False)
        .order_by("pk")
        .values_list("pk", "problem_id", "is_correct", "steps_hash")
    )
    scores = dict(
        Score.objects.filter(checkpoint_id=checkpoint_id).values_list("sample_id", "score")
    )
    earlier_rows = list(
        Selection.objects.filter(generation__campaign=campaign)
        .exclude(generation_id=generation_id)
        .values_list("sample_id", "sample__problem_id", "sample__steps_hash")
    )
    earlier = {row[0] for row in earlier_rows}
    ids = [s[0] for s in samples]
    picked = reference_select(
        np.array([s[1] for s in samples], dtype=np.int64),
        np.array(ids, dtype=np.int64),
        np.array([scores.get(i, np.nan) for i in ids], dtype=np.float64),
        np.array([s[2] is False for s in samples]),
        np.frombuffer(b"".join(bytes.fromhex(s[3]) for s in samples), dtype="S16"),
        excluded=np.array([i in earlier for i in ids], dtype=bool),
        excluded_problems=np.array([row[1] for row in earlier_rows], dtype=np.int64),
        excluded_fingerprints=np.frombuffer(
            b"".join(bytes.fromhex(row[2]) for row in earlier_rows), dtype="S16"
        ),
        **params,
    )
    return [ids[i] for i in picked]


# --- Retraining loop: a learnable campaign (a step with "oops" is wrong) and simulated labelers ---

LOOP_WORDS = ["add", "the", "two", "numbers", "then", "multiply", "by", "three", "divide", "so"]
MARKER = "oops"


def marker_first_error(steps: list[str]) -> int:
    """The known truth: index of the first step with the marker, or −1."""
    return next((i for i, s in enumerate(steps) if MARKER in s), -1)


def truth_ratings(steps: list[str]) -> list[int]:
    """+1 before the first error, −1 at it (a labeler following the rules)."""
    error = marker_first_error(steps)
    n = len(steps) if error < 0 else error + 1
    return [1] * (n - 1) + [-1 if error >= 0 else 1]


def _steps(rng: random.Random, wrong: bool, answer: str) -> list[str]:
    n = rng.randint(2, 4)
    steps = [" ".join(rng.sample(LOOP_WORDS, 4)) + "." for _ in range(n - 1)]
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


def label_from_truth(labeler, sample: Sample, generation: Generation) -> Label:
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
            label_from_truth(labeler, sample, generation)
    return generation


def unique_name() -> str:
    return uuid.uuid4().hex[:8]


# --- Generation: problems to generate for, a campaign's generator ---------------------------------


def make_problems(campaign: Campaign, n: int = 3, answer: str = "1") -> list[Problem]:
    """`n` train problems whose ground truth is `answer`, and one test problem (never
    generated for)."""
    problems = [
        Problem.objects.create(
            campaign=campaign,
            unique_id=f"gen/{i}",
            problem=f"What is ${i} + 1 - {i}$?",
            ground_truth_answer=answer,
        )
        for i in range(n)
    ]
    Problem.objects.create(
        campaign=campaign,
        unique_id="gen/test",
        problem="A held-out problem.",
        ground_truth_answer="0",
        split="test",
    )
    return problems


def configure_generator(campaign: Campaign, url: str, *, n: int = 3, **fields) -> Campaign:
    """The campaign's generator: a server at `url`, N solutions per problem."""
    settings = {
        "generator_base_url": url,
        "generator_model": "fake",
        "generator_n": n,
        "generator_max_tokens": 32,
        "generator_concurrency": 2,
        **fields,
    }
    for name, value in settings.items():
        setattr(campaign, name, value)
    campaign.full_clean()
    campaign.save()
    return campaign


# --- Admin forms ------------------------------------------------------------------------------


def campaign_change_form(client, campaign) -> dict:
    """The campaign's admin change form as the admin renders it, as POST data."""
    from django.urls import reverse

    response = client.get(reverse("admin:annotate_campaign_change", args=[campaign.pk]))
    form = response.context["adminform"].form
    data = {}
    for name, field in form.fields.items():
        value = field.prepare_value(form.initial.get(name, field.initial))
        if value is None:
            continue
        if isinstance(value, list | tuple) and name in ("labelers",):
            data[name] = [str(v) for v in value]
        elif isinstance(value, bool):
            if value:
                data[name] = "on"
        else:
            data[name] = value
    return data


# --- Overlap: several labelers' finished labels of the same samples ------------------------------

OVERLAP_STEPS = ["Let $x = 2$.", "Then $x^2 = 4$.", "So $x^2 + 1 = 5$.", "# Answer\n\n5"]


def person(name: str, campaign: Campaign | None = None, **fields):
    user = get_user_model().objects.create_user(name, password=f"{name}-password", **fields)
    if campaign is not None:
        campaign.labelers.add(user)
    return user


def finished_label(
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
    samples = [make_sample(campaign, OVERLAP_STEPS) for _ in range(4)]
    return generation, samples
