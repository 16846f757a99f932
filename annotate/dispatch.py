"""How annotate asks the workers for work: Celery tasks sent by name once the transaction
commits. The only place the web side names a task; it never imports `workers`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

from annotate.models import Checkpoint, Generation
from config.celery import app

logger = logging.getLogger(__name__)

PREPARE_GENERATION = "workers.tasks.prepare_generation"
EVALUATE_CHECKPOINT = "workers.tasks.evaluate_checkpoint_metrics"
TRAIN_CHECKPOINT = "workers.loop_tasks.train_checkpoint"


def send(name: str, *args: int, queue: str) -> None:
    """Send task `name` now. Where tasks run in-process (eager: the demo, tests), the workers'
    task modules are registered first (Celery's autodiscovery), so the task itself runs."""
    if app.conf.task_always_eager:
        app.loader.import_default_modules()
    app.signature(name, args=list(args), queue=queue).apply_async()


def _on_commit(name: str, args: tuple[int, ...], queue: str, on_error: Callable | None) -> None:
    def run() -> None:
        # Never raise out of on_commit: a broker that is down (or, eagerly, a failing task)
        # is recorded on the row by `on_error`, which the next start retries.
        try:
            send(name, *args, queue=queue)
        except Exception as exc:
            if on_error is None:
                raise
            logger.exception("could not run %s%r", name, args)
            on_error(f"{type(exc).__name__}: {exc}")

    transaction.on_commit(run)


def prepare_generation(generation_id: int) -> None:
    """Queue a pending generation's pipeline: checkpoint, scoring chunks, selection."""

    def fail(error: str) -> None:
        Generation(pk=generation_id).fail(error)

    _on_commit(PREPARE_GENERATION, (generation_id,), "gpu", fail)


def train_checkpoint(checkpoint_id: int) -> None:
    """Queue the retraining loop's training of a `training` checkpoint."""

    def fail(error: str) -> None:
        Checkpoint(pk=checkpoint_id).fail(error)

    _on_commit(TRAIN_CHECKPOINT, (checkpoint_id,), "gpu", fail)


def measure_checkpoint(checkpoint_id: int, campaign_id: int) -> str:
    """Queue measuring a checkpoint on a campaign's data (metrics stored on it); the task name."""
    _on_commit(EVALUATE_CHECKPOINT, (checkpoint_id, campaign_id), "gpu", None)
    return EVALUATE_CHECKPOINT
