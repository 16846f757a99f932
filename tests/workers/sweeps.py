"""Real worker processes with celery beat, and beat's recovery sweeps tightened to a second:
what the stale-chunk and broker-outage tests run against."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from django_celery_beat.models import IntervalSchedule

from annotate.schedules import ensure_recovery_sweeps
from tests.workers.loop.test_loop_worker import LoopProcesses
from tests.workers.pipeline.test_pipeline_worker import flush_broker


@contextmanager
def beat_and_workers(tmp_path: Path, **env: str) -> Iterator[LoopProcesses]:
    """Workers and beat to start (`start`, `start_beat`), with `env` added; all stopped after."""
    flush_broker()
    processes = LoopProcesses(tmp_path)
    processes.env.update(env)
    try:
        yield processes
    finally:
        processes.stop_all()
        flush_broker()


def sweep_every_second(name: str) -> None:
    """The recovery sweep called `name` (annotate.schedules) runs every second, not minute."""
    for task in ensure_recovery_sweeps():
        if task.name == name:
            task.interval, _ = IntervalSchedule.objects.get_or_create(
                every=1, period=IntervalSchedule.SECONDS
            )
            task.expire_seconds = 2
            task.save()
