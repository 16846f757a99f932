"""`train_prm` and `evaluate` on a tiny learnable campaign (CPU, seconds)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from annotate.models import Checkpoint
from tests.factories import label_train_samples, make_campaign_pool
from workers import loop

REPO = Path(__file__).resolve().parents[3]


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.fixture
def labeled(campaign, labeler, tiny_loop):
    make_campaign_pool(campaign)
    label_train_samples(campaign, labeler)
    return campaign


@pytest.mark.django_db
def test_train_prm_writes_a_ready_checkpoint_with_its_record(labeled):
    out = run("train_prm", "--campaign", labeled.slug, "--epochs", "4", "--json")
    payload = json.loads(out)
    checkpoint = Checkpoint.objects.get(pk=payload["checkpoint"])

    assert checkpoint.status == Checkpoint.Status.READY
    assert checkpoint.campaign == labeled
    assert (Path(checkpoint.path) / "model.safetensors").is_file()
    record = checkpoint.training_record
    assert record["epochs_completed"] == 4 and len(record["history"]) == 4
    # 8 train problems × 4 labeled solutions; the stable hash hold-out keeps some problems out.
    examples = loop.campaign_examples(labeled)
    held = loop.validation_keys({e.key for e in examples})
    assert record["held_out_problems"] == len(held) >= 1
    assert record["n_val_examples"] == sum(e.key in held for e in examples)
    assert record["n_train_examples"] + record["n_val_examples"] == len(examples) == 32
    assert checkpoint.trained_on_labels == record["n_train_labels"] > 0
    assert checkpoint.trained_on_generation == 0
    # The rule is learnable: validation loss goes down from the random start.
    assert record["history"][-1]["val_loss"] < record["initial_val_loss"]


@pytest.mark.django_db
def test_train_prm_adds_prm800k_records_and_resumes(labeled):
    out = run(
        "train_prm",
        "--campaign",
        labeled.slug,
        "--epochs",
        "1",
        "--prm800k",
        str(REPO / "data" / "prm800k_examples.jsonl"),
        "--json",
    )
    first = json.loads(out)
    from selector.training import load_prm800k_examples

    extra = load_prm800k_examples(REPO / "data" / "prm800k_examples.jsonl")
    assert first["n_extra_examples"] == len(extra) > 12  # phase-1 alternatives add examples
    assert first["n_train_examples"] + first["n_val_examples"] == 32 + len(extra)

    # A failed (interrupted) checkpoint continues from its last epoch.
    Checkpoint.objects.filter(pk=first["checkpoint"]).update(status=Checkpoint.Status.FAILED)
    out = run(
        "train_prm",
        "--campaign",
        labeled.slug,
        "--resume",
        str(first["checkpoint"]),
        "--epochs",
        "2",
        "--prm800k",
        str(REPO / "data" / "prm800k_examples.jsonl"),
        "--json",
    )
    resumed = json.loads(out)
    assert resumed["checkpoint"] == first["checkpoint"]
    assert resumed["resumed_from_epoch"] == 1 and resumed["epochs_completed"] == 2
    assert resumed["history"][0] == first["history"][0]


@pytest.mark.django_db
def test_train_prm_refuses_a_campaign_without_labels(campaign, tiny_loop):
    make_campaign_pool(campaign)
    with pytest.raises(CommandError, match="no finished labels"):
        run("train_prm", "--campaign", campaign.slug)
    assert Checkpoint.objects.get().status == Checkpoint.Status.FAILED


@pytest.mark.django_db
def test_evaluate_stores_metrics_on_the_checkpoint(labeled):
    trained = json.loads(run("train_prm", "--campaign", labeled.slug, "--epochs", "3", "--json"))
    out = run(
        "evaluate", "--checkpoint", str(trained["checkpoint"]), "--campaign", labeled.slug, "--json"
    )
    metrics = json.loads(out)
    checkpoint = Checkpoint.objects.get(pk=trained["checkpoint"])
    assert checkpoint.metrics["summary"] == metrics["summary"]

    data = metrics["data"]
    assert data["n_test_problems"] == 2 and data["n_test_samples"] == 8
    assert data["n_val_examples"] == trained["n_val_examples"]
    # Best-of-N over 4 graded samples per test problem: N = 1, 2, 4, three methods.
    curves = metrics["best_of_n"]
    assert [n for n, _ in curves["prm"]] == [1, 2, 4]
    # N = 1 is the mean correctness whatever the scores: half the test samples are right.
    assert all(curves[m][0][1] == pytest.approx(0.5) for m in ("prm", "orm", "majority"))
    # Majority voting at N = M: two answers, two votes each, a tie in expectation → 0.5.
    assert curves["majority"][-1][1] == pytest.approx(0.5)
    # The validation numbers match training's own evaluation of the same held-out problems.
    assert metrics["val_loss"] == pytest.approx(trained["val_metrics"]["val_loss"], rel=1e-4)
    assert metrics["labeled"]["step_auc"] == pytest.approx(trained["val_metrics"]["step_auc"])
    summary = metrics["summary"]
    assert summary["best_of_n"] == curves["prm"][-1][1]
    assert summary["first_error_f1"] == metrics["labeled"]["first_error"]["f1"]

    text = run("evaluate", "--checkpoint", str(checkpoint.pk), "--campaign", labeled.slug)
    assert "best-of-N accuracy" in text and "first-error F1" in text


@pytest.mark.django_db
def test_evaluate_rejects_a_checkpoint_of_another_campaign(labeled, campaign_factory=None):
    from annotate.models import Campaign

    other = Campaign.objects.create(slug="other")
    checkpoint = Checkpoint.objects.create(campaign=other, name="x", path="/nonexistent")
    with pytest.raises(CommandError, match="another campaign"):
        run("evaluate", "--checkpoint", str(checkpoint.pk), "--campaign", labeled.slug)
