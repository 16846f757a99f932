"""The screening gate, QC sampling at the campaign's rate, labels' flags, gold marking."""

import random

import pytest
from django.core.exceptions import ValidationError

from annotate import quality
from annotate.models import Assignment, Generation, GoldStandard, Label, Sample, ScreeningResult
from tests.factories import finish

SCREENING = GoldStandard.Purpose.SCREENING
QC = GoldStandard.Purpose.QUALITY_CONTROL


@pytest.fixture
def screening_set(campaign, make_gold):
    campaign.screening_required = True
    campaign.screening_pass_mark = 0.75
    campaign.save()
    return [
        make_gold(SCREENING, [1, -1], "found_error"),
        make_gold(SCREENING, [1, 1, 1], "solution"),
        make_gold(SCREENING, [0, 1, -1], "found_error"),
        make_gold(SCREENING, [-1], "found_error"),
    ]


def _answer_screening(user, campaign, answers):
    """Take and finish screening items in order; `answers` maps gold ratings to a reply."""
    served = []
    for _ in range(len(answers)):
        assignment = quality.next_screening_item(user, campaign)
        assert assignment is not None
        gold = assignment.sample.gold
        ratings, reason = answers[len(served)](gold)
        finish(assignment, ratings, reason)
        served.append(assignment)
    return served


def _agree(gold):
    return gold.ratings, gold.finish_reason


def _miss(gold):
    # Says "no error" with every step positive: wrong on any gold with an error.
    return [1] * len(gold.sample.steps), "solution"


def test_screening_not_required_serves_nothing(campaign, labeler, screening_set):
    campaign.screening_required = False
    campaign.save()
    assert quality.next_screening_item(labeler, campaign) is None
    assert quality.screening_passed(labeler, campaign)


def test_screening_item_is_a_leased_screening_assignment(campaign, labeler, screening_set):
    assignment = quality.next_screening_item(labeler, campaign)
    assert assignment.kind == Assignment.Kind.SCREENING
    assert assignment.generation is None
    assert assignment.labeler == labeler
    assert assignment.state == Assignment.State.IN_PROGRESS
    assert assignment.lease_expires_at > assignment.claimed_at
    assert assignment.sample_id == screening_set[0].sample_id
    # Asking again while it is live hands back the same one.
    assert quality.next_screening_item(labeler, campaign) == assignment


def test_screening_label_is_flagged_generation_minus_one(campaign, labeler, screening_set):
    assignment = quality.next_screening_item(labeler, campaign)
    label = Label.for_assignment(assignment)
    assert label.is_initial_screening
    assert not label.is_quality_control
    assert label.prm800k_generation == -1
    assert Label.for_assignment(assignment) == label  # opened twice, one label


def test_passing_screening_opens_the_campaign(campaign, labeler, screening_set):
    # Three of four first errors right: exactly the 0.75 pass mark.
    served = _answer_screening(labeler, campaign, [_agree, _agree, _miss, _agree])
    assert {a.sample_id for a in served} == {g.sample_id for g in screening_set}
    assert quality.next_screening_item(labeler, campaign) is None
    result = ScreeningResult.objects.get(campaign=campaign, labeler=labeler)
    assert result.passed
    assert result.items == 4
    assert result.agreement == pytest.approx(0.75)
    assert quality.screening_passed(labeler, campaign)


def test_failing_screening_blocks_until_a_lead_overrides(campaign, labeler, lead, screening_set):
    _answer_screening(labeler, campaign, [_agree, _agree, _miss, _miss])
    with pytest.raises(quality.ScreeningFailed):
        quality.next_screening_item(labeler, campaign)
    result = ScreeningResult.objects.get(campaign=campaign, labeler=labeler)
    assert result.status == ScreeningResult.Status.FAILED
    assert result.agreement == pytest.approx(0.5)
    # Still blocked on a later visit, and nothing new was handed out.
    with pytest.raises(quality.ScreeningFailed):
        quality.next_screening_item(labeler, campaign)
    assert not quality.screening_passed(labeler, campaign)
    assert Assignment.objects.filter(labeler=labeler).count() == 4
    result.override_pass(lead)
    assert quality.next_screening_item(labeler, campaign) is None
    assert quality.screening_passed(labeler, campaign)


def test_screening_is_per_labeler(campaign, labeler, other_labeler, screening_set):
    _answer_screening(labeler, campaign, [_agree] * 4)
    assignment = quality.next_screening_item(other_labeler, campaign)
    assert assignment is not None and assignment.labeler == other_labeler


def test_no_screening_set_does_not_block(campaign, labeler):
    campaign.screening_required = True
    campaign.save()
    assert quality.next_screening_item(labeler, campaign) is None


def test_expired_screening_item_is_served_again(campaign, labeler, screening_set):
    first = quality.next_screening_item(labeler, campaign)
    first.state = Assignment.State.EXPIRED
    first.save()
    again = quality.next_screening_item(labeler, campaign)
    assert again.pk != first.pk
    assert again.sample_id == first.sample_id


# --- QC -----------------------------------------------------------------------------------


def test_qc_draw_rate():
    rng = random.Random(1234)
    hits = sum(quality.qc_draw(0.2, rng) for _ in range(1000))
    assert 160 <= hits <= 240
    assert sum(quality.qc_draw(0.0, rng) for _ in range(1000)) == 0
    assert sum(quality.qc_draw(1.0, rng) for _ in range(1000)) == 1000


def test_qc_served_at_the_rate_and_never_twice(campaign, problem, labeler, opened_generation):
    samples = Sample.objects.bulk_create(
        Sample(
            campaign=campaign,
            problem=problem,
            external_id=f"rate-{i}",
            steps=["One.", "Two."],
            steps_hash=f"{i:032d}",
        )
        for i in range(300)
    )
    GoldStandard.objects.bulk_create(
        GoldStandard(sample=s, purpose=QC, ratings=[1, -1], finish_reason="found_error")
        for s in samples
    )
    campaign.qc_rate = 0.2
    campaign.save()
    rng = random.Random(99)
    served = [quality.maybe_qc_item(labeler, campaign, rng) for _ in range(1000)]
    hits = [a for a in served if a is not None]
    expected = random.Random(99)
    assert len(hits) == sum(expected.random() < 0.2 for _ in range(1000))
    assert 160 <= len(hits) <= 240
    assert len({a.sample_id for a in hits}) == len(hits)
    assert all(a.kind == Assignment.Kind.QUALITY_CONTROL for a in hits)


def test_qc_rate_zero_and_one_are_exact(campaign, labeler, opened_generation, make_gold):
    golds = [make_gold(QC, [1, 1, 1], "solution") for _ in range(5)]
    rng = random.Random(5)
    campaign.qc_rate = 0.0
    assert all(quality.maybe_qc_item(labeler, campaign, rng) is None for _ in range(1000))
    campaign.qc_rate = 1.0
    served = [quality.maybe_qc_item(labeler, campaign, rng) for _ in range(5)]
    assert sorted(a.sample_id for a in served) == sorted(g.sample_id for g in golds)
    # All gold seen: rate 1 still never repeats one.
    assert quality.maybe_qc_item(labeler, campaign, rng) is None


def test_qc_uses_newest_open_generation_and_flags_label(campaign, labeler, make_gold):
    Generation.objects.create(campaign=campaign, number=0, status=Generation.Status.OPEN)
    newest = Generation.objects.create(campaign=campaign, number=1, status=Generation.Status.OPEN)
    Generation.objects.create(campaign=campaign, number=2, status=Generation.Status.PENDING)
    make_gold(QC, [1, -1], "found_error")
    campaign.qc_rate = 1.0
    assignment = quality.maybe_qc_item(labeler, campaign)
    assert assignment.generation == newest
    assert assignment.state == Assignment.State.IN_PROGRESS
    label = Label.for_assignment(assignment)
    assert label.is_quality_control and not label.is_initial_screening
    assert label.prm800k_generation == 1


def test_qc_needs_an_open_generation(campaign, labeler, make_gold):
    make_gold(QC, [1, -1], "found_error")
    campaign.qc_rate = 1.0
    assert quality.maybe_qc_item(labeler, campaign) is None


def test_qc_skips_gold_the_labeler_already_worked_on(
    campaign, labeler, other_labeler, opened_generation, make_gold
):
    seen = make_gold(QC, [1, -1], "found_error")
    Assignment.objects.create(
        generation=opened_generation,
        sample=seen.sample,
        labeler=labeler,
        state=Assignment.State.SUBMITTED,
    )
    fresh = make_gold(QC, [1, 1, 1], "solution")
    campaign.qc_rate = 1.0
    assert quality.maybe_qc_item(labeler, campaign).sample_id == fresh.sample_id
    assert quality.maybe_qc_item(labeler, campaign) is None
    # Another labeler still gets both.
    assert quality.maybe_qc_item(other_labeler, campaign).sample_id == seen.sample_id


def test_qc_skips_screening_gold(campaign, labeler, opened_generation, make_gold):
    make_gold(SCREENING, [1, -1], "found_error")
    campaign.qc_rate = 1.0
    assert quality.maybe_qc_item(labeler, campaign) is None


# --- Agreement from stored labels ---------------------------------------------------------


def test_labeler_agreement_from_finished_qc_labels(
    campaign, labeler, other_labeler, opened_generation, make_gold
):
    make_gold(QC, [1, 0, -1], "found_error")
    make_gold(QC, [1, 1, 1], "solution")
    campaign.qc_rate = 1.0
    first = quality.maybe_qc_item(labeler, campaign)
    second = quality.maybe_qc_item(labeler, campaign)
    finish(first, [1, 1, -1], "found_error")  # same first error, 2 of 3 steps
    finish(second, [1, -1], "found_error")  # missed "no error", 1 of 2 steps
    # An unfinished QC label and another labeler's work do not count.
    other = quality.maybe_qc_item(other_labeler, campaign)
    Label.for_assignment(other)
    result = quality.labeler_agreement(labeler, campaign)
    assert result == quality.Agreement(
        items=2, first_error_agree=1, steps_compared=5, steps_agree=3
    )
    assert quality.labeler_agreement(other_labeler, campaign) == quality.Agreement()
    by_labeler = quality.agreements_by_labeler(quality.gold_labels(campaign))
    assert set(by_labeler) == {labeler.pk}


# --- Marking gold -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ratings", "reason", "n_steps", "expected"),
    [
        ([1, 0, -1], "found_error", 4, [1, 0, -1]),
        ([1, 1, 1, None], "solution", 3, [1, 1, 1]),
        ([1, None], "bad_problem", 3, [1]),
        ([], "give_up", 3, []),
    ],
)
def test_validate_gold_accepts(ratings, reason, n_steps, expected):
    assert quality.validate_gold(ratings, reason, n_steps) == expected


@pytest.mark.parametrize(
    ("ratings", "reason", "n_steps"),
    [
        ([1, None, -1], "found_error", 3),  # hole before a rated step
        ([1, -1, 1], "found_error", 3),  # rated after the first error
        ([1, 1], "found_error", 3),  # found_error with no −1
        ([1, -1], "solution", 3),  # solution with a −1
        ([1, 1], "solution", 3),  # solution not fully rated
        ([1, 1, 1, 1], "solution", 3),  # more ratings than steps
        ([2], "found_error", 3),  # out of range
        ([1], "nonsense", 3),
    ],
)
def test_validate_gold_rejects(ratings, reason, n_steps):
    with pytest.raises(ValidationError):
        quality.validate_gold(ratings, reason, n_steps)


def test_gold_from_a_finished_label(campaign, labeler, lead, opened_generation, make_sample):
    sample = make_sample(4)
    assignment = Assignment.objects.create(
        generation=opened_generation, sample=sample, labeler=labeler, state="in_progress"
    )
    label = finish(assignment, [1, 0, -1], "found_error")
    gold = quality.gold_from_label(label, SCREENING, by=lead)
    assert (gold.sample, gold.purpose, gold.ratings) == (sample, SCREENING, [1, 0, -1])
    assert gold.finish_reason == "found_error" and gold.created_by == lead
    # Re-marking replaces, never duplicates.
    quality.gold_from_label(label, QC, by=lead)
    assert GoldStandard.objects.get(sample=sample).purpose == QC


def test_unfinished_label_cannot_be_gold(campaign, labeler, opened_generation, make_sample):
    assignment = Assignment.objects.create(
        generation=opened_generation, sample=make_sample(), labeler=labeler, state="in_progress"
    )
    with pytest.raises(ValidationError):
        quality.gold_from_label(Label.for_assignment(assignment), QC)
