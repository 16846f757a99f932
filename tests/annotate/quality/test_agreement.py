"""Agreement with gold on hand-made fixtures (pure functions, no database)."""

import pytest

from annotate.quality import Agreement, agreement, compare, outcome
from selector.ratings import first_error


def test_first_error_is_the_first_minus_one():
    assert first_error([1, 0, -1]) == 2
    assert first_error([1, 1, 1]) is None
    assert first_error([]) is None
    assert first_error([-1, -1]) == 0


def test_outcome_separates_no_error_from_abandoned():
    assert outcome([1, 0, -1], "found_error") == 2
    assert outcome([1, 1], "solution") is None
    assert outcome([1], "give_up") == "give_up"
    assert outcome([], "bad_problem") == "bad_problem"


def test_same_first_error_agrees_and_steps_compared_up_to_it():
    result = compare([1, 0, -1], "found_error", [1, 1, -1], "found_error")
    assert result == Agreement(items=1, first_error_agree=1, steps_compared=3, steps_agree=2)


def test_both_without_error_agree():
    result = compare([1, 1, 0], "solution", [1, 1, 1], "solution")
    assert result.first_error_agree == 1
    assert (result.steps_compared, result.steps_agree) == (3, 2)


def test_earlier_labeler_error_limits_the_steps_compared():
    # Labeler stops at step 1, gold's error is at step 3: compare steps 0 and 1 only.
    result = compare([1, -1], "found_error", [1, 1, 0, -1], "found_error")
    assert result == Agreement(items=1, first_error_agree=0, steps_compared=2, steps_agree=1)


def test_earlier_gold_error_limits_the_steps_compared():
    # Labeler missed gold's error at step 1 and went on to the end.
    result = compare([1, 1, 1, 1], "solution", [1, -1], "found_error")
    assert result == Agreement(items=1, first_error_agree=0, steps_compared=2, steps_agree=1)


def test_giving_up_on_a_correct_solution_is_not_agreement():
    result = compare([1], "give_up", [1, 1, 1], "solution")
    assert result.first_error_agree == 0
    assert (result.steps_compared, result.steps_agree) == (1, 1)


def test_give_ups_are_counted_apart_from_disagreements():
    gave_up = compare([1], "give_up", [1, -1], "found_error")
    bad = compare([], "bad_problem", [1, 1], "solution")
    wrong = compare([-1], "found_error", [1, -1], "found_error")
    total = gave_up + bad + wrong
    assert (total.items, total.first_error_agree, total.abandoned) == (3, 0, 2)
    assert total.disagreements == 1
    # Abandoning an item gold abandoned too is agreement, not a give-up.
    same = compare([], "bad_problem", [], "bad_problem")
    assert (same.first_error_agree, same.abandoned, same.disagreements) == (1, 0, 0)


def test_unrated_steps_are_skipped():
    result = compare([1, None, -1], "found_error", [1, 0, -1], "found_error")
    assert (result.steps_compared, result.steps_agree) == (2, 2)


def test_sum_over_items_and_rates():
    total = agreement(
        [
            ([1, -1], "found_error", [1, -1], "found_error"),  # agree, 2/2 steps
            ([1, 1], "solution", [-1], "found_error"),  # disagree, 0/1 step
            ([0, 0, 0], "solution", [1, 1, 1], "solution"),  # agree, 0/3 steps
            ([1], "give_up", [1, 1], "solution"),  # gave up (not agreement), 1/1 step
        ]
    )
    assert total == Agreement(
        items=4, first_error_agree=2, steps_compared=7, steps_agree=3, abandoned=1
    )
    assert total.disagreements == 1  # give-ups are reported apart
    assert total.first_error_rate == pytest.approx(0.5)
    assert total.step_rate == pytest.approx(3 / 7)
    assert total.score == total.first_error_rate


def test_empty_agreement_has_no_rate():
    assert Agreement().first_error_rate is None
    assert Agreement().step_rate is None
    assert Agreement() + Agreement(items=1, first_error_agree=1) == Agreement(1, 1, 0, 0)
