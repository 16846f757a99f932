"""A lead works through the review queue by keyboard: accept, correct, reject."""

import pytest

from annotate import review
from annotate.models import Assignment, Label, Review
from tests.browser.conftest import login
from tests.factories import finished_label, overlap_campaign, person

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def reviews(campaign, lead):
    """Three open reviews: two disagreements (labels of a and b), one flagged step."""
    generation, samples = overlap_campaign(campaign)
    a, b = person("ann", campaign), person("bob", campaign)
    labels = {
        "a0": finished_label(a, samples[0], generation, [1, -1], "found_error"),
        "b0": finished_label(b, samples[0], generation, [1, 1, 1, 1], "solution"),
        "a1": finished_label(a, samples[1], generation, [1, 1, 1, 1], "solution"),
        "b1": finished_label(b, samples[1], generation, [-1], "found_error"),
        "a2": finished_label(a, samples[2], generation, [1, 1, 1, 1], "solution", flagged=[2]),
    }
    return samples, labels


def test_lead_reviews_by_keyboard(page, reviews, lead, campaign):
    samples, labels = reviews
    login(page, "lead", "lead-password")
    page.goto(f"/review/{campaign.slug}/")
    page.locator("[data-action=start]").wait_for()
    assert page.locator("tr[data-review]").count() == 3
    page.keyboard.press("Enter")  # the start link has the focus

    # Review 1 (sample 0): accept bob's label, the second column.
    page.locator("#review[data-state=open]").wait_for()
    first = Review.objects.get(sample=samples[0])
    assert page.url.endswith(f"/review/items/{first.pk}/")
    page.keyboard.press("2")
    second = Review.objects.get(sample=samples[1])
    page.wait_for_url(f"**/review/items/{second.pk}/")

    # Review 2 (sample 1): correct it: +1, +1, −1 (an error at step 3).
    page.locator("#review[data-state=open]").wait_for()
    page.keyboard.press("c")
    for downs in (1, 1, 3):
        for _ in range(downs):
            page.keyboard.press("ArrowDown")
        page.keyboard.press("Tab")
    # From step 4 (left blank): the two accept buttons, the finish reason (found_error
    # already), then the save button.
    for _ in range(4):
        page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.dataset.action") == "correct"
    page.keyboard.press("Enter")
    third = Review.objects.get(sample=samples[2])
    page.wait_for_url(f"**/review/items/{third.pk}/")

    # Review 3 (sample 2): reject it back to the queue.
    page.locator("#review[data-state=open]").wait_for()
    page.keyboard.press("r")
    page.locator("[data-empty]").wait_for()

    first.refresh_from_db()
    second.refresh_from_db()
    third.refresh_from_db()
    assert (first.state, first.chosen_id) == (Review.State.ACCEPTED, labels["b0"].pk)
    assert second.state == Review.State.CORRECTED and second.chosen.labeler == lead
    assert list(second.chosen.ratings.values_list("rating", flat=True)) == [1, 1, -1]
    assert second.chosen.finish_reason == Label.FinishReason.FOUND_ERROR
    assert third.state == Review.State.REJECTED
    assert Assignment.objects.unclaimed().filter(sample=samples[2]).count() == campaign.overlap
    assert not review.review_queue(campaign).exists()
