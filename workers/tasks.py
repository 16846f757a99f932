"""Celery tasks: thin, take IDs, idempotent, acks_late, time-limited.

Queues: `gpu` for anything that runs a model (prepare = bootstrap, score chunks), `default` for
database work (select). A generation flows prepare → score_chunk × N → select; the last chunk
to finish queues selection, so no chord or result backend is needed.

Delivery guarantees come from the settings (acks_late, reject_on_worker_lost, prefetch 1) and
the broker's visibility timeout: a task whose worker dies is handed out again, and every task
here can run twice without writing anything twice (see `workers.pipeline`). Every hard time
limit stays under `CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]`, so a task still
running is never handed to a second worker.

Nothing here imports torch: `workers.pipeline` loads `selector.scoring` inside the functions
that run a model, so the web process can import this module to queue work.
"""

from __future__ import annotations

import logging
from functools import partial

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError, transaction

from annotate.models import Campaign, Checkpoint, Generation
from workers import pipeline

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
            pipeline.fail_generation(generation_id, f"{self.name}: {type(exc).__name__}: {exc}")


COMMON = {
    "base": GenerationTask,
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    **RETRY,
}


def enqueue_generation(
    campaign: Campaign, checkpoint: Checkpoint | None = None, **overrides
) -> Generation:
    """Create (or, after a failure, reset) the campaign's next generation and queue its
    pipeline once the row is committed. Raises `pipeline.PipelineError` when one is running."""
    generation = pipeline.begin_generation(campaign, checkpoint=checkpoint, **overrides)
    transaction.on_commit(partial(_queue_prepare, generation.pk))
    return generation


def _queue_prepare(generation_id: int) -> None:
    # Never raise out of on_commit: a broker that is down (or, in eager mode, a failing
    # pipeline) shows as a failed generation with its error, which the next start retries.
    try:
        prepare_generation.delay(generation_id)
    except Exception as exc:
        logger.exception("could not run the pipeline of generation %s", generation_id)
        pipeline.fail_generation(generation_id, f"{type(exc).__name__}: {exc}")


@shared_task(queue="gpu", soft_time_limit=85 * 60, time_limit=90 * 60, **COMMON)
def prepare_generation(self, generation_id: int) -> int:
    """Bootstrap a checkpoint if needed, plan the chunks, queue them; returns how many."""
    chunk_ids = pipeline.prepare_generation(generation_id)
    for chunk_id in chunk_ids:
        score_chunk.delay(generation_id, chunk_id)
    if not chunk_ids and pipeline.mark_scored(generation_id):
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


GENERATION_TASKS = (prepare_generation, score_chunk, select_generation)


@shared_task(
    bind=True,
    acks_late=True,
    queue="gpu",
    soft_time_limit=50 * 60,
    time_limit=55 * 60,
    **RETRY,
)
def evaluate_checkpoint_metrics(self, checkpoint_id: int, campaign_id: int) -> dict:
    """Evaluate any checkpoint on a campaign's data and store the numbers on it (API, admin)."""
    from workers import loop

    checkpoint = Checkpoint.objects.get(pk=checkpoint_id)
    campaign = Campaign.objects.get(pk=campaign_id)
    return loop.summarize(loop.evaluate_and_store(checkpoint, campaign))
