"""Redis is unreachable for the web server (a proxy between gunicorn and the broker refuses
every connection).

Labelers keep claiming and rating without a single error: the web path never needs the
broker. The tasks their labels wanted (alternatives to each found error, PRM800K phase 2)
wait in the outbox and are queued once the broker is back: beat's minutely sweep (here every
second) sends them, a real worker runs them, and every found_error label gets its
alternatives exactly once.
"""

from __future__ import annotations

import pytest

from annotate.models import Alternative, Assignment, Label, QueuedTask
from annotate.schedules import OUTBOX_SWEEP_NAME
from tests.factories import configure_generator
from tests.faults.harness import (
    BROKER,
    SERVICES,
    Labeler,
    acked,
    attempted,
    labeling_world,
    refusals,
    start_labelers,
    stop_labelers,
    stored_ratings,
    through,
    wait_until,
)
from tests.selector.generation.servers import FakeServer
from tests.workers.pipeline.test_pipeline_worker import database_url
from tests.workers.sweeps import beat_and_workers, sweep_every_second

pytestmark = SERVICES
NAMES = ["ada", "ben"]
RATINGS = [1, -1]  # every task ends found_error at step 1: alternatives wanted


@pytest.fixture
def processes(tmp_path):
    with beat_and_workers(tmp_path) as procs:
        yield procs


@pytest.fixture
def generator():
    server = FakeServer()
    yield server
    server.close()


def found_errors(generation) -> list[int]:
    labels = Label.objects.filter(assignment__generation=generation, finish_reason="found_error")
    return list(labels.values_list("pk", flat=True))


@pytest.mark.django_db(transaction=True)
def test_labelers_keep_working_without_the_broker_and_tasks_follow_when_it_is_back(
    campaign, broker_proxy, web_server, processes, generator
):
    configure_generator(campaign, generator.url, n=0, alternatives=2)
    generation = labeling_world(campaign, NAMES, n_samples=200)
    broker_proxy.cut()
    server = web_server(database_url(), through(BROKER, broker_proxy), threads=4)
    labelers, stop, threads = start_labelers(server.base, NAMES, RATINGS)
    wait_until(lambda: len(found_errors(generation)) >= 6, 90, "found errors", server.log)
    stop_labelers(stop, threads)

    # No request failed for the broker: every claim and rating was acknowledged.
    assert refusals(labelers) == []
    assert all(lab.out.transport_errors == 0 and lab.out.claims for lab in labelers)
    stored = stored_ratings(Assignment.objects.filter(generation=generation))
    assert acked(labelers) == stored == attempted(labelers)  # nothing lost, nothing refused
    labels = found_errors(generation)
    assert broker_proxy.refused > 0  # the web server did try the broker
    # Each found error's task waits in the outbox, once.
    queued = sorted(QueuedTask.objects.values_list("args", flat=True))
    assert queued == sorted([pk] for pk in labels)
    assert not Alternative.objects.exists() and not generator.requests

    broker_proxy.restore()
    sweep_every_second(OUTBOX_SWEEP_NAME)
    processes.start("worker")
    processes.start_beat("beat")
    wait_until(
        lambda: set(Alternative.objects.values_list("label_id", flat=True)) == set(labels),
        90,
        "the alternatives of every found error",
        lambda: processes.log("worker") + processes.log("beat"),
    )
    wait_until(lambda: not QueuedTask.objects.exists(), 30, "an empty outbox")
    # One generator request per label: each queued task ran once.
    assert len(generator.requests) == len(labels)
    slowest = max(lab.out.slowest_s for lab in labelers)
    print(f"acknowledged {len(acked(labelers))}, stored {len(stored)}, queued {len(labels)}")
    print(f"slowest answer while the broker was down: {slowest:.2f} s")


@pytest.mark.django_db(transaction=True)
def test_a_frozen_broker_costs_a_found_error_seconds_never_the_label(
    campaign, broker_proxy, web_server
):
    """Redis accepts connections but never answers (frozen, or a dead middlebox): the send
    gives up after the socket timeout, the labeler's rating is acknowledged, the task waits."""
    configure_generator(campaign, "http://127.0.0.1:9/v1", n=0, alternatives=2)
    labeling_world(campaign, ["ada"], n_samples=2)
    broker_proxy.stall()
    server = web_server(database_url(), through(BROKER, broker_proxy), threads=2)
    labeler = Labeler(server.base, "ada")
    labeler.login()
    task = labeler.claim()
    assert labeler.rate(task, 0, 1) == "acked"
    assert labeler.rate(task, 1, -1) == "acked"  # a found error: alternatives wanted
    assert broker_proxy.held.is_set()  # the server did try the frozen broker
    label = Label.objects.get(assignment_id=task)
    assert label.finish_reason == "found_error"
    assert list(QueuedTask.objects.values_list("args", flat=True)) == [[label.pk]]
    assert stored_ratings([task]) == labeler.out.acked == {(task, 0, 1), (task, 1, -1)}
    print(f"found error answered in {labeler.out.slowest_s:.1f} s with the broker frozen")
