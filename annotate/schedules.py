"""Beat schedules of the retraining loop, as django_celery_beat rows that leads edit in the admin.

Choice: the default rows are created by a `post_migrate` handler (`WorkersConfig.ready`), so
every deployment that runs `migrate` has them without a data migration, and a lead's edits
(interval, enabled, …) are never overwritten: rows are only created when missing, looked up
by name. `setup_schedules` (management command) does the same by hand.

- "stepwise: check retraining" (every 5 minutes): `workers.loop_tasks.check_retraining` starts
  the loop for every campaign whose open generation reached its label target.
- "stepwise: expire stale leases" (every 5 minutes): `workers.tasks.expire_stale_leases`
  re-opens slots whose labeler's lease ran out.
- "stepwise: requeue stale scoring chunks" (every minute): `workers.tasks.requeue_stale_chunks`
  queues again the chunks whose worker died (their heartbeat stopped).
- "stepwise: send queued tasks" (every minute): `workers.tasks.flush_queued_tasks` sends the
  outbox's tasks that the broker could not take when they were queued.
- per campaign, optional (admin action "Add a nightly retraining schedule"):
  "stepwise: retrain <slug>" runs `workers.loop_tasks.retrain_campaign` on a crontab
  (03:00 UTC by default), linked from `Campaign.retrain_schedule`.
"""

from __future__ import annotations

import json

from django.db import transaction

CHECK_TASK_NAME = "stepwise: check retraining"
CHECK_TASK = "workers.loop_tasks.check_retraining"
RETRAIN_TASK = "workers.loop_tasks.retrain_campaign"
CHECK_EVERY_MINUTES = 5
SWEEP_TASK_NAME = "stepwise: expire stale leases"
SWEEP_TASK = "workers.tasks.expire_stale_leases"
CHUNK_SWEEP_NAME = "stepwise: requeue stale scoring chunks"
CHUNK_SWEEP_TASK = "workers.tasks.requeue_stale_chunks"
OUTBOX_SWEEP_NAME = "stepwise: send queued tasks"
OUTBOX_SWEEP_TASK = "workers.tasks.flush_queued_tasks"


def ensure_default_schedules(*, every_seconds: int | None = None):
    """The periodic label-target check, created when missing (never modified when present)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    existing = PeriodicTask.objects.filter(name=CHECK_TASK_NAME).first()
    if existing is not None:
        return existing
    if every_seconds is None:
        every, period = CHECK_EVERY_MINUTES, IntervalSchedule.MINUTES
    else:
        every, period = every_seconds, IntervalSchedule.SECONDS
    with transaction.atomic():
        interval, _ = IntervalSchedule.objects.get_or_create(every=every, period=period)
        task, _ = PeriodicTask.objects.get_or_create(
            name=CHECK_TASK_NAME,
            defaults={
                "task": CHECK_TASK,
                "interval": interval,
                "queue": "default",
                # A check that waited longer than one period is superseded by the next one.
                "expire_seconds": every * (60 if period == IntervalSchedule.MINUTES else 1),
                "description": "Start the retraining loop for campaigns whose open generation "
                "reached its label target (workers.loop).",
            },
        )
    return task


def ensure_campaign_schedule(campaign, *, hour: str = "3", minute: str = "0"):
    """The campaign's scheduled-retraining beat task, created and linked when missing."""
    from django_celery_beat.models import CrontabSchedule, PeriodicTask

    if campaign.retrain_schedule_id is not None:
        task = PeriodicTask.objects.filter(pk=campaign.retrain_schedule_id).first()
        if task is not None:
            return task
    with transaction.atomic():
        crontab, _ = CrontabSchedule.objects.get_or_create(
            minute=minute,
            hour=hour,
            day_of_week="*",
            day_of_month="*",
            month_of_year="*",
            timezone="UTC",
        )
        task, _ = PeriodicTask.objects.get_or_create(
            name=f"stepwise: retrain {campaign.slug}",
            defaults={
                "task": RETRAIN_TASK,
                "crontab": crontab,
                "kwargs": json.dumps({"campaign_id": campaign.pk}),
                "queue": "default",
                "description": f"Scheduled retraining of campaign {campaign.slug}.",
            },
        )
        type(campaign).objects.filter(pk=campaign.pk).update(retrain_schedule=task)
        campaign.retrain_schedule = task
    return task


def _ensure_sweep(name: str, task_name: str, every_minutes: int, description: str):
    """A periodic sweep's row, created when missing (never modified when present)."""
    from django_celery_beat.models import IntervalSchedule, PeriodicTask

    with transaction.atomic():
        interval, _ = IntervalSchedule.objects.get_or_create(
            every=every_minutes, period=IntervalSchedule.MINUTES
        )
        task, _ = PeriodicTask.objects.get_or_create(
            name=name,
            defaults={
                "task": task_name,
                "interval": interval,
                "queue": "default",
                "expire_seconds": every_minutes * 60,
                "description": description,
            },
        )
    return task


def ensure_lease_sweep():
    """The periodic lease sweep."""
    return _ensure_sweep(
        SWEEP_TASK_NAME,
        SWEEP_TASK,
        CHECK_EVERY_MINUTES,
        "Re-open assignments whose lease ran out (annotate.queue).",
    )


def ensure_recovery_sweeps() -> list:
    """The minutely sweeps that recover from a dead worker or a broker outage."""
    return [
        _ensure_sweep(
            CHUNK_SWEEP_NAME,
            CHUNK_SWEEP_TASK,
            1,
            "Queue again scoring chunks whose worker died (heartbeat older than "
            "STEPWISE_CHUNK_STALE_SECONDS; annotate.generations).",
        ),
        _ensure_sweep(
            OUTBOX_SWEEP_NAME,
            OUTBOX_SWEEP_TASK,
            1,
            "Send the tasks queued while the broker was unreachable (annotate.dispatch).",
        ),
    ]


def create_default_schedules(sender, using: str = "default", **kwargs) -> None:
    """post_migrate handler: the default rows, once django_celery_beat's tables exist."""
    from django.db import connections

    tables = connections[using].introspection.table_names()
    if "django_celery_beat_periodictask" not in tables:
        return
    ensure_default_schedules()
    ensure_lease_sweep()
    ensure_recovery_sweeps()
