"""Celery tasks: thin, take IDs, idempotent, acks_late, time-limited.

Queues: `gpu` for anything that runs a model (prepare = bootstrap, score chunks; generating
with a local model), `default` for database work (select) and waiting on a generation server.
A generation flows [generate_samples →] prepare → score_chunk × N → select; the last chunk
to finish queues selection, so no chord or result backend is needed.

Delivery guarantees come from the settings (acks_late, reject_on_worker_lost, prefetch 1) and
the broker's visibility timeout: a task whose worker dies is handed out again, and every task
here can run twice without writing anything twice (see `workers.pipeline`). Every hard time
limit stays under `CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]`, so a task still
running is never handed to a second worker. That timeout is long (2 h, for training), so a
scoring chunk does not wait for it: beat's `requeue_stale_chunks` sends again, within
minutes, every started chunk whose heartbeat stopped.

Nothing here imports torch: `workers.pipeline` loads `selector.scoring` inside the functions
that run a model, so the web process can import this module to queue work.
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from annotate import dispatch, generations, queue
from annotate.models import Campaign, Checkpoint, Generation
from workers import generation, loop, pipeline

logger = logging.getLogger(__name__)

# Database hiccups (a restart, a deadlock victim) are retried; anything else fails the
# generation with its error, for the lead to read in the admin.
RETRY = {
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "retry_backoff_max": 300,
    "max_retries": 5,
}


class GenerationTask(Task):
    """A task whose first argument is a generation id: marks it failed, with the error, when
    the task fails for good (retries exhausted, soft time limit, a bug)."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        generation_id = kwargs.get("generation_id", args[0] if args else None)
        if generation_id is not None:
            logger.error("generation %s failed in %s: %r", generation_id, self.name, exc)
            Generation(pk=generation_id).fail(f"{self.name}: {type(exc).__name__}: {exc}")


COMMON = {
    "base": GenerationTask,
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    **RETRY,
}


# The queue is the dispatcher's: `default` for a server backend, `gpu` for a local model.
@shared_task(queue="default", soft_time_limit=85 * 60, time_limit=90 * 60, **COMMON)
def generate_samples(self, generation_id: int) -> bool:
    """Generate, store and grade the generation's samples, then queue its scoring."""
    if generation.generate_samples(generation_id):
        prepare_generation.delay(generation_id)
        return True
    return False


@shared_task(queue="gpu", soft_time_limit=85 * 60, time_limit=90 * 60, **COMMON)
def prepare_generation(self, generation_id: int) -> int:
    """Bootstrap a checkpoint if needed, plan the chunks, queue them; returns how many."""
    chunk_ids = pipeline.prepare_generation(generation_id)
    for chunk_id in chunk_ids:
        score_chunk.delay(generation_id, chunk_id)
    if not chunk_ids and Generation(pk=generation_id).mark_scored():
        # Nothing left to score (an empty pool, or `score` ran first): select right away.
        select_generation.delay(generation_id)
    return len(chunk_ids)


@shared_task(queue="gpu", soft_time_limit=55 * 60, time_limit=60 * 60, **COMMON)
def score_chunk(self, generation_id: int, chunk_id: int) -> bool:
    """Score one chunk; the task that finishes the last one queues selection."""
    if pipeline.score_chunk(chunk_id):
        select_generation.delay(generation_id)
        return True
    return False


@shared_task(queue="default", soft_time_limit=25 * 60, time_limit=30 * 60, **COMMON)
def select_generation(self, generation_id: int) -> int:
    """Select with the generation's checkpoint and open it; returns the number selected."""
    generation = pipeline.select_generation(generation_id)
    return 0 if generation is None else generation.selections.count()


GENERATION_TASKS = (generate_samples, prepare_generation, score_chunk, select_generation)


@shared_task(
    bind=True,
    acks_late=True,
    queue="default",
    soft_time_limit=10 * 60,
    time_limit=11 * 60,
    **RETRY,
)
def propose_alternatives(self, label_id: int) -> int:
    """Alternatives to a found_error label's erroneous step; returns how many were stored."""
    return generation.propose_label_alternatives(label_id)


@shared_task(
    bind=True,
    acks_late=True,
    queue="gpu",
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
    **RETRY,
)
def evaluate_checkpoint_metrics(self, checkpoint_id: int, campaign_id: int) -> dict:
    """Measure any checkpoint on a campaign's data and store the numbers on it (the API's
    evaluate endpoint); not the loop's gate evaluation (`loop_tasks.evaluate_candidate`)."""
    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    return loop.summarize(loop.evaluate_and_store(checkpoint, campaign))


@shared_task(acks_late=True, queue="default", soft_time_limit=4 * 60, time_limit=5 * 60, **RETRY)
def expire_stale_leases() -> int:
    """Beat's sweep: lapsed leases re-open their slots even when nobody claims in between."""
    return queue.expire_stale_leases()


@shared_task(acks_late=True, queue="default", soft_time_limit=4 * 60, time_limit=5 * 60, **RETRY)
def requeue_stale_chunks() -> int:
    """Beat's sweep: scoring chunks whose worker died are queued again (heartbeat lapsed)."""
    return generations.requeue_stale_chunks()


@shared_task(acks_late=True, queue="default", soft_time_limit=4 * 60, time_limit=5 * 60, **RETRY)
def flush_queued_tasks() -> int:
    """Beat's sweep: tasks the web side queued while the broker was down are sent now."""
    return dispatch.flush_queued_tasks()
