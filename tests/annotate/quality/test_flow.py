"""Quality control through the real queue and labeling rules, and into the PRM800K export."""

import random

import pytest

from annotate import quality
from annotate.io.prm800k import iter_prm800k_records
from annotate.models import Assignment, Generation, GoldStandard, Label, ScreeningResult
from annotate.queue import next_assignment

SCREENING = GoldStandard.Purpose.SCREENING
QC = GoldStandard.Purpose.QUALITY_CONTROL


@pytest.fixture
def gated(campaign, labeler, make_gold, make_sample):
    """A campaign that screens with two items and has regular work in an open generation."""
    campaign.screening_required = True
    campaign.screening_pass_mark = 1.0
    campaign.labelers.add(labeler)
    campaign.save()
    make_gold(SCREENING, [1, -1], "found_error")
    make_gold(SCREENING, [1, 0, 1], "solution")
    generation = Generation.objects.create(campaign=campaign, number=3, status="open")
    return [Assignment.objects.create(generation=generation, sample=make_sample(2))]


def _label_as(assignment: Assignment, ratings: list[int]) -> Label:
    """Rate steps in order through the labeling rules until the task finishes."""
    label = Label.for_assignment(assignment)
    for step, rating in enumerate(ratings):
        label.rate(step, rating)
    label.refresh_from_db()
    assert label.is_finished
    return label


def test_pass_screening_then_regular_work(gated, labeler, campaign):
    slots = gated
    first = next_assignment(labeler)
    assert first.kind == Assignment.Kind.SCREENING
    assert next_assignment(labeler) == first  # own live lease comes first
    _label_as(first, first.sample.gold.ratings)
    second = next_assignment(labeler)
    assert second.kind == Assignment.Kind.SCREENING and second.sample_id != first.sample_id
    _label_as(second, second.sample.gold.ratings)
    regular = next_assignment(labeler)
    assert regular.pk == slots[0].pk
    assert regular.kind == Assignment.Kind.REGULAR
    assert ScreeningResult.objects.get(labeler=labeler, campaign=campaign).passed


def test_fail_screening_blocks_regular_work(gated, labeler, campaign):
    slots = gated
    first = next_assignment(labeler)
    _label_as(first, first.sample.gold.ratings)
    second = next_assignment(labeler)
    _label_as(second, [1, -1])  # gold says no error
    assert next_assignment(labeler) is None
    with pytest.raises(quality.ScreeningFailed):
        next_assignment(labeler, campaign)
    slots[0].refresh_from_db()
    assert slots[0].labeler is None and slots[0].state == Assignment.State.OPEN
    assert ScreeningResult.objects.get(labeler=labeler, campaign=campaign).agreement == 0.5


def test_queue_serves_qc_and_records_agreement(campaign, labeler, make_gold, make_sample):
    campaign.qc_rate = 1.0
    campaign.labelers.add(labeler)
    campaign.save()
    gold = make_gold(QC, [1, 0, -1], "found_error")
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    Assignment.objects.create(generation=generation, sample=make_sample(2))
    item = next_assignment(labeler, rng=random.Random(0))
    assert item.kind == Assignment.Kind.QUALITY_CONTROL and item.sample_id == gold.sample_id
    _label_as(item, [1, 1, -1])
    assert quality.labeler_agreement(labeler, campaign) == quality.Agreement(1, 1, 3, 2)
    # No second QC gold: regular work follows even at rate 1.
    assert next_assignment(labeler, rng=random.Random(0)).kind == Assignment.Kind.REGULAR


def test_export_carries_screening_and_qc_flags(campaign, labeler, make_gold, make_sample):
    campaign.screening_required = True
    campaign.qc_rate = 1.0
    campaign.labelers.add(labeler)
    campaign.save()
    make_gold(SCREENING, [1, -1], "found_error")
    make_gold(QC, [1, 1, 1], "solution")
    generation = Generation.objects.create(campaign=campaign, number=4, status="open")
    Assignment.objects.create(generation=generation, sample=make_sample(2))

    screening = next_assignment(labeler)
    _label_as(screening, [1, -1])
    qc = next_assignment(labeler)
    assert qc.kind == Assignment.Kind.QUALITY_CONTROL
    _label_as(qc, [1, 1, 1])
    regular = next_assignment(labeler)
    _label_as(regular, [1, 1])

    records = {
        tuple(r["question"]["pre_generated_steps"]): r for r in iter_prm800k_records(campaign)
    }
    assert len(records) == 3
    by_kind = {a.kind: records[tuple(a.sample.steps)] for a in (screening, qc, regular)}
    assert by_kind["screening"]["is_initial_screening_question"] is True
    assert by_kind["screening"]["is_quality_control_question"] is False
    assert by_kind["screening"]["generation"] == -1
    assert by_kind["qc"]["is_quality_control_question"] is True
    assert by_kind["qc"]["is_initial_screening_question"] is False
    assert by_kind["qc"]["generation"] == 4
    assert by_kind["regular"]["is_quality_control_question"] is False
    assert by_kind["regular"]["is_initial_screening_question"] is False
    assert by_kind["regular"]["generation"] == 4
    assert by_kind["screening"]["label"]["finish_reason"] == "found_error"
    assert [s["completions"][0]["rating"] for s in by_kind["qc"]["label"]["steps"]] == [1, 1, 1]
