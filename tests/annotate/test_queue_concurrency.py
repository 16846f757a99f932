"""The queue under concurrency, on real PostgreSQL row locks (SKIP LOCKED).

Eight threads, each its own labeler and database connection, claim and finish work at once.
"""

import threading
from collections import Counter
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.utils import timezone

from annotate.models import Assignment, Campaign, Label
from annotate.queue import next_assignment
from tests.factories import (
    make_generation,
    make_sample,
    open_slots,
)

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        connection.vendor != "postgresql",
        reason="row locks need PostgreSQL: set DATABASE_URL=postgres://… (CI does)",
    ),
]

THREADS = 8
CLAIMS = 50


def _run_threads(users, work):
    """Run `work(user)` in one thread per user, started together; re-raise any failure."""
    barrier = threading.Barrier(len(users))
    errors = []

    def body(user):
        try:
            barrier.wait()
            work(user)
        except BaseException as error:  # surfaced in the main thread below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=body, args=(u,)) for u in users]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not any(t.is_alive() for t in threads), "a claiming thread hung"
    if errors:
        raise errors[0]


def _labelers(campaign, prefix, n=THREADS):
    users = [get_user_model().objects.create_user(f"{prefix}{i}") for i in range(n)]
    campaign.labelers.add(*users)
    return users


def test_eight_threads_fifty_claims_each_hand_out_nothing_twice():
    campaign = Campaign.objects.create(slug="concurrency", overlap=2)
    samples = [make_sample(campaign) for _ in range(250)]
    slots = open_slots(make_generation(campaign), samples, overlap=campaign.overlap)
    users = _labelers(campaign, "worker")
    claims = []  # (user id, assignment id, sample id), appended from threads
    lock = threading.Lock()

    def work(user):
        for _ in range(CLAIMS):
            assignment = next_assignment(user)
            assert assignment is not None, "queue ran dry while work was left"
            with lock:
                claims.append((user.pk, assignment.pk, assignment.sample_id))
            Label.objects.get(assignment=assignment).finish("give_up")

    _run_threads(users, work)

    assert len(claims) == THREADS * CLAIMS
    # No assignment handed out twice, no labeler given the same sample twice.
    assert len({c[1] for c in claims}) == len(claims)
    assert len({(c[0], c[2]) for c in claims}) == len(claims)
    # No sample to more labelers than the overlap asks for.
    assert max(Counter(c[2] for c in claims).values()) <= campaign.overlap
    # Nothing lost: every slot is either finished by whoever claimed it or still open.
    assert Assignment.objects.count() == len(slots)
    rows = {a.pk: a for a in Assignment.objects.all()}
    for user_id, assignment_id, _sample in claims:
        row = rows[assignment_id]
        assert (row.labeler_id, row.state) == (user_id, Assignment.State.SUBMITTED)
    unclaimed = [a for a in rows.values() if a.labeler_id is None]
    assert len(unclaimed) == len(slots) - len(claims)
    assert all(a.state == Assignment.State.OPEN for a in unclaimed)
    finished = Label.objects.filter(finish_reason="give_up")
    assert finished.count() == len(claims)
    assert set(finished.values_list("assignment_id", flat=True)) == {c[1] for c in claims}


def test_expired_leases_come_back_under_concurrent_claims():
    campaign = Campaign.objects.create(slug="expiry", overlap=1)
    samples = [make_sample(campaign) for _ in range(THREADS)]
    open_slots(make_generation(campaign), samples)
    first = _labelers(campaign, "first")
    held = {}

    def grab(user):
        assignment = next_assignment(user)
        Label.objects.get(assignment=assignment).rate(0, 1)
        held[user.pk] = assignment.pk

    _run_threads(first, grab)
    assert len(set(held.values())) == THREADS
    # Nobody acts on these leases: they just run out.
    Assignment.objects.filter(pk__in=held.values()).update(
        lease_expires_at=timezone.now() - timedelta(seconds=1)
    )
    second = _labelers(campaign, "second")
    taken = {}

    def take(user):
        assignment = next_assignment(user)
        assert assignment is not None, "an expired lease did not come back"
        taken[user.pk] = (assignment.pk, assignment.sample_id)

    _run_threads(second, take)

    assert sorted(s for _, s in taken.values()) == sorted(s.pk for s in samples)
    old = Assignment.objects.filter(pk__in=held.values())
    assert set(old.values_list("state", flat=True)) == {Assignment.State.EXPIRED}
    for assignment in old:  # the first labelers' partial labels are kept
        label = Label.objects.get(assignment=assignment)
        assert list(label.ratings.values_list("step", "rating")) == [(0, 1)]
    new = Assignment.objects.filter(pk__in=[a for a, _ in taken.values()])
    assert set(new.values_list("state", flat=True)) == {Assignment.State.IN_PROGRESS}
    assert Assignment.objects.count() == 2 * THREADS
    assert not Assignment.objects.unclaimed().exists()
    # The first labelers' leases are gone and every sample is held by someone else now.
    assert next_assignment(first[0]) is None
