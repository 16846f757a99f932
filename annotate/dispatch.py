"""How annotate asks the workers for work: Celery tasks sent by name once the transaction
commits. The only place the web side names a task; it never imports `workers`."""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction

# The model modules, not the package: `Label` calls in here, and the package imports it.
from annotate.models.campaign import Campaign
from annotate.models.checkpoint import Checkpoint
from annotate.models.generation import Generation
from config.celery import app

logger = logging.getLogger(__name__)

PREPARE_GENERATION = "workers.tasks.prepare_generation"
GENERATE_SAMPLES = "workers.tasks.generate_samples"
PROPOSE_ALTERNATIVES = "workers.tasks.propose_alternatives"
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


def generator_queue(backend: str) -> str:
    """A local model runs on the GPU workers; a server is only waited on."""
    return "gpu" if backend == "local" else "default"


def start_pipeline(generation: Generation) -> None:
    """Queue a pending generation's pipeline from its first stage: generating samples when
    its generator snapshot asks for some, else scoring."""
    if generation.generates:
        fail = Generation(pk=generation.pk).fail
        queue = generator_queue(generation.generator.get("backend", "openai"))
        _on_commit(GENERATE_SAMPLES, (generation.pk,), queue, fail)
    else:
        prepare_generation(generation.pk)


def prepare_generation(generation_id: int) -> None:
    """Queue a pending generation's pipeline: checkpoint, scoring chunks, selection."""

    def fail(error: str) -> None:
        Generation(pk=generation_id).fail(error)

    _on_commit(PREPARE_GENERATION, (generation_id,), "gpu", fail)


def propose_alternatives(label_id: int, campaign: Campaign) -> None:
    """Queue proposing alternatives to a found_error label's erroneous step, when the
    campaign wants some. A broker that is down costs the alternatives, never the label."""
    if campaign.alternatives_wanted <= 0:
        return
    queue = generator_queue(campaign.generator_backend)
    _on_commit(PROPOSE_ALTERNATIVES, (label_id,), queue, lambda error: None)


def train_checkpoint(checkpoint_id: int) -> None:
    """Queue the retraining loop's training of a `training` checkpoint."""

    def fail(error: str) -> None:
        Checkpoint(pk=checkpoint_id).fail(error)

    _on_commit(TRAIN_CHECKPOINT, (checkpoint_id,), "gpu", fail)


def measure_checkpoint(checkpoint_id: int, campaign_id: int) -> str:
    """Queue measuring a checkpoint on a campaign's data (metrics stored on it); the task name."""
    _on_commit(EVALUATE_CHECKPOINT, (checkpoint_id, campaign_id), "gpu", None)
    return EVALUATE_CHECKPOINT
