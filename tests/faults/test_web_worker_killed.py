"""A gunicorn worker is SIGKILLed in the middle of a request: nothing is half-written.

The database connection goes through a proxy that holds the request's COMMIT (the rating's
writes are sent, not yet committed) while the test kills the worker; PostgreSQL then sees its
client vanish and rolls the transaction back. The rating, its label's state and the outbox
row of a found error are all absent, gunicorn's master starts a new worker, and the same
action sent again is stored once. Acknowledged and stored ratings are counted.
"""

from __future__ import annotations

import os
import signal
import threading

import pytest

from annotate.models import Assignment, Label, QueuedTask
from tests.factories import configure_generator
from tests.faults.harness import (
    BROKER,
    SERVICES,
    Labeler,
    labeling_world,
    stored_ratings,
    through,
    wait_until,
)
from tests.workers.pipeline.test_pipeline_worker import database_url, flush_broker

pytestmark = SERVICES


def killed_mid_commit(server, db_proxy, labeler: Labeler, task: int, step: int, rating: int):
    """Send the rating, hold its COMMIT at the proxy, SIGKILL the worker, let go."""
    db_proxy.hold_on(b"COMMIT")
    outcome: list[str] = []
    thread = threading.Thread(target=lambda: outcome.append(labeler.rate(task, step, rating)))
    thread.start()
    assert db_proxy.held.wait(60), "the rating never reached its COMMIT\n" + server.log()
    (worker,) = server.workers()
    os.kill(worker, signal.SIGKILL)
    thread.join(timeout=60)
    db_proxy.release()
    assert outcome == ["failed"], outcome  # the client got no answer
    wait_until(lambda: server.workers() not in ([], [worker]), 60, "a new worker", server.log)
    wait_until(server.answers, 60, "the new worker to answer", server.log)
    return worker


def label_state(task: int) -> tuple:
    """Everything a rating writes on its label besides the StepRating rows."""
    label = Label.objects.get(assignment_id=task)
    return (
        label.finish_reason,
        label.finished_at,
        label.version,
        label.undo_log,
        label.total_time_ms,
    )


@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_request_leaves_nothing_half_written(
    campaign, db_proxy, web_server, tmp_path
):
    flush_broker()
    # Alternatives wanted: a found error writes an outbox row in the same transaction.
    configure_generator(campaign, "http://127.0.0.1:9/v1", n=0, alternatives=2)
    labeling_world(campaign, ["ada"], n_samples=2)
    server = web_server(through(database_url(), db_proxy), BROKER, threads=1)
    labeler = Labeler(server.base, "ada")
    labeler.login()
    task = labeler.claim()
    assert labeler.rate(task, 0, 1) == "acked"
    before = label_state(task)

    first = killed_mid_commit(server, db_proxy, labeler, task, 1, 1)
    assert stored_ratings([task]) == {(task, 0, 1)}  # the killed rating is not there …
    assert label_state(task) == before  # … nor any of its label's bookkeeping

    killed_mid_commit(server, db_proxy, labeler, task, 1, -1)  # a found error this time
    assert stored_ratings([task]) == {(task, 0, 1)}
    assert label_state(task) == before
    assert Assignment.objects.get(pk=task).state == Assignment.State.IN_PROGRESS
    assert not QueuedTask.objects.exists()  # the outbox row rolled back with the rating
    assert first not in server.workers()

    # Sent again, the same actions are stored once and the task finishes.
    assert labeler.rate(task, 1, 1) == "acked"
    assert labeler.rate(task, 2, -1) == "acked"
    assert label_state(task)[0] == "found_error"
    acknowledged = {(task, 0, 1), (task, 1, 1), (task, 2, -1)}
    assert labeler.out.acked == acknowledged == stored_ratings([task])
    assert QueuedTask.objects.count() <= 1  # the found error's task: sent, or waiting
    print(f"acknowledged {len(acknowledged)}, stored {len(stored_ratings([task]))}")
    flush_broker()
