"""The lease sweep runs on beat: a default periodic row, and the task re-opens lapsed slots."""

from datetime import timedelta

from django.core.management import call_command
from django.utils import timezone
from django_celery_beat.models import PeriodicTask

from annotate.models import Assignment
from annotate.schedules import SWEEP_TASK, ensure_lease_sweep
from tests.factories import make_generation, make_sample
from workers.tasks import expire_stale_leases


def test_setup_schedules_creates_the_sweep_once(db):
    call_command("setup_schedules")
    call_command("setup_schedules")
    rows = PeriodicTask.objects.filter(task=SWEEP_TASK)
    assert rows.count() == 1
    assert rows.get().queue == "default" and rows.get().enabled
    assert ensure_lease_sweep().pk == rows.get().pk


def test_sweep_task_reopens_a_lapsed_lease(campaign, labeler):
    lapsed = Assignment.objects.create(
        generation=make_generation(campaign),
        sample=make_sample(campaign),
        labeler=labeler,
        state="in_progress",
        lease_expires_at=timezone.now() - timedelta(minutes=1),
    )
    assert expire_stale_leases.apply().get() == 1
    lapsed.refresh_from_db()
    assert lapsed.state == "expired"
    assert Assignment.objects.unclaimed().get().sample_id == lapsed.sample_id
