"""Shared by the scoring-pipeline tests: a small pool, tiny-model settings and the selection
oracle over the Score rows a checkpoint wrote."""

from __future__ import annotations

import numpy as np

from annotate.models import Campaign, Problem, Sample, Score, Selection
from selector.selection import steps_fingerprint
from tests.selector_oracle import reference_select

#: A bootstrap PRM small enough to build and run in well under a second on one slow core.
TINY_BOOTSTRAP = {"hidden": 32, "layers": 1, "heads": 2, "vocab_size": 400, "max_length": 128}
TINY_ENV = {
    "STEPWISE_BOOTSTRAP_HIDDEN": "32",
    "STEPWISE_BOOTSTRAP_LAYERS": "1",
    "STEPWISE_BOOTSTRAP_HEADS": "2",
    "STEPWISE_BOOTSTRAP_VOCAB": "400",
    "STEPWISE_BOOTSTRAP_MAX_LENGTH": "128",
}

WORDS = ["add", "multiply", "divide", "square", "simplify", "factor", "expand", "subtract"]


def make_pool(campaign: Campaign, n_problems: int = 4, per_problem: int = 6) -> list[int]:
    """Train-split problems with right and wrong samples, plus what the pool must leave out
    (a test-split problem, a sample with no answer); returns the pool's sample ids."""
    problems = [
        Problem.objects.create(
            campaign=campaign,
            unique_id=f"train/{i}",
            problem=f"Compute ${i} + {i}$ and {WORDS[i % len(WORDS)]} the result.",
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
                f"We {WORDS[(p + j) % len(WORDS)]} {p} and {j}.",
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
