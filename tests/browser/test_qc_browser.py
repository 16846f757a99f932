"""A labeler finishes a QC item by keyboard; the stored label and its agreement are right."""

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotate import quality
from annotate.models import Assignment, Generation, GoldStandard, Label, Sample
from tests.browser.conftest import login

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def qc_campaign(campaign, problem, labeler, lead):
    """QC at rate 1, one QC gold sample (error at step 3) and one regular task waiting."""
    campaign.qc_rate = 1.0
    campaign.save()
    campaign.labelers.add(labeler)
    generation = Generation.objects.create(campaign=campaign, number=2, status="open")
    gold_sample = Sample.objects.create(
        campaign=campaign,
        problem=problem,
        external_id="gold-1",
        steps=["We have $1+1$.", "Adding gives $2$.", "So the answer is $3$.\n\n# Answer\n\n3"],
        answer="3",
        is_correct=False,
        steps_hash="1" * 32,
    )
    gold = GoldStandard.objects.create(
        sample=gold_sample,
        purpose=GoldStandard.Purpose.QUALITY_CONTROL,
        ratings=[1, 0, -1],
        finish_reason="found_error",
        created_by=lead,
    )
    regular = Sample.objects.create(
        campaign=campaign,
        problem=problem,
        external_id="regular-1",
        steps=["One.", "Two."],
        answer="2",
        is_correct=True,
        steps_hash="2" * 32,
    )
    Assignment.objects.create(generation=generation, sample=regular)
    return gold


def test_labeler_finishes_qc_item_by_keyboard(page, qc_campaign, labeler):
    login(page, "labeler", "labeler-password")
    page.click("[data-action=next]")
    page.wait_for_selector("#task[data-editable=true]")

    assignment = Assignment.objects.get(labeler=labeler, state="in_progress")
    assert assignment.kind == Assignment.Kind.QUALITY_CONTROL
    assert assignment.sample_id == qc_campaign.sample_id

    # +1, +1, −1: the same first error as gold (step 3), step 2 disagrees (gold says 0).
    for index, key in enumerate(["3", "3", "1"]):
        page.keyboard.press(key)
        rating = {"3": "1", "1": "-1"}[key]
        page.wait_for_selector(
            f'[data-step="{index}"] [data-rating="{rating}"][aria-pressed="true"]'
        )
    page.wait_for_selector("[data-finished]")

    label = Label.objects.get(assignment=assignment)
    assert label.is_quality_control and not label.is_initial_screening
    assert label.prm800k_generation == 2
    assert label.finish_reason == "found_error"
    assert list(label.ratings.order_by("step").values_list("rating", flat=True)) == [1, 1, -1]
    assert quality.labeler_agreement(labeler, qc_campaign.sample.campaign) == quality.Agreement(
        items=1, first_error_agree=1, steps_compared=3, steps_agree=2
    )

    # The next task is the regular one: the only QC gold was used up.
    page.keyboard.press("n")
    page.wait_for_selector("#task[data-editable=true]")
    assert Assignment.objects.get(labeler=labeler, state="in_progress").kind == "regular"


def rated_qc_label(gold, labeler, ratings: list[int]) -> Label:
    """The labeler's QC label of the gold sample, rated step by step as the page does."""
    assignment = Assignment.objects.create(
        generation=Generation.objects.get(),
        sample=gold.sample,
        labeler=labeler,
        kind="qc",
        state="in_progress",
    )
    label = Label.for_assignment(assignment)
    for step, rating in enumerate(ratings):
        label.rate(step, rating)
    return label


def test_lead_sees_the_agreement_on_the_dashboard(page, qc_campaign, labeler, lead):
    rated_qc_label(qc_campaign, labeler, [1, 0, 1])  # misses gold's error at step 3
    login(page, "lead", "lead-password")
    page.goto(reverse("dashboard-campaign", args=["test-campaign"]))
    row = page.locator('[data-labeler="labeler"]')
    assert row.locator('[data-stat="first-error"]').inner_text() == "0%"
    assert row.locator('[data-stat="step"]').inner_text() == "67%"
    assert row.locator('[data-stat="gold-items"]').inner_text() == "1"


def test_labeler_reads_a_scored_item_beside_gold(page, qc_campaign, labeler):
    label = rated_qc_label(qc_campaign, labeler, [1, 1, -1])  # gold: +1, 0, −1
    login(page, "labeler", "labeler-password")
    page.goto(reverse("labeler-home"))
    expect(page.locator('[data-stat="agreement_detail"]')).to_contain_text(
        "1 of 1 agreed, 0 disagreed, 0 given up"
    )
    page.get_by_role("link", name="see each item").click()
    item = page.locator(f'[data-qc-item="{label.pk}"]')
    expect(item).to_have_attribute("data-verdict", "agree")
    differs = item.locator('[data-step="1"]')
    expect(differs).to_have_class("qc-step--differs")
    expect(differs.locator("[data-mine]")).to_have_text("+1")
    expect(differs.locator("[data-gold]")).to_have_text("0")
    expect(item.locator('[data-step="0"] .katex').first).to_be_visible()  # math rendered
