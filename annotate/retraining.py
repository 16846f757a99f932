"""Starting the retraining loop: the loop's Checkpoint row in `training`, its task queued on
commit. The workers run the rest (`workers.loop`: train → evaluate → gate → next generation)."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from django.db import transaction
from django.utils import timezone

from annotate import dispatch
from annotate.models import Campaign, Checkpoint, Generation

logger = logging.getLogger(__name__)

#: Failed loop attempts for one generation before the beat check stops retrying it.
MAX_ATTEMPTS = 3
#: A checkpoint still `training` after this long lost its task (longer than every time limit).
STALE_TRAINING = timedelta(hours=4)


def new_checkpoint(
    campaign: Campaign,
    *,
    prefix: str,
    generation: int | None,
    trigger: str = "",
) -> Checkpoint:
    """A `training` Checkpoint row with a fresh directory name under the model dir; with a
    `trigger`, a checkpoint of the loop at its training stage."""
    name = f"{prefix}-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    return Checkpoint.objects.create(
        campaign=campaign,
        name=name,
        path=str(Checkpoint.directory_for(campaign, name)),
        adapter=Checkpoint.Adapter.TOKEN_CLASSIFICATION,
        status=Checkpoint.Status.TRAINING,
        trained_on_generation=generation,
        retrain_trigger=trigger,
        retrain_stage=Checkpoint.Stage.TRAINING if trigger else "",
        retrain_generation=generation if trigger else None,
    )


def attempts(campaign: Campaign, number: int) -> tuple[bool, int]:
    """(a non-failed loop checkpoint exists for generation `number`, failed attempts)."""
    statuses = list(
        Checkpoint.objects.filter(campaign=campaign, retrain_generation=number).values_list(
            "status", flat=True
        )
    )
    failed = sum(s == Checkpoint.Status.FAILED for s in statuses)
    return len(statuses) > failed, failed


def fail_stale(campaign: Campaign) -> None:
    cutoff = timezone.now() - STALE_TRAINING
    stale = Checkpoint.objects.filter(
        campaign=campaign, status=Checkpoint.Status.TRAINING, created_at__lt=cutoff
    )
    for checkpoint in stale:
        checkpoint.fail(f"still training after {STALE_TRAINING}: its task was lost")


def start_retraining(
    campaign: Campaign, *, reason: str, generation: Generation | None = None
) -> Checkpoint | None:
    """Create the loop's checkpoint and queue its training once committed; None (nothing
    started) while the campaign has a training or a running generation.

    `reason`: a `Checkpoint.Trigger`. `generation`: the open generation whose labels
    triggered it (label-target trigger); otherwise the campaign's newest open generation, if
    any, is the one the loop advances.
    """
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        fail_stale(locked)
        if Checkpoint.objects.filter(campaign=locked, status=Checkpoint.Status.TRAINING).exists():
            return None
        if locked.generations.running().exists():
            return None
        if generation is None:
            generation = locked.generations.open().newest()
        elif reason == Checkpoint.Trigger.LABEL_TARGET:
            fresh = Generation.objects.get(pk=generation.pk)
            started, failed = attempts(locked, fresh.number)
            if fresh.status != Generation.Status.OPEN or started or failed >= MAX_ATTEMPTS:
                return None
        number = generation.number if generation is not None else None
        checkpoint = new_checkpoint(
            locked,
            prefix=f"gen{number}" if number is not None else "retrain",
            generation=number,
            trigger=reason,
        )
        dispatch.train_checkpoint(checkpoint.pk)
    logger.info(
        "campaign %s: retraining (%s) as checkpoint %s", campaign.slug, reason, checkpoint.pk
    )
    return checkpoint
