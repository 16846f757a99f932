"""Undo undoes the last action, whatever it was, while the labeler holds the lease: a rating,
a flag, or the action that finished the task (which re-opens it)."""

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.models import Assignment, Label
from annotate.models.label_steps import TaskClosed, UndoTooLate
from tests.factories import make_task, stored_ratings

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(labeler, campaign):
    return make_task(labeler, campaign)  # four steps


def _fresh(label: Label) -> Label:
    return Label.objects.select_related("assignment", "sample__campaign").get(pk=label.pk)


def test_undo_a_rating_and_a_flag_in_the_order_they_were_made(task):
    _, label = task
    label.flag(0)
    label.rate(0, 1)
    label.undo_last()
    assert stored_ratings(label) == {0: (None, True)}  # the rating went, the flag stayed
    label.undo_last()
    assert stored_ratings(label) == {}


def test_undo_the_minus_one_that_finished_the_task(task):
    assignment, label = task
    label.rate(0, 1)
    label.rate(1, 1)
    label.rate(2, 0)
    result = label.rate(1, -1)  # changing an earlier rating to −1 clears the later ones
    assert result.finish_reason == "found_error" and result.cleared == (2,)
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.SUBMITTED
    assert _fresh(label).snapshot().can_undo

    result = label.undo_last()
    assert result.reopened and (result.step, result.rating) == (1, -1)
    label = _fresh(label)
    assert label.finish_reason is None and label.finished_at is None
    assert stored_ratings(label) == {0: (1, False), 1: (1, False), 2: (0, False)}
    assignment.refresh_from_db()
    assert (assignment.state, assignment.submitted_at) == (Assignment.State.IN_PROGRESS, None)
    snap = label.snapshot()
    assert snap.editable and snap.current == 3
    label.rate(3, 1)  # and it can be finished again
    assert _fresh(label).finish_reason == "solution"


@pytest.mark.parametrize("reason", ["give_up", "bad_problem"])
def test_undo_give_up_and_bad_problem(task, reason):
    assignment, label = task
    label.rate(0, 1)
    label.finish(reason)
    label.undo_last()
    label = _fresh(label)
    assert label.finish_reason is None
    assert stored_ratings(label) == {0: (1, False)}
    assignment.refresh_from_db()
    assert assignment.state == Assignment.State.IN_PROGRESS


def test_a_finished_task_cannot_be_reopened_once_the_lease_ran_out(task):
    assignment, label = task
    label.rate(0, -1)
    later = assignment.lease_expires_at + timedelta(seconds=1)
    label = _fresh(label)
    assert not label.can_reopen(later)
    with pytest.raises(UndoTooLate):
        label.undo_last(now=later)
    assert _fresh(label).finish_reason == "found_error"
    assert stored_ratings(label) == {0: (-1, False)}


def test_a_finished_task_is_not_reopened_while_the_labeler_holds_another(task, labeler, campaign):
    _, label = task
    label.rate(0, -1)
    make_task(labeler, campaign)  # the next task, claimed
    with pytest.raises(UndoTooLate):
        _fresh(label).undo_last()
    assert _fresh(label).finish_reason == "found_error"


def test_undo_of_a_finishing_rating_is_its_only_reopening(task):
    _, label = task
    label.rate(0, 1)
    label.flag(1)
    label.rate(1, -1)
    label.undo_last()  # re-opens: step 1 is flagged and unrated again
    assert stored_ratings(label) == {0: (1, False), 1: (None, True)}
    label.finish("give_up")
    label.undo_last()
    label.undo_last()  # the flag
    assert stored_ratings(label) == {0: (1, False)}
    label.rate(1, -1)
    with pytest.raises(TaskClosed):
        label.rate(1, 1)  # finished again: read-only until undone


def test_undo_log_is_bounded(task):
    from annotate.models.label import UNDO_DEPTH

    _, label = task
    for _ in range(UNDO_DEPTH + 5):
        label.flag(0)
    assert len(_fresh(label).undo_log) == UNDO_DEPTH


def test_the_finished_page_offers_undo_and_u_reopens_it(client, labeler, task):
    assignment, label = task
    label.rate(0, -1)
    client.force_login(labeler)
    page = client.get(reverse("task", args=[assignment.pk])).content.decode()
    assert 'data-action="undo-finish"' in page
    response = client.post(reverse("task-undo", args=[assignment.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="task"' in html and "data-finished" not in html  # the whole task, re-opened
    assert 'data-editable="true"' in html
    assert _fresh(label).finish_reason is None


def test_no_undo_offered_after_the_lease(client, labeler, task):
    assignment, label = task
    label.rate(0, -1)
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() - timedelta(minutes=1)
    )
    client.force_login(labeler)
    page = client.get(reverse("task", args=[assignment.pk])).content.decode()
    assert 'data-action="undo-finish"' not in page
    response = client.post(reverse("task-undo", args=[assignment.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 409
    assert "can no longer be re-opened" in response.content.decode()
