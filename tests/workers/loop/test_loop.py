"""The loop through its Celery tasks, executed in-process: the beat check trains, evaluates,
gates and opens the next generation, once per generation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from django.urls import reverse

from annotate.generations import start_generation as enqueue_generation
from annotate.models import Checkpoint, Generation
from annotate.queue import next_assignment
from annotate.retraining import start_retraining
from tests.factories import make_campaign_pool, rate_from_truth
from workers import loop, loop_tasks


def label_everything(campaign, labeler) -> int:
    """A simulated labeler works through the queue; returns how many tasks it finished."""
    done = 0
    while (assignment := next_assignment(labeler, campaign)) is not None:
        rate_from_truth(assignment.label)
        done += 1
    return done


@pytest.fixture
def running(campaign, labeler, tiny_loop, eager, django_capture_on_commit_callbacks):
    campaign.labelers.add(labeler)
    campaign.retrain_epochs = 8
    campaign.save()
    make_campaign_pool(campaign)
    with django_capture_on_commit_callbacks(execute=True):
        enqueue_generation(campaign)
    first = campaign.generations.get(number=0)
    assert first.status == Generation.Status.OPEN, first.error
    return campaign


@pytest.mark.django_db
def test_label_target_runs_the_loop_once(running, labeler, django_capture_on_commit_callbacks):
    campaign = running
    bootstrap = Checkpoint.objects.get(campaign=campaign)
    # Not due before the target: one label short.
    assignment = next_assignment(labeler, campaign)
    rate_from_truth(assignment.label)
    assert loop.due_generations() == []

    finished = 1 + label_everything(campaign, labeler)
    assert finished == 8 * campaign.k  # 8 train problems × K
    assert [g.number for g in loop.due_generations()] == [0]

    with django_capture_on_commit_callbacks(execute=True):
        started = loop_tasks.check_retraining.delay().get()
    assert len(started) == 1

    candidate = Checkpoint.objects.get(pk=started[0])
    assert candidate.status in (Checkpoint.Status.ACTIVE, Checkpoint.Status.REJECTED)
    gate = candidate.metrics["gate"]
    assert gate["decision"] in ("promoted", "rejected")
    assert gate["active_checkpoint"] == bootstrap.pk
    assert candidate.retrain_stage == "done"
    assert candidate.trained_on_generation == 0
    assert candidate.trained_on_labels > 0

    generations = {g.number: g for g in campaign.generations.all()}
    assert generations[0].status == Generation.Status.COMPLETE
    assert generations[1].status == Generation.Status.OPEN, generations[1].error
    campaign.refresh_from_db()
    assert generations[1].checkpoint_id == campaign.active_checkpoint_id
    expected_active = candidate.pk if gate["decision"] == "promoted" else bootstrap.pk
    assert campaign.active_checkpoint_id == expected_active

    # Idempotent: nothing is due any more, a second check starts nothing.
    with django_capture_on_commit_callbacks(execute=True):
        assert loop_tasks.check_retraining.delay().get() == []
    assert Checkpoint.objects.filter(campaign=campaign).count() == 2


@pytest.mark.django_db
def test_never_two_trainings_at_once(running, labeler):
    campaign = running
    label_everything(campaign, labeler)
    generation = campaign.generations.get(number=0)
    # Outside on_commit capture: the queued training never runs, the checkpoint stays training.
    first = start_retraining(campaign, reason="label_target", generation=generation)
    assert first is not None and first.status == Checkpoint.Status.TRAINING
    assert start_retraining(campaign, reason="schedule") is None
    assert start_retraining(campaign, reason="label_target", generation=generation) is None
    assert loop.due_generations() == []  # already started for generation 0
    assert Checkpoint.objects.filter(status=Checkpoint.Status.TRAINING).count() == 1


@pytest.mark.django_db
def test_a_failed_training_is_retried_a_bounded_number_of_times(
    running, labeler, django_capture_on_commit_callbacks, monkeypatch
):
    campaign = running
    label_everything(campaign, labeler)

    def broken(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(loop, "train_checkpoint", broken)
    for attempt in range(loop.MAX_ATTEMPTS):
        with django_capture_on_commit_callbacks(execute=True):
            started = loop.check_retraining()
        assert len(started) == 1, attempt
        failed = Checkpoint.objects.get(pk=started[0])
        assert failed.status == Checkpoint.Status.FAILED
        assert "disk full" in failed.error
    assert loop.check_retraining() == []
    assert campaign.generations.get(number=0).status == Generation.Status.OPEN


@pytest.mark.django_db
def test_scheduled_retraining_keeps_the_generation_when_rejected(
    running, labeler, django_capture_on_commit_callbacks
):
    campaign = running
    label_everything(campaign, labeler)
    # Nothing can win by this margin (update(): the fixture's instance predates activation).
    type(campaign).objects.filter(pk=campaign.pk).update(promotion_min_delta=100.0)
    with django_capture_on_commit_callbacks(execute=True):
        checkpoint_id = loop_tasks.retrain_campaign.delay(campaign.pk).get()
    rejected = Checkpoint.objects.get(pk=checkpoint_id)
    assert rejected.status == Checkpoint.Status.REJECTED
    assert rejected.retrain_trigger == "schedule"
    # A scheduled retraining that changed nothing leaves the open generation alone.
    assert list(campaign.generations.values_list("number", "status")) == [(0, "open")]


@pytest.mark.django_db
def test_default_schedule_exists_and_campaign_schedule_is_linked(campaign):
    from django_celery_beat.models import PeriodicTask

    from annotate.schedules import CHECK_TASK, ensure_campaign_schedule, ensure_default_schedules

    check = ensure_default_schedules()
    assert check.task == CHECK_TASK and check.enabled and check.interval is not None
    assert ensure_default_schedules().pk == check.pk  # idempotent, never duplicated
    task = ensure_campaign_schedule(campaign)
    campaign.refresh_from_db()
    assert campaign.retrain_schedule_id == task.pk
    assert task.task == "workers.loop_tasks.retrain_campaign"
    assert json.loads(task.kwargs) == {"campaign_id": campaign.pk}
    assert ensure_campaign_schedule(campaign).pk == task.pk
    assert PeriodicTask.objects.filter(task=task.task).count() == 1


@pytest.mark.django_db
def test_leads_edit_retraining_in_the_admin(client, lead, campaign):
    client.force_login(lead)
    url = reverse("admin:annotate_campaign_change", args=[campaign.pk])
    html = client.get(url).content.decode()
    for name in ("auto_retrain", "retrain_label_target", "retrain_schedule", "promotion_metric"):
        assert f'name="{name}"' in html

    response = client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "retrain_now", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert response.status_code == 200
    checkpoint = Checkpoint.objects.get(campaign=campaign)
    assert checkpoint.status == Checkpoint.Status.TRAINING  # queued on commit, never run here
    assert checkpoint.retrain_trigger == "manual"
    assert f"training checkpoint {checkpoint.pk} queued" in response.content.decode()


@pytest.mark.django_db
def test_retraining_starts_from_the_campaigns_pretrained_base(running, labeler, tmp_path):
    from tests.selector.prm.published import tiny_bert_base

    campaign = running
    campaign.retrain_base = str(tiny_bert_base(tmp_path / "bert"))
    campaign.retrain_epochs = 1
    campaign.save()
    label_everything(campaign, labeler)
    checkpoint = start_retraining(campaign, reason=Checkpoint.Trigger.MANUAL)
    trained = loop.train_checkpoint(checkpoint.pk)
    record = json.loads((Path(trained.path) / "training_record.json").read_text())
    assert record["base"] == campaign.retrain_base
    assert loop.resolve_base(campaign, None) == (Path(campaign.retrain_base), campaign.retrain_base)
