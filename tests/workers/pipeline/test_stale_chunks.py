"""A crashed worker does not block a campaign: the whole Celery worker is SIGKILLed in the
middle of scoring, and the chunk it held is queued again by beat's stale-chunk sweep (its
heartbeat stopped) long before the broker's visibility timeout (an hour here) would hand it
out; the lead can also resume a stuck generation from the admin."""

from __future__ import annotations

import os
import signal
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone

from annotate import dispatch
from annotate.generations import begin_generation, requeue_stale_chunks
from annotate.generations import start_generation as enqueue_generation
from annotate.models import AuditEvent, Generation, Score
from annotate.schedules import CHUNK_SWEEP_NAME
from tests.factories import make_pool
from tests.workers.pipeline.test_pipeline_worker import (
    BROKER,
    group_members,
    wait_for,
)
from tests.workers.sweeps import beat_and_workers, sweep_every_second
from workers import pipeline
from workers.models import ScoringChunk

STALE_S = 5
real_services = pytest.mark.skipif(
    connection.vendor != "postgresql" or not BROKER.startswith("redis://"),
    reason="worker processes need PostgreSQL and Redis: set DATABASE_URL and CELERY_BROKER_URL",
)


@pytest.fixture
def processes(tmp_path):
    # A visibility timeout of an hour: redelivery cannot be what recovers the chunk.
    env = {"CELERY_VISIBILITY_TIMEOUT": "3600", "STEPWISE_CHUNK_STALE_SECONDS": str(STALE_S)}
    with beat_and_workers(tmp_path, **env) as procs:
        yield procs


def kill_mid_chunk(processes, worker, generation) -> float:
    """SIGKILL the whole worker while it is inside a chunk: frozen first (SIGSTOP), so the
    check that a started chunk is unfinished still holds when the kill lands."""
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if worker.poll() is not None:
            break
        os.killpg(worker.pid, signal.SIGSTOP)
        started = ScoringChunk.objects.filter(
            generation=generation, done=False, heartbeat_at__isnull=False
        )
        if Score.objects.exists() and started.exists():
            processes.kill(worker)
            return time.monotonic()
        os.killpg(worker.pid, signal.SIGCONT)
        time.sleep(0.05)
    raise AssertionError("the worker never got inside a chunk\n" + processes.log("first"))


@pytest.mark.django_db(transaction=True)
@pytest.mark.slow
@real_services
def test_a_killed_worker_s_chunk_is_requeued_within_seconds(campaign, processes):
    pool = make_pool(campaign, n_problems=12, per_problem=21)
    first = processes.start("first")
    generation = enqueue_generation(campaign)
    killed_at = kill_mid_chunk(processes, first, generation)
    assert group_members(first.pid) == []
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SCORING
    lost = ScoringChunk.objects.filter(
        generation=generation, done=False, heartbeat_at__isnull=False
    )
    assert lost.count() == 1, "one chunk was being scored when the worker died"
    (lost_chunk,) = lost

    sweep_every_second(CHUNK_SWEEP_NAME)
    processes.start("second")
    processes.start_beat("beat")
    wait_for(
        lambda: Generation.objects.filter(
            pk=generation.pk, status__in=[Generation.Status.OPEN, Generation.Status.FAILED]
        ).exists(),
        120,
        "the generation to open",
        processes.log("second") + processes.log("beat"),
    )
    recovered_s = time.monotonic() - killed_at
    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error
    assert recovered_s < 3600  # not the visibility timeout: the sweep sent the chunk again
    lost_chunk.refresh_from_db()
    assert lost_chunk.done and lost_chunk.attempts >= 2
    scored = Score.objects.filter(checkpoint=generation.checkpoint)
    assert sorted(scored.values_list("sample_id", flat=True)) == pool  # once each
    assert generation.progress_done == generation.progress_total == len(pool)
    print(f"recovered {recovered_s:.0f} s after the kill")


def recorded_sends(monkeypatch) -> list[tuple]:
    sent: list[tuple] = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args, queue: sent.append((name, args)))
    return sent


@pytest.mark.django_db
def test_the_sweep_requeues_only_started_chunks_whose_heartbeat_stopped(
    campaign, tiny_models, monkeypatch, django_capture_on_commit_callbacks
):
    make_pool(campaign, n_problems=6, per_problem=6)
    generation = begin_generation(campaign)
    chunks = pipeline.prepare_generation(generation.pk)  # planned; no task ever queued them
    assert len(chunks) >= 3
    stale, fresh, waiting = chunks[:3]
    now = timezone.now()
    ScoringChunk.objects.filter(pk=stale).update(heartbeat_at=now - timedelta(minutes=6))
    ScoringChunk.objects.filter(pk=fresh).update(heartbeat_at=now - timedelta(minutes=1))
    sent = recorded_sends(monkeypatch)
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_stale_chunks(now) == 1
    assert sent == [(dispatch.SCORE_CHUNK, (generation.pk, stale))]
    # Queued again: waiting, so the next sweep leaves it alone until a worker starts it.
    assert ScoringChunk.objects.get(pk=stale).heartbeat_at is None
    assert ScoringChunk.objects.get(pk=waiting).heartbeat_at is None
    with django_capture_on_commit_callbacks(execute=True):
        assert requeue_stale_chunks(now) == 0


@pytest.mark.django_db
def test_the_lead_resumes_a_stuck_generation_from_the_admin(
    client, lead, campaign, tiny_models, eager, django_capture_on_commit_callbacks
):
    pool = make_pool(campaign, n_problems=3, per_problem=6)
    generation = begin_generation(campaign)
    pipeline.prepare_generation(generation.pk)  # its chunks' tasks were lost with a worker
    assert Generation.objects.get(pk=generation.pk).status == Generation.Status.SCORING
    client.force_login(lead)
    url = reverse("admin:annotate_generation_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(url, {"action": "resume", "_selected_action": [generation.pk]})
    assert response.status_code == 302
    generation.refresh_from_db()
    assert generation.status == Generation.Status.OPEN, generation.error
    assert Score.objects.filter(checkpoint=generation.checkpoint).count() == len(pool)
    event = AuditEvent.objects.get(action=AuditEvent.Action.GENERATION_STARTED)
    assert (event.actor, event.target) == (lead, f"generation {generation.number}, resumed")
    # An open generation has nothing to resume; the lead is told so.
    response = client.post(
        url, {"action": "resume", "_selected_action": [generation.pk]}, follow=True
    )
    assert "nothing to resume (open)" in response.content.decode()


@pytest.mark.django_db
def test_setup_schedules_creates_the_recovery_sweeps_once():
    from django.core.management import call_command
    from django_celery_beat.models import PeriodicTask

    from annotate.schedules import CHUNK_SWEEP_TASK, OUTBOX_SWEEP_TASK

    call_command("setup_schedules")
    call_command("setup_schedules")
    for name in (CHUNK_SWEEP_TASK, OUTBOX_SWEEP_TASK):
        row = PeriodicTask.objects.get(task=name)
        assert row.enabled and row.queue == "default"
        assert row.interval.every == 1 and row.interval.period == "minutes"
