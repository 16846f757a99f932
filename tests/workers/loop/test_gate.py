"""The promotion gate: a new checkpoint becomes active only if it beats the active one on the
same validation data; otherwise it is kept, marked rejected, with its numbers."""

from __future__ import annotations

import pytest

from annotate.models import Checkpoint
from annotate.retraining import new_checkpoint
from selector.promotion import decide
from selector.scoring.bootstrap import build_bootstrap_model
from tests.factories import label_train_samples, make_campaign_pool
from workers import loop


@pytest.fixture
def labeled(campaign, labeler, tiny_loop):
    make_campaign_pool(campaign)
    label_train_samples(campaign, labeler)
    return campaign


def trained(campaign, epochs: int = 15) -> Checkpoint:
    """A checkpoint trained on the campaign's labels: knows the rule."""
    checkpoint = new_checkpoint(campaign, prefix="good", generation=0)
    return loop.train_checkpoint(checkpoint.pk, epochs=epochs, done_status=Checkpoint.Status.READY)


def untrained(campaign, settings) -> Checkpoint:
    """A random-init PRM: worse on every metric the gate can use."""
    path = settings.STEPWISE_MODEL_DIR / campaign.slug / "random"
    texts = [p.problem for p in campaign.problems.all()]
    texts += [s for sample in campaign.samples.all() for s in sample.steps]
    build_bootstrap_model(texts, path, seed=7, **settings.STEPWISE_BOOTSTRAP)
    return Checkpoint.objects.create(
        campaign=campaign, name="random", path=str(path), base_model="bootstrap"
    )


def gate(candidate: Checkpoint, campaign) -> dict:
    campaign.refresh_from_db()
    loop.compare_with_active(candidate, campaign)
    candidate.refresh_from_db()
    return loop.apply_gate(candidate, campaign)


@pytest.mark.django_db
def test_a_worse_checkpoint_is_rejected_and_the_active_one_kept(labeled, tiny_loop):
    good = trained(labeled)
    labeled.activate(good)
    worse = untrained(labeled, tiny_loop)

    record = gate(worse, labeled)

    labeled.refresh_from_db()
    worse.refresh_from_db()
    good.refresh_from_db()
    assert record["decision"] == "rejected"
    assert labeled.active_checkpoint_id == good.pk
    assert good.status == Checkpoint.Status.ACTIVE
    assert worse.status == Checkpoint.Status.REJECTED
    # Its numbers are kept: both checkpoints measured on the same validation data.
    stored = worse.metrics["gate"]
    assert stored["metric"] == "val_loss" and stored["active_checkpoint"] == good.pk
    assert stored["candidate"]["val_loss"] > stored["active"]["val_loss"]
    assert worse.metrics["summary"] == stored["candidate"]
    assert good.metrics["summary"] == stored["active"]
    assert worse.metrics["data"] == good.metrics["data"] == stored["data"]
    assert stored["data"]["n_val_labels"] > 0


@pytest.mark.django_db
def test_a_better_checkpoint_is_promoted(labeled, tiny_loop):
    weak = untrained(labeled, tiny_loop)
    labeled.activate(weak)
    better = trained(labeled)

    record = gate(better, labeled)

    labeled.refresh_from_db()
    better.refresh_from_db()
    weak.refresh_from_db()
    assert record["decision"] == "promoted"
    assert labeled.active_checkpoint_id == better.pk
    assert better.status == Checkpoint.Status.ACTIVE
    assert weak.status == Checkpoint.Status.READY
    stored = better.metrics["gate"]
    assert stored["candidate"]["val_loss"] < stored["active"]["val_loss"]
    assert stored["decision"] == "promoted" and stored["decided_at"]


@pytest.mark.django_db
def test_the_metric_is_configurable_per_campaign(labeled, tiny_loop):
    good = trained(labeled)
    labeled.activate(good)
    labeled.promotion_metric = "step_auc"
    # An impossible margin: even a better AUC must be 2 points better to win.
    labeled.promotion_min_delta = 2.0
    labeled.save()
    again = trained(labeled, epochs=20)

    record = gate(again, labeled)

    assert record["metric"] == "step_auc" and record["higher_is_better"] is True
    assert record["decision"] == "rejected"
    assert record["candidate"]["step_auc"] is not None
    labeled.refresh_from_db()
    assert labeled.active_checkpoint_id == good.pk


@pytest.mark.django_db
def test_evaluate_gate_flag_promotes_through_the_command(labeled, tiny_loop):
    import io

    from django.core.management import call_command

    weak = untrained(labeled, tiny_loop)
    labeled.activate(weak)
    better = trained(labeled)
    out = io.StringIO()
    call_command(
        "evaluate",
        "--checkpoint",
        str(better.pk),
        "--campaign",
        labeled.slug,
        "--gate",
        stdout=out,
    )
    assert "Gate: promoted" in out.getvalue()
    labeled.refresh_from_db()
    assert labeled.active_checkpoint_id == better.pk


@pytest.mark.parametrize(
    ("metric", "candidate", "active", "delta", "promote"),
    [
        ("val_loss", 0.5, 0.6, 0.0, True),
        ("val_loss", 0.6, 0.5, 0.0, False),
        ("val_loss", 0.5, 0.5, 0.0, False),  # a tie keeps the active one
        ("val_loss", 0.55, 0.6, 0.1, False),  # better, but not by the margin
        ("step_auc", 0.8, 0.7, 0.0, True),
        ("step_auc", 0.7, 0.8, 0.0, False),
        ("first_error_f1", 0.3, None, 0.0, True),  # the active one has no number here
        ("best_of_n", None, 0.4, 0.0, False),  # nor does the candidate: keep the active
    ],
)
def test_gate_decision_rules(metric, candidate, active, delta, promote):
    decision, reason = decide(metric, candidate, active, min_delta=delta)
    assert decision is promote
    assert metric in reason
