"""The labeling rules on `Label` (PRM800K phase 2), without a browser."""

from datetime import timedelta

import pytest
from django.utils import timezone

from annotate.models import Assignment, Label
from annotate.models.label import MAX_TIME_DELTA_MS, TIME_SLACK_MS, bounded_time_ms
from annotate.models.label_steps import (
    InvalidFinishReason,
    InvalidRating,
    InvalidStep,
    LabelingError,
    LeaseLost,
    NothingToUndo,
    StepOutOfOrder,
    TaskClosed,
)
from tests.factories import (
    make_task,
    stored_ratings,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def task(labeler, campaign):
    return make_task(labeler, campaign)  # four steps


def test_steps_are_rated_in_order(task):
    _, label = task
    label.rate(0, 1)
    with pytest.raises(StepOutOfOrder, match="step 2"):
        label.rate(2, 1)
    label.rate(1, 0)
    assert stored_ratings(label) == {0: (1, False), 1: (0, False)}
    assert label.snapshot().current == 2


def test_minus_one_ends_the_task_as_found_error(task):
    assignment, label = task
    label.rate(0, 1)
    result = label.rate(1, -1)
    assert result.finish_reason == "found_error"
    label.refresh_from_db()
    assignment.refresh_from_db()
    assert label.finish_reason == "found_error"
    assert label.finished_at is not None
    assert assignment.state == Assignment.State.SUBMITTED
    assert assignment.submitted_at is not None
    snap = label.snapshot()
    assert [s.status for s in snap.steps] == ["positive", "negative", "after_error", "after_error"]
    assert not snap.editable and snap.error_step == 1


def test_last_step_non_negative_ends_as_solution(task):
    _, label = task
    for step, rating in enumerate([1, 0, 1]):
        assert label.rate(step, rating).finish_reason is None
    assert label.rate(3, 0).finish_reason == "solution"
    label.refresh_from_db()
    assert label.finish_reason == "solution"
    assert stored_ratings(label) == {0: (1, False), 1: (0, False), 2: (1, False), 3: (0, False)}


def test_finished_task_is_read_only(task):
    _, label = task
    label.rate(0, -1)
    for action in (
        lambda: label.rate(0, 1),
        lambda: label.flag(0),
        lambda: label.finish("give_up"),
    ):
        with pytest.raises(TaskClosed):
            action()
    assert stored_ratings(label) == {0: (-1, False)}
    assert Label.objects.get(pk=label.pk).finish_reason == "found_error"


def test_changing_an_earlier_rating_to_minus_one_clears_later_ones(task):
    _, label = task
    label.rate(0, 1)
    label.rate(1, 1)
    label.rate(2, 0)
    label.flag(3)  # a flag on the current step goes too: it comes after the error
    result = label.rate(1, -1)
    assert result.cleared == (2,)
    assert result.finish_reason == "found_error"
    assert stored_ratings(label) == {0: (1, False), 1: (-1, False)}


def test_other_changes_keep_later_ratings(task):
    _, label = task
    label.rate(0, 1)
    label.rate(1, 1)
    label.rate(2, 1)
    result = label.rate(0, 0)
    assert result.cleared == () and result.finish_reason is None
    assert stored_ratings(label) == {0: (0, False), 1: (1, False), 2: (1, False)}
    assert label.snapshot().current == 3


def test_flag_toggles_on_rated_and_current_steps_only(task):
    _, label = task
    label.rate(0, 1)
    assert label.flag(0).flagged is True
    assert label.flag(1).flagged is True  # the current, unrated step
    with pytest.raises(StepOutOfOrder):
        label.flag(2)
    assert stored_ratings(label) == {0: (1, True), 1: (None, True)}
    assert label.flag(1).flagged is False
    assert stored_ratings(label) == {0: (1, True)}  # an unflagged unrated step leaves no row
    assert label.flag(0, flagged=True).flagged is True  # explicit set is idempotent
    # Rating a flagged step keeps the flag.
    label.flag(1)
    label.rate(1, 0)
    assert stored_ratings(label)[1] == (0, True)


def test_undo_removes_the_last_action(task):
    _, label = task
    with pytest.raises(NothingToUndo):
        label.undo_last()
    label.rate(0, 1)
    label.rate(1, 0)
    label.flag(1)
    result = label.undo_last()  # the flag, the last action (not the rating before it)
    assert (result.step, result.rating, result.flagged) == (1, 0, True)
    assert stored_ratings(label) == {0: (1, False), 1: (0, False)}
    result = label.undo_last()
    assert (result.step, result.rating) == (1, 0)
    assert stored_ratings(label) == {0: (1, False)}
    assert label.snapshot().current == 1
    label.undo_last()
    assert stored_ratings(label) == {}
    assert label.snapshot().current == 0
    with pytest.raises(NothingToUndo):
        label.undo_last()


@pytest.mark.parametrize("reason", ["give_up", "bad_problem"])
def test_give_up_and_bad_problem_end_the_task_at_any_time(task, reason):
    assignment, label = task
    label.rate(0, 1)
    result = label.finish(reason)
    assert result.finish_reason == reason
    label.refresh_from_db()
    assignment.refresh_from_db()
    assert label.finish_reason == reason
    assert assignment.state == Assignment.State.SUBMITTED
    assert stored_ratings(label) == {0: (1, False)}  # ratings so far are kept


def test_finish_refuses_reasons_the_ratings_do_not_support(task):
    _, label = task
    with pytest.raises(InvalidFinishReason):
        label.finish("found_error")
    with pytest.raises(InvalidFinishReason):
        label.finish("solution")
    with pytest.raises(InvalidFinishReason):
        label.finish("done")
    assert Label.objects.get(pk=label.pk).finish_reason is None


@pytest.mark.parametrize("step", [-1, 4, None, "1", True])
def test_invalid_steps_are_refused(task, step):
    _, label = task
    with pytest.raises(InvalidStep):
        label.rate(step, 1)
    assert stored_ratings(label) == {}


@pytest.mark.parametrize("rating", [2, -2, None, "1", True])
def test_invalid_ratings_are_refused(task, rating):
    _, label = task
    with pytest.raises(InvalidRating):
        label.rate(0, rating)
    assert stored_ratings(label) == {}


def test_errors_share_a_base_with_a_message():
    error = StepOutOfOrder("Rate step 2 first.")
    assert isinstance(error, LabelingError) and error.message == "Rate step 2 first."
    assert isinstance(LeaseLost(), TaskClosed)
    assert "expired" in LeaseLost().message


def test_every_save_renews_the_lease(task):
    assignment, label = task
    Assignment.objects.filter(pk=assignment.pk).update(
        lease_expires_at=timezone.now() + timedelta(minutes=1)
    )
    now = timezone.now()
    label.rate(0, 1, now=now)
    assignment.refresh_from_db()
    assert assignment.lease_expires_at == now + timedelta(
        minutes=assignment.sample.campaign.lease_minutes
    )


def test_an_expired_assignment_refuses_saves_but_keeps_ratings(task):
    assignment, label = task
    label.rate(0, 1)
    Assignment.objects.filter(pk=assignment.pk).update(state=Assignment.State.EXPIRED)
    with pytest.raises(LeaseLost):
        label.rate(1, 1)
    assert stored_ratings(label) == {0: (1, False)}
    assert label.heartbeat(1000) == 0  # heartbeats on a closed task are ignored


def test_bounded_time_ms():
    assert bounded_time_ms(1500, since_last_save_ms=60_000) == 1500
    assert bounded_time_ms(-5, 60_000) == 0
    assert bounded_time_ms("abc", 60_000) == 0
    assert bounded_time_ms(None, 60_000) == 0
    assert bounded_time_ms("2500", 60_000) == 2500
    # Never more than the wall time since the last save, plus slack ...
    assert bounded_time_ms(3_600_000, 20_000) == 20_000 + TIME_SLACK_MS
    # ... and never more than the per-request cap, however long ago that was.
    assert bounded_time_ms(10**12, 10**9) == MAX_TIME_DELTA_MS


def test_active_time_accumulates_bounded_per_request(task):
    _, label = task
    start = Label.objects.get(pk=label.pk).updated_at
    label.rate(0, 1, elapsed_ms=4000, now=start + timedelta(seconds=30))
    assert Label.objects.get(pk=label.pk).total_time_ms == 4000
    # A client claiming hours in one request gets at most the wall time since the last save.
    saved = Label.objects.get(pk=label.pk).updated_at
    added = label.heartbeat(5 * 3_600_000, now=saved + timedelta(seconds=10))
    assert added == 10_000 + TIME_SLACK_MS
    assert Label.objects.get(pk=label.pk).total_time_ms == 4000 + added


def test_snapshot_marks_current_locked_and_rated_steps(task):
    _, label = task
    label.rate(0, 1)
    label.rate(1, 0)
    snap = label.snapshot()
    assert [s.status for s in snap.steps] == ["positive", "neutral", "current", "locked"]
    assert [s.can_rate for s in snap.steps] == [True, True, True, False]
    assert (snap.total, snap.rated, snap.current) == (4, 2, 2)
    assert snap.can_undo
    read_only = label.snapshot(read_only=True)
    assert not any(s.can_rate or s.can_flag for s in read_only.steps)
    assert read_only.current is None
