"""The database connection is cut in the middle of rating (a proxy between gunicorn and
PostgreSQL drops every connection and refuses new ones for a while).

Labelers get a clear retryable answer (503, Retry-After, a message) and never a 500; once the
connection is back the same gunicorn workers serve again (no restart); every rating the
clients saw acknowledged is stored, and nothing is stored that was never sent.
"""

from __future__ import annotations

import pytest

from annotate.models import Assignment
from config.unavailable import MESSAGE
from tests.faults.harness import (
    BROKER,
    SERVICES,
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
from tests.workers.pipeline.test_pipeline_worker import database_url

pytestmark = SERVICES
NAMES = ["ada", "ben", "cy"]


@pytest.mark.django_db(transaction=True)
def test_a_cut_database_connection_answers_503_and_loses_no_acknowledged_rating(
    campaign, db_proxy, web_server
):
    generation = labeling_world(campaign, NAMES, n_samples=300)
    server = web_server(through(database_url(), db_proxy), BROKER, threads=4)
    workers = server.workers()
    labelers, stop, threads = start_labelers(server.base, NAMES, [1, 1, 0, 1])

    def acks() -> int:
        return len(acked(labelers))

    wait_until(lambda: acks() >= 12, 60, "ratings before the cut", server.log)
    db_proxy.cut()
    wait_until(
        lambda: all(len(lab.out.refusals) >= 3 for lab in labelers),
        30,
        "refused requests while the database is unreachable",
        server.log,
    )
    during = acks()
    db_proxy.restore()
    wait_until(lambda: acks() >= during + 12, 60, "ratings after the cut", server.log)
    stop_labelers(stop, threads)

    statuses = [status for status, _, _ in refusals(labelers)]
    # Clear and retryable: 503 with Retry-After and the message, never a 500 (409 only for a
    # retried last rating whose first answer was lost after it was stored).
    assert set(statuses) <= {503, 409}, statuses
    unavailable = [(after, body) for status, after, body in refusals(labelers) if status == 503]
    assert len(unavailable) >= 3 * len(NAMES)
    assert set(unavailable) == {("5", MESSAGE)}
    assert sum(lab.out.transport_errors for lab in labelers) == 0
    # Recovered without a restart: the same worker processes answered after the cut.
    assert server.workers() == workers
    assert db_proxy.refused > 0  # the cut really refused connections

    stored = stored_ratings(Assignment.objects.filter(generation=generation))
    acknowledged = acked(labelers)
    assert acknowledged <= stored, f"lost: {sorted(acknowledged - stored)}"
    assert stored <= attempted(labelers), "stored a rating nobody sent"
    slowest = max(lab.out.slowest_s for lab in labelers)
    print(f"acknowledged {len(acknowledged)}, stored {len(stored)}, refused {len(statuses)}")
    print(f"slowest answer: {slowest:.2f} s")
