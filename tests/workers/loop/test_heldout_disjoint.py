"""The gate never compares checkpoints on data either trained on: the loop's held-out problems
are disjoint from every checkpoint's training set, the bootstrap's included, as labels grow."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from annotate.models import Checkpoint, Problem
from annotate.retraining import new_checkpoint
from selector.training.trainer import TRAINING_RECORD
from tests.factories import label_from_truth, make_campaign_pool, make_generation
from workers import loop, pipeline


def label_problems(campaign, labeler, problems) -> None:
    generation = make_generation(campaign)
    for problem in problems:
        for sample in problem.samples.order_by("pk")[:3]:
            label_from_truth(labeler, sample, generation)


def trained_problems(checkpoint: Checkpoint) -> set[str]:
    record = json.loads((Path(checkpoint.path) / TRAINING_RECORD).read_text(encoding="utf-8"))
    return set(record["train_problems"])


@pytest.mark.django_db
def test_held_out_problems_are_never_trained_on(campaign, labeler, tiny_loop):
    make_campaign_pool(campaign, n_problems=12, per_problem=4)
    train = list(campaign.problems.filter(split=Problem.Split.TRAIN).order_by("pk"))
    early, late = train[::2], train[1::2]
    early_texts = {p.problem for p in early}

    # A campaign that already has labels bootstraps its first checkpoint on them.
    label_problems(campaign, labeler, early)
    bootstrap = pipeline.ensure_active_checkpoint(campaign)
    assert bootstrap.trained_on_labels > 0

    # More labels, on other problems; the loop trains the next checkpoint on all of them.
    label_problems(campaign, labeler, late)
    candidate = new_checkpoint(campaign, prefix="next", generation=1)
    candidate = loop.train_checkpoint(candidate.pk, epochs=1, done_status=Checkpoint.Status.READY)

    data = loop.evaluation_data(campaign)
    held = {e.key for e in data.labeled}
    early_keys = {e.key for e in loop.campaign_examples(campaign) if e.problem in early_texts}
    # The set up means something: both label batches put problems in the gate's set.
    assert held & early_keys and held - early_keys

    for checkpoint in (bootstrap, candidate):
        trained = trained_problems(checkpoint)
        assert trained, checkpoint.name
        assert not trained & held, f"{checkpoint.name} trained on held-out problems"
    # Every labeled problem is either trained on by the newest checkpoint or held out.
    labeled = {e.key for e in loop.campaign_examples(campaign)}
    assert trained_problems(candidate) | held == labeled
    # And the gate's uniform-arm set is a subset of the same held-out labels.
    assert {e.key for e in data.uniform} <= held
