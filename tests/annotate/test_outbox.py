"""The outbox (annotate.dispatch): with a broker, a task is a QueuedTask row of the caller's
transaction, sent to Redis after the commit and deleted; rows a broker outage left behind are
sent by the flush. Against the real Redis (the outage itself: tests/faults/test_broker_cut.py)."""

from __future__ import annotations

import json

import pytest
import redis
from django.conf import settings
from django.db import transaction

from annotate import dispatch
from annotate.models import QueuedTask
from tests.factories import make_generation

BROKER = settings.CELERY_BROKER_URL

pytestmark = pytest.mark.skipif(
    not BROKER.startswith("redis://"),
    reason="needs a Redis broker: set CELERY_BROKER_URL=redis://… (CI does)",
)


@pytest.fixture
def broker():
    client = redis.Redis.from_url(BROKER)
    client.flushdb()
    yield client
    client.flushdb()


def queued(client, queue: str) -> list[tuple[str, str]]:
    """(task name, args repr) of the messages waiting in a Redis queue, oldest first."""
    messages = [json.loads(raw) for raw in reversed(client.lrange(queue, 0, -1))]
    return [(m["headers"]["task"], m["headers"]["argsrepr"]) for m in messages]


@pytest.mark.django_db
def test_a_task_is_an_outbox_row_until_the_commit_sends_it(
    campaign, broker, django_capture_on_commit_callbacks
):
    generation = make_generation(campaign, status="selecting")
    with django_capture_on_commit_callbacks(execute=False) as callbacks, transaction.atomic():
        dispatch.select_generation(generation.pk)
    row = QueuedTask.objects.get()
    assert (row.name, row.args, row.queue) == (
        dispatch.SELECT_GENERATION,
        [generation.pk],
        "default",
    )
    assert queued(broker, "default") == []  # nothing is sent before the commit
    for callback in callbacks:
        callback()
    assert queued(broker, "default") == [(dispatch.SELECT_GENERATION, f"({generation.pk},)")]
    assert not QueuedTask.objects.exists()


@pytest.mark.django_db
def test_the_flush_sends_what_an_outage_left_oldest_first(broker):
    for label_id in (7, 8, 9):
        QueuedTask.objects.create(
            name=dispatch.PROPOSE_ALTERNATIVES, args=[label_id], queue="default", attempts=2
        )
    assert dispatch.flush_queued_tasks() == 3
    assert queued(broker, "default") == [
        (dispatch.PROPOSE_ALTERNATIVES, f"({label_id},)") for label_id in (7, 8, 9)
    ]
    assert not QueuedTask.objects.exists()
    assert dispatch.flush_queued_tasks() == 0


@pytest.mark.django_db
def test_the_lead_reads_what_waits_in_the_outbox_and_cannot_edit_it(client, lead):
    from django.urls import reverse

    row = QueuedTask.objects.create(
        name=dispatch.SELECT_GENERATION, args=[7], queue="default", attempts=2,
        last_error="Error 111 connecting to 127.0.0.1:6379. Connection refused.",
    )  # fmt: skip
    client.force_login(lead)
    listing = client.get(reverse("admin:annotate_queuedtask_changelist")).content.decode()
    assert dispatch.SELECT_GENERATION in listing and "Connection refused" in listing
    assert client.get(reverse("admin:annotate_queuedtask_add")).status_code == 403
    url = reverse("admin:annotate_queuedtask_change", args=[row.pk])
    client.post(url, {"name": "other", "args": "[]", "queue": "gpu", "attempts": "0"})
    row.refresh_from_db()
    assert (row.name, row.queue) == (dispatch.SELECT_GENERATION, "default")
