"""Labeling under load: query budgets, small answers to ratings, gold kept out of regular work.

Query counts are what Django records for one request through the test client: the session
and user reads, then the view's statements, with its transaction's BEGIN/COMMIT (or, inside a
test's transaction, SAVEPOINT/RELEASE) counted too.
"""

import re
import threading
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from annotate import queue
from annotate.models import Assignment, GoldStandard, Label
from annotate.models.label import LEASE_RENEWAL_STEP
from tests.factories import (
    make_generation,
    make_sample,
    make_task,
    open_slots,
    stored_ratings,
)

pytestmark = pytest.mark.django_db

RATING_QUERIES = 8  # session, user, begin, lock+load, ratings, write, label, commit
CLAIM_QUERIES = 8  # session, user, begin, lock+campaigns, queue head, claim, label, commit
TASK_PAGE_QUERIES = 4  # session, user, label+assignment+sample+problem+campaign, ratings
LONG = [f"Step {i}: $x_{i} = {i}$." for i in range(12)]


@pytest.fixture
def member(labeler, campaign):
    campaign.labelers.add(labeler)
    return labeler


@pytest.fixture
def client_for(labeler):
    client = Client()
    client.force_login(labeler)
    return client


def _version(html: str) -> str:
    return re.search(r'id="task-bar" data-version="(\d*)"', html).group(1)


def _rate(client, assignment, step, rating, seen=None):
    data = {"step": str(step), "rating": str(rating), "elapsed_ms": "900"}
    if seen is not None:
        data["seen"] = seen
    return client.post(reverse("task-rate", args=[assignment.pk]), data, HTTP_HX_REQUEST="true")


def _rows(html: str) -> list[int]:
    """The step rows in an answer, by index."""
    return [int(i) for i in re.findall(r'<li class="step[^"]*" id="step-(\d+)"', html)]


# --- query budgets ------------------------------------------------------------------------


def test_a_rating_stays_within_its_query_budget(
    client_for, labeler, campaign, django_assert_max_num_queries
):
    assignment, _ = make_task(labeler, campaign, steps=LONG)
    seen = _version(client_for.get(reverse("task", args=[assignment.pk])).content.decode())
    for step in range(3):
        with django_assert_max_num_queries(RATING_QUERIES):
            response = _rate(client_for, assignment, step, 1, seen)
        assert response.status_code == 200
        seen = _version(response.content.decode())
    # The rating that ends the task also closes the assignment: one write more.
    for step in range(3, len(LONG) - 1):
        seen = _version(_rate(client_for, assignment, step, 0, seen).content.decode())
    with django_assert_max_num_queries(RATING_QUERIES + 1):
        assert _rate(client_for, assignment, len(LONG) - 1, 1, seen).status_code == 200
    label = Label.objects.get(assignment=assignment)
    assert label.finish_reason == "solution"
    assert stored_ratings(label) == {
        i: (1 if i < 3 or i == len(LONG) - 1 else 0, False) for i in range(len(LONG))
    }


def test_a_claim_stays_within_its_query_budget(
    client_for, member, campaign, django_assert_max_num_queries
):
    generation = make_generation(campaign)
    slots = open_slots(generation, [make_sample(campaign) for _ in range(3)])
    with django_assert_max_num_queries(CLAIM_QUERIES):
        response = client_for.post(reverse("labeling-next"))
    assert response["Location"] == reverse("task", args=[slots[0].pk])
    claimed = Assignment.objects.get(pk=slots[0].pk)
    assert (claimed.labeler, claimed.state) == (member, Assignment.State.IN_PROGRESS)
    assert Label.objects.filter(assignment=claimed, labeler=member).exists()
    # Coming back to the queue resumes the live task, also within budget.
    with django_assert_max_num_queries(CLAIM_QUERIES):
        again = client_for.post(reverse("labeling-next"))
    assert again["Location"] == response["Location"]
    assert Assignment.objects.filter(labeler=member).count() == 1


def test_the_task_page_stays_within_its_query_budget(
    client_for, labeler, campaign, django_assert_max_num_queries
):
    assignment, label = make_task(labeler, campaign, steps=LONG)
    label.rate(0, 1)
    with django_assert_max_num_queries(TASK_PAGE_QUERIES):
        page = client_for.get(reverse("task", args=[assignment.pk]))
    assert page.status_code == 200
    assert len(_rows(page.content.decode())) == len(LONG)


# --- what a rating answers ------------------------------------------------------------------


def test_a_rating_answers_with_only_the_rows_it_changed(client_for, labeler, campaign):
    assignment, _ = make_task(labeler, campaign, steps=LONG)
    seen = _version(client_for.get(reverse("task", args=[assignment.pk])).content.decode())

    response = _rate(client_for, assignment, 0, 1, seen)

    assert response.status_code == 200
    assert response["HX-Reswap"] == "none"  # nothing replaced but the out-of-band parts
    html = response.content.decode()
    assert _rows(html) == [0, 1]  # the rated row and the new current one
    assert html.count('hx-swap-oob="true"') == 4  # bar, notices, two rows
    assert re.search(r'data-step="0"(?:(?!</li>).)*data-rating="1" aria-pressed="true"', html, re.S)
    assert re.search(r'id="step-1"[^>]*data-current', html)
    assert "Step <strong>2</strong> of 12" in html
    assert 'data-action="undo"' in html and "disabled>Undo" not in html
    label = Label.objects.get(assignment=assignment)
    assert _version(html) == label.version != seen  # the bar carries the saved version
    assert stored_ratings(label) == {0: (1, False)}
    # Re-rating an earlier step changes that row only.
    again = _rate(client_for, assignment, 1, 1, label.version)
    changed = _rate(client_for, assignment, 0, 0, _version(again.content.decode()))
    assert _rows(changed.content.decode()) == [0]
    assert stored_ratings(label) == {0: (0, False), 1: (1, False)}


def test_an_out_of_date_page_gets_the_whole_task(client_for, labeler, campaign):
    """A second tab (or no `seen` at all) must not patch rows onto a page that is behind."""
    assignment, _ = make_task(labeler, campaign, steps=LONG)
    stale = _version(client_for.get(reverse("task", args=[assignment.pk])).content.decode())
    _rate(client_for, assignment, 0, 1, stale)
    _rate(client_for, assignment, 1, 1)  # no `seen`: whole fragment
    response = _rate(client_for, assignment, 0, 0, stale)
    assert not response.has_header("HX-Reswap")
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="task"')
    assert _rows(html) == list(range(len(LONG)))
    assert re.search(r'id="step-2"[^>]*data-current', html)
    assert html.count('aria-pressed="true"') == 2


def test_errors_and_finishing_answer_with_the_whole_task(client_for, labeler, campaign):
    assignment, _ = make_task(labeler, campaign)
    seen = _version(client_for.get(reverse("task", args=[assignment.pk])).content.decode())
    refused = _rate(client_for, assignment, 2, 1, seen)
    assert refused.status_code == 409
    assert refused.content.decode().lstrip().startswith('<section id="task"')
    assert "Rate step 1 first." in refused.content.decode()
    seen = _version(refused.content.decode())
    ok = _rate(client_for, assignment, 0, 1, seen)
    assert ok["HX-Reswap"] == "none"
    assert "Rate step 1 first." not in ok.content.decode()  # the old notice is cleared
    finished = _rate(client_for, assignment, 1, -1, _version(ok.content.decode()))
    html = finished.content.decode()
    assert html.lstrip().startswith('<section id="task"') and "data-finished" in html
    assert 'data-action="next"' in html


def test_another_labelers_task_is_still_404_for_actions(campaign, labeler, other_labeler):
    assignment, _ = make_task(labeler, campaign)
    client = Client()
    client.force_login(other_labeler)
    assert _rate(client, assignment, 0, 1).status_code == 404
    heartbeat = reverse("task-heartbeat", args=[assignment.pk])
    assert client.post(heartbeat, {"elapsed_ms": "500"}).status_code == 404
    assert stored_ratings(Label.objects.get(assignment=assignment)) == {}


def test_an_action_creates_a_missing_label_first(client_for, labeler, campaign):
    generation = make_generation(campaign)
    assignment = Assignment.objects.create(
        generation=generation,
        sample=make_sample(campaign),
        labeler=labeler,
        state=Assignment.State.IN_PROGRESS,
        lease_expires_at=timezone.now() + timedelta(minutes=30),
    )
    assert _rate(client_for, assignment, 0, 1).status_code == 200
    label = Label.objects.get(assignment=assignment)
    assert (label.labeler, label.prm800k_generation, stored_ratings(label)) == (
        labeler,
        generation.number,
        {0: (1, False)},
    )


# --- rules kept while cutting queries --------------------------------------------------------


def test_leases_renew_once_they_have_run_down_a_step(labeler, campaign):
    assignment, label = make_task(labeler, campaign)
    start = timezone.now()
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=start + timedelta(minutes=1)
    )
    label.rate(0, 1, now=start)
    first = Assignment.objects.get(pk=assignment.pk).lease_expires_at
    assert first == start + timedelta(minutes=campaign.lease_minutes)
    # A rating moments later leaves the (nearly full) lease as it is: no write.
    label.rate(1, 1, now=start + timedelta(seconds=5))
    assert Assignment.objects.get(pk=assignment.pk).lease_expires_at == first
    later = start + LEASE_RENEWAL_STEP
    label.heartbeat(0, now=later)
    renewed = Assignment.objects.get(pk=assignment.pk).lease_expires_at
    assert renewed == later + timedelta(minutes=campaign.lease_minutes)


def test_open_for_matches_for_assignment(labeler, campaign):
    generation = make_generation(campaign)
    kinds = [Assignment.Kind.REGULAR, Assignment.Kind.QUALITY_CONTROL, Assignment.Kind.SCREENING]
    made = []
    for kind in kinds:
        assignment = Assignment.objects.create(
            generation=None if kind == Assignment.Kind.SCREENING else generation,
            sample=make_sample(campaign),
            labeler=labeler,
            kind=kind,
            state=Assignment.State.IN_PROGRESS,
        )
        Label.open_for(assignment)
        Label.open_for(assignment)  # idempotent: the second does nothing
        made.append(assignment)
    fields = (
        "sample_id",
        "labeler_id",
        "prm800k_generation",
        "is_quality_control",
        "is_initial_screening",
    )
    opened = [tuple(getattr(Label.objects.get(assignment=a), f) for f in fields) for a in made]
    Label.objects.all().delete()
    expected = [tuple(getattr(Label.for_assignment(a), f) for f in fields) for a in made]
    assert opened == expected
    assert [o[2] for o in opened] == [generation.number, generation.number, -1]


def test_an_error_inside_a_locked_block_rolls_it_all_back(labeler, campaign):
    assignment, label = make_task(labeler, campaign)
    with pytest.raises(Exception) as raised, Label.locked(assignment.pk, labeler.pk) as held:
        held.rate(0, 1)
        held.rate(2, 1)  # out of order: refused
    assert raised.type.__name__ == "StepOutOfOrder"
    assert stored_ratings(label) == {}
    with pytest.raises(Label.DoesNotExist), Label.locked(assignment.pk, labeler.pk + 1000):
        pass


# --- the queue ------------------------------------------------------------------------------


def test_gold_samples_are_never_regular_work(member, campaign):
    generation = make_generation(campaign)
    qc_gold, screening_gold, plain = (make_sample(campaign) for _ in range(3))
    GoldStandard.objects.create(
        sample=qc_gold, purpose="qc", ratings=[1, 1, 1, 1], finish_reason="solution"
    )
    GoldStandard.objects.create(
        sample=screening_gold, purpose="screening", ratings=[-1], finish_reason="found_error"
    )
    # A selection put the gold samples in the generation as ordinary slots, ahead of the rest.
    open_slots(generation, [qc_gold, screening_gold, plain])

    assert queue.available_count(member) == 1
    got = queue.next_assignment(member)
    assert got.sample_id == plain.pk and got.kind == Assignment.Kind.REGULAR
    Label.objects.get(assignment=got).finish("give_up")
    assert queue.next_assignment(member) is None
    assert (
        not Assignment.objects.filter(sample__in=[qc_gold, screening_gold])
        .exclude(labeler__isnull=True)
        .exists()
    )


def test_gold_still_comes_as_qc_while_regular_work_remains(member, campaign):
    campaign.qc_rate = 1.0
    campaign.save()
    generation = make_generation(campaign)
    gold = make_sample(campaign)
    GoldStandard.objects.create(
        sample=gold, purpose="qc", ratings=[1, 1, 1, 1], finish_reason="solution"
    )
    open_slots(generation, [gold, make_sample(campaign)])
    got = queue.next_assignment(member)
    assert (got.sample_id, got.kind) == (gold.pk, Assignment.Kind.QUALITY_CONTROL)
    assert Label.objects.get(assignment=got).is_quality_control


def test_the_queue_walks_open_generations_newest_first(member, campaign):
    old = make_generation(campaign, 0)
    new = make_generation(campaign, 1)
    old_slot = open_slots(old, [make_sample(campaign)])[0]
    new_slots = open_slots(new, [make_sample(campaign), make_sample(campaign)])
    order = []
    for _ in range(3):
        got = queue.next_assignment(member)
        order.append(got.pk)
        Label.objects.get(assignment=got).finish("give_up")
    assert order == [new_slots[0].pk, new_slots[1].pk, old_slot.pk]
    assert queue.next_assignment(member) is None


def test_a_claim_that_believed_the_user_idle_gives_the_held_task(member, campaign, monkeypatch):
    """The first query's snapshot can predate another tab's claim: the claim's own write
    notices, rolls back, and the user gets the task they already hold, not a second one."""
    generation = make_generation(campaign)
    slots = open_slots(generation, [make_sample(campaign) for _ in range(2)])
    held = queue.next_assignment(member)
    real = queue._lock_user_and_list_campaigns
    calls = []

    def out_of_date(user, only, now):
        campaigns, busy = real(user, only, now)
        calls.append(busy)
        return campaigns, (False if len(calls) == 1 else busy)  # first look: "idle"

    monkeypatch.setattr(queue, "_lock_user_and_list_campaigns", out_of_date)
    again = queue.next_assignment(member)
    assert again.pk == held.pk == slots[0].pk
    assert calls == [True, True]  # retried once, with a fresh look
    assert Assignment.objects.get(pk=slots[1].pk).labeler is None
    assert not Label.objects.filter(assignment_id=slots[1].pk).exists()


@pytest.mark.django_db(transaction=True)
@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="row locks need PostgreSQL: set DATABASE_URL=postgres://… (CI does)",
)
def test_many_tabs_of_one_labeler_get_one_task(campaign):
    user = get_user_model().objects.create_user("tabs")
    campaign.labelers.add(user)
    open_slots(make_generation(campaign), [make_sample(campaign) for _ in range(10)])
    tabs = 6
    barrier = threading.Barrier(tabs)
    got, errors = [], []

    def tab():
        try:
            barrier.wait()
            got.append(queue.next_assignment(user).pk)
        except BaseException as error:  # surfaced below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=tab) for _ in range(tabs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors[0]
    assert len(got) == tabs and len(set(got)) == 1
    assert Assignment.objects.filter(labeler=user).count() == 1
    assert Label.objects.filter(labeler=user).count() == 1
