"""How annotate asks the workers for work: Celery tasks sent by name once the transaction
commits. The only place the web side names a task; it never imports `workers`.

With a broker, every task goes through an outbox: a `QueuedTask` row written in the caller's
transaction, sent after the commit and deleted once the broker took it. A broker that is down
(or a web process killed between commit and send) leaves the row, and beat's
`flush_queued_tasks` sends it once the broker is back: the request that wanted the task never
fails for it, and the task is never lost. Every task is idempotent, so the rare resend of one
the broker did take (a crash between its send and the row's delete) repeats nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from django.db import transaction
from django.db.models import F

# The model modules, not the package: `Label` calls in here, and the package imports it.
from annotate.models.campaign import Campaign
from annotate.models.checkpoint import Checkpoint
from annotate.models.generation import Generation
from annotate.models.outbox import QueuedTask
from config.celery import app

logger = logging.getLogger(__name__)

PREPARE_GENERATION = "workers.tasks.prepare_generation"
GENERATE_SAMPLES = "workers.tasks.generate_samples"
SCORE_CHUNK = "workers.tasks.score_chunk"
SELECT_GENERATION = "workers.tasks.select_generation"
PROPOSE_ALTERNATIVES = "workers.tasks.propose_alternatives"
EVALUATE_CHECKPOINT = "workers.tasks.evaluate_checkpoint_metrics"
TRAIN_CHECKPOINT = "workers.loop_tasks.train_checkpoint"
#: Rows one flush sends at most (the next beat tick takes the rest).
FLUSH_LIMIT = 500


def send(name: str, *args: int, queue: str) -> None:
    """Send task `name` now. Where tasks run in-process (eager: the demo, tests), the workers'
    task modules are registered first (Celery's autodiscovery), so the task itself runs."""
    if app.conf.task_always_eager:
        app.loader.import_default_modules()
    # One quick retry: a broker that stays down is the outbox's to wait out, not the request's.
    policy = {"max_retries": 1, "interval_start": 0.2}
    app.signature(name, args=list(args), queue=queue).apply_async(retry_policy=policy)


def _run_eagerly(name: str, args: tuple[int, ...], queue: str, on_error: Callable | None) -> None:
    def run() -> None:
        # Never raise out of on_commit: a failing in-process task is recorded on the row by
        # `on_error`, which the next start retries.
        try:
            send(name, *args, queue=queue)
        except Exception as exc:
            if on_error is None:
                raise
            logger.exception("could not run %s%r", name, args)
            on_error(f"{type(exc).__name__}: {exc}")

    transaction.on_commit(run)


def _on_commit(name: str, args: tuple[int, ...], queue: str, on_error: Callable | None) -> None:
    """Queue task `name` once the caller's transaction commits: in-process where tasks run
    eagerly, else through the outbox (`on_error` is only for a task that fails in-process)."""
    if app.conf.task_always_eager:
        _run_eagerly(name, args, queue, on_error)
        return
    row = QueuedTask.objects.create(name=name, args=list(args), queue=queue)
    transaction.on_commit(lambda: _deliver(row.pk))


def _note_failure(pks: list[int], exc: Exception) -> None:
    logger.warning("broker refused %d queued task(s), kept for later: %r", len(pks), exc)
    try:
        QueuedTask.objects.filter(pk__in=pks).update(
            attempts=F("attempts") + 1, last_error=f"{type(exc).__name__}: {exc}"[:2000]
        )
    except Exception:  # the database may be the thing that is down
        logger.exception("could not record the failed send of %r", pks)


def _deliver(pk: int) -> None:
    """Send one outbox row and delete it, under its row lock (a concurrent flush skips it);
    never raises: the request that queued it has committed and must answer."""
    try:
        with transaction.atomic():
            row = QueuedTask.objects.select_for_update(skip_locked=True).filter(pk=pk).first()
            if row is None:  # a flush took it first
                return
            send(row.name, *row.args, queue=row.queue)
            row.delete()
    except Exception as exc:
        _note_failure([pk], exc)


def flush_queued_tasks(limit: int = FLUSH_LIMIT) -> int:
    """Send the outbox's rows, oldest first, until the broker refuses one; returns how many
    were sent. Beat runs it every minute; rows a request is sending right now are skipped."""
    sent: list[int] = []
    with transaction.atomic():
        rows = list(QueuedTask.objects.select_for_update(skip_locked=True)[:limit])
        for row in rows:
            try:
                send(row.name, *row.args, queue=row.queue)
            except Exception as exc:
                _note_failure([r.pk for r in rows if r.pk not in sent], exc)
                break
            sent.append(row.pk)
        QueuedTask.objects.filter(pk__in=sent).delete()
    if sent:
        logger.info("sent %d queued task(s)", len(sent))
    return len(sent)


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


def score_chunk(generation_id: int, chunk_id: int) -> None:
    """Queue scoring one chunk again (a resumed generation; duplicates count nothing twice)."""
    _on_commit(SCORE_CHUNK, (generation_id, chunk_id), "gpu", Generation(pk=generation_id).fail)


def select_generation(generation_id: int) -> None:
    """Queue the selection of a generation waiting in `selecting`."""
    _on_commit(SELECT_GENERATION, (generation_id,), "default", Generation(pk=generation_id).fail)


def propose_alternatives(label_id: int, campaign: Campaign) -> None:
    """Queue proposing alternatives to a found_error label's erroneous step, when the
    campaign wants some. A broker that is down delays the alternatives, never the label."""
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
