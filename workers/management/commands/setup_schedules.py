"""Create the retraining loop's default beat schedule (also done after every `migrate`).

    setup_schedules [--every-seconds N]

Creates "stepwise: check retraining" (workers.loop_tasks.check_retraining, every 5 minutes),
"stepwise: expire stale leases" (workers.tasks.expire_stale_leases, every 5 minutes) and the
minutely recovery sweeps (stale scoring chunks, queued tasks; annotate.schedules) when
missing; an existing row, with a lead's edits, is left as it is.
"""

from annotate.management.command import StepwiseCommand
from annotate.schedules import (
    ensure_default_schedules,
    ensure_lease_sweep,
    ensure_recovery_sweeps,
)


class Command(StepwiseCommand):
    help = "Create the default periodic tasks (editable under Periodic tasks)."
    runtime = (
        "A run takes a few seconds, nearly all of it Django's start-up (4–6 s measured on 2 "
        "shared cores)."
    )

    def add_arguments(self, parser):
        parser.add_argument("--every-seconds", type=int, help="Interval of a new row.")

    def handle(self, *args, every_seconds: int | None = None, **options):
        tasks = [ensure_default_schedules(every_seconds=every_seconds), ensure_lease_sweep()]
        for task in tasks + ensure_recovery_sweeps():
            state = "enabled" if task.enabled else "disabled"
            self.stdout.write(
                f"Periodic task “{task.name}” ({task.task}): {task.schedule}, {state}."
            )
