"""THE loop integration test: several generations run unattended on PostgreSQL + Redis through
real processes (a Celery worker on the gpu and default queues, and celery beat with the
database scheduler), while simulated labelers claim work through the queue and rate steps
through the labeling rules.

The only human action is the lead's "start generation 0". From then on, beat's
`check_retraining` notices each generation reaching its label target, and the worker trains a
checkpoint, evaluates it and the active one on the same validation data, gates, rescores the
pool and opens the next generation.
"""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from django.db import connection
from django_celery_beat.models import IntervalSchedule

from annotate.generations import start_generation as enqueue_generation
from annotate.models import Checkpoint, Generation, Label, Selection
from annotate.queue import next_assignment
from annotate.schedules import ensure_default_schedules
from tests.factories import make_campaign_pool, rate_from_truth
from tests.workers.pipeline.test_pipeline_worker import (
    BROKER,
    Workers,
    flush_broker,
)

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="worker processes need a shared database: set DATABASE_URL=postgres://… (CI does)",
    ),
    pytest.mark.skipif(
        not BROKER.startswith("redis://"),
        reason="needs a Redis broker: set CELERY_BROKER_URL=redis://… (CI does)",
    ),
]

GENERATIONS = 3  # retrainings to watch: generations 1, 2 and 3 open unattended
DEADLINE_S = 170
N_PROBLEMS, PER_PROBLEM, K = 8, 8, 2  # 64 pool samples, 16 selected per generation


class LoopProcesses(Workers):
    """The pipeline test's worker processes, plus celery beat on the database scheduler."""

    def start_beat(self, name: str) -> subprocess.Popen:
        cmd = [sys.executable, "-m", "celery", "-A", "config", "beat", "-l", "INFO"]
        cmd += ["-S", "django_celery_beat.schedulers:DatabaseScheduler", "--max-interval", "1"]
        return self.spawn(name, cmd)


@pytest.fixture
def processes(tmp_path):
    flush_broker()
    procs = LoopProcesses(tmp_path)
    procs.env["STEPWISE_TRAIN_BATCH_TOKENS"] = "160"
    yield procs
    procs.stop_all()
    flush_broker()


def beat_every_second() -> None:
    """The lead's schedule, tightened for the test (the default row checks every 5 minutes)."""
    task = ensure_default_schedules()
    task.interval, _ = IntervalSchedule.objects.get_or_create(
        every=1, period=IntervalSchedule.SECONDS
    )
    task.expire_seconds = 2
    task.enabled = True
    task.save()


@pytest.mark.django_db(transaction=True)
def test_generations_run_unattended(campaign, labeler, other_labeler, processes):
    campaign.k = K
    campaign.retrain_epochs = 10
    campaign.save()
    campaign.labelers.add(labeler, other_labeler)
    make_campaign_pool(campaign, n_problems=N_PROBLEMS, per_problem=PER_PROBLEM)
    beat_every_second()
    worker = processes.start("worker")
    beat = processes.start_beat("beat")

    enqueue_generation(campaign)  # the lead's only click
    logs = lambda: processes.log("worker") + processes.log("beat")  # noqa: E731

    started = time.monotonic()
    done = 0
    while time.monotonic() - started < DEADLINE_S:
        assert worker.poll() is None and beat.poll() is None, logs()
        worked = False
        for user in (labeler, other_labeler):
            assignment = next_assignment(user, campaign)
            if assignment is not None:
                rate_from_truth(assignment.label)
                done += 1
                worked = True
        latest = campaign.generations.order_by("-number").first()
        if latest is not None and latest.status == Generation.Status.FAILED:
            pytest.fail(f"generation {latest.number} failed: {latest.error}\n{logs()}")
        if latest and latest.number >= GENERATIONS and latest.status == Generation.Status.OPEN:
            break
        if not worked:
            time.sleep(0.2)
    elapsed = time.monotonic() - started
    generations = list(campaign.generations.order_by("number"))
    assert [g.number for g in generations] == list(range(GENERATIONS + 1)), (
        f"{[(g.number, g.status) for g in generations]} after {elapsed:.0f} s\n{logs()}"
    )

    # Every generation but the newest was labeled in full and completed by the loop.
    per_generation = N_PROBLEMS * K
    newest_labels = Label.objects.filter(assignment__generation=generations[-1]).count()
    assert done == GENERATIONS * per_generation + newest_labels
    for g in generations[:-1]:
        assert g.status == Generation.Status.COMPLETE
        assert g.selections.count() == per_generation
        assert (
            Label.objects.filter(assignment__generation=g, finish_reason__isnull=False).count()
            == per_generation
        )
    assert generations[-1].status == Generation.Status.OPEN
    assert Selection.objects.filter(generation__campaign=campaign).count() == (
        (GENERATIONS + 1) * per_generation
    )

    # One loop checkpoint per labeled generation: trained, evaluated, gated; never two.
    loop_checkpoints = list(
        Checkpoint.objects.filter(campaign=campaign).exclude(retrain_stage="").order_by("pk")
    )
    assert [c.trained_on_generation for c in loop_checkpoints] == list(range(GENERATIONS))
    bootstrap = generations[0].checkpoint
    assert bootstrap.base_model == "bootstrap"
    active = bootstrap
    labels_seen = 0
    for number, candidate in enumerate(loop_checkpoints):
        assert candidate.retrain_stage == "done" and candidate.retrain_trigger == "label_target"
        assert candidate.next_generation == number + 1
        assert candidate.trained_on_labels > labels_seen  # all labels so far, more each time
        labels_seen = candidate.trained_on_labels
        gate = candidate.metrics["gate"]
        print(  # shown with -s: what the loop decided, on which numbers
            f"generation {number}: {gate['decision']}, val loss "
            f"{gate['candidate']['val_loss']:.4f} vs active {gate['active']['val_loss']:.4f}, "
            f"{candidate.trained_on_labels} step labels"
        )
        # Candidate and active were measured on the same data.
        assert gate["active_checkpoint"] == active.pk
        assert gate["data"] == candidate.metrics["data"]
        assert gate["candidate"]["val_loss"] is not None and gate["active"]["val_loss"] is not None
        assert candidate.metrics["best_of_n"]["n_problems"] == 2
        if gate["decision"] == "promoted":
            assert gate["candidate"]["val_loss"] < gate["active"]["val_loss"]
            active = candidate
        else:
            assert candidate.status == Checkpoint.Status.REJECTED
        # The next generation was scored and selected with the checkpoint active after the gate.
        assert generations[number + 1].checkpoint_id == active.pk
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == active.pk
    assert list(Checkpoint.objects.filter(campaign=campaign, status=Checkpoint.Status.ACTIVE)) == [
        active
    ]
    assert not Checkpoint.objects.filter(
        status__in=[Checkpoint.Status.TRAINING, Checkpoint.Status.FAILED]
    ).exists()
    # At least one retraining beat the bootstrap model (learnable labels, a random start).
    assert active.pk != bootstrap.pk
    assert elapsed < DEADLINE_S
