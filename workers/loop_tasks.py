"""Celery tasks of the retraining loop (`workers.loop`): thin, take IDs, idempotent, acks_late.

    check_retraining (beat, default) ─► train_checkpoint (gpu) ─► evaluate_candidate (gpu)
        ─► gate_checkpoint (default) ─► annotate.generations.start_generation (rescore, select)
    retrain_campaign (a campaign's own beat schedule, default) ─► train_checkpoint …

Every hard time limit stays under the broker's visibility timeout (2 h), so a running task is
never handed to a second worker; a task whose worker died is redelivered and carries on
(training resumes from its last epoch). A task that fails for good marks the checkpoint
`failed`; the next beat check retries the generation (up to `retraining.MAX_ATTEMPTS`).
"""

from __future__ import annotations

import logging

from celery import Task, shared_task
from django.db import InterfaceError, OperationalError

from annotate.models import Campaign, Checkpoint
from annotate.retraining import start_retraining
from workers import loop

logger = logging.getLogger(__name__)


class CheckpointTask(Task):
    """A task whose first argument is a checkpoint id: marks it failed when the task fails."""

    def on_failure(self, exc, task_id, args, kwargs, einfo):
        checkpoint_id = kwargs.get("checkpoint_id", args[0] if args else None)
        if checkpoint_id is not None:
            logger.error("checkpoint %s failed in %s: %r", checkpoint_id, self.name, exc)
            Checkpoint(pk=checkpoint_id).fail(f"{self.name}: {type(exc).__name__}: {exc}")


COMMON = {
    "bind": True,
    "acks_late": True,
    "reject_on_worker_lost": True,
    "autoretry_for": (OperationalError, InterfaceError),
    "retry_backoff": True,
    "max_retries": 5,
}


@shared_task(
    queue="gpu", base=CheckpointTask, soft_time_limit=100 * 60, time_limit=110 * 60, **COMMON
)
def train_checkpoint(self, checkpoint_id: int) -> int:
    """Train the loop's checkpoint on all labels so far; queues its evaluation."""
    loop.train_checkpoint(checkpoint_id)
    evaluate_candidate.delay(checkpoint_id)
    return checkpoint_id


@shared_task(
    queue="gpu", base=CheckpointTask, soft_time_limit=50 * 60, time_limit=55 * 60, **COMMON
)
def evaluate_candidate(self, checkpoint_id: int) -> bool:
    """Evaluate the candidate and the active checkpoint on the same data; queues the gate."""
    if loop.evaluate_for_gate(checkpoint_id):
        gate_checkpoint.delay(checkpoint_id)
        return True
    return False


@shared_task(
    queue="default", base=CheckpointTask, soft_time_limit=9 * 60, time_limit=10 * 60, **COMMON
)
def gate_checkpoint(self, checkpoint_id: int) -> str | None:
    """Promote or reject; then complete the generation and queue the next one."""
    gate = loop.gate_checkpoint(checkpoint_id)
    return None if gate is None else gate["decision"]


@shared_task(queue="default", soft_time_limit=4 * 60, time_limit=5 * 60, **COMMON)
def check_retraining(self) -> list[int]:
    """Beat: start the loop for campaigns whose open generation reached its label target."""
    return loop.check_retraining()


@shared_task(queue="default", soft_time_limit=4 * 60, time_limit=5 * 60, **COMMON)
def retrain_campaign(self, campaign_id: int) -> int | None:
    """A campaign's own beat schedule: retrain now unless a training or generation runs."""
    campaign = Campaign.objects.filter(pk=campaign_id).first()
    if campaign is None:
        return None
    checkpoint = start_retraining(campaign, reason=Checkpoint.Trigger.SCHEDULE)
    return None if checkpoint is None else checkpoint.pk


LOOP_TASKS = (train_checkpoint, evaluate_candidate, gate_checkpoint)
