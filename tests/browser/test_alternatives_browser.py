"""A labeler rates the alternatives to the step they found wrong (PRM800K phase 2) by keyboard,
after finishing with a −1: the keys 1/2/3 rate the first unrated alternative."""

import pytest
from playwright.sync_api import expect

from annotate import dispatch
from annotate.models import Alternative, Label
from tests.browser.conftest import claim_next, login
from tests.factories import make_generation, make_sample, open_slots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TEXTS = ["Then $x^2 = 2 \\cdot 2 = 4$.", "Squaring, <em>x</em> squared is 4.", "So $x^2 = 4$."]


@pytest.fixture
def queued(labeler, campaign):
    campaign.labelers.add(labeler)
    return open_slots(make_generation(campaign), [make_sample(campaign)])[0]


def _alternative(page, index):
    return page.locator(f"#alternatives [data-alternative='{index}']")


def _pressed(page, index):
    button = _alternative(page, index).locator("[data-rating][aria-pressed='true']")
    return int(button.get_attribute("data-rating")) if button.count() else None


def _ratings(label) -> list:
    return list(label.alternatives.order_by("index").values_list("rating", flat=True))


def test_rate_the_alternatives_by_keyboard(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "1")
    label = Label.objects.get(assignment_id=queued.pk)
    Alternative.store(label.pk, 1, TEXTS)  # as the worker would, before the page finishes

    page.keyboard.press("1")  # step 2 is wrong: the task finishes, the alternatives show
    expect(page.locator("[data-finished]")).to_contain_text("error in step 2")
    expect(page.locator("#alternatives")).to_contain_text("Other versions of step 2")
    expect(page.locator("#alternatives [data-alternative]")).to_have_count(3)
    expect(_alternative(page, 1)).to_contain_text("<em>x</em>")  # escaped, shown as text
    expect(_alternative(page, 0)).to_have_attribute("data-alt-current", "")
    expect(_alternative(page, 0).locator("kbd.keyhint")).to_have_text(["1", "2", "3"])

    page.keyboard.press("1")
    expect(_alternative(page, 1)).to_have_attribute("data-alt-current", "")
    page.keyboard.press("3")
    expect(_alternative(page, 2)).to_have_attribute("data-alt-current", "")
    page.keyboard.press("2")
    expect(page.locator("#alternatives [data-alt-current]")).to_have_count(0)
    assert [_pressed(page, i) for i in range(3)] == [-1, 1, 0]
    assert _ratings(label) == [-1, 1, 0]

    page.keyboard.press("3")  # nothing left to rate: a hint, nothing stored
    expect(page.locator("#hint")).to_contain_text("Every alternative is rated")
    assert _ratings(label) == [-1, 1, 0]
    # The steps' ratings are untouched, and the next task is one key away as before.
    assert dict(label.ratings.values_list("step", "rating")) == {0: 1, 1: -1}
    page.keyboard.press("n")
    expect(page.locator("h1")).to_have_text("All caught up")


def test_the_page_polls_until_the_alternatives_arrive(page, labeler, campaign, queued, monkeypatch):
    monkeypatch.setattr(dispatch, "propose_alternatives", lambda label_id, campaign: None)
    campaign.generator_model = "test-model"
    campaign.alternatives = 2
    campaign.save()
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.keyboard.press("1")
    expect(page.locator("#alternatives")).to_contain_text("Proposing alternatives…")

    label = Label.objects.get(assignment_id=queued.pk)
    Alternative.store(label.pk, 0, ["Let $x = 2$, so $x^2 = 4$.", "Take $x = 2$."])
    expect(page.locator("#alternatives [data-alternative]")).to_have_count(2, timeout=10_000)
    expect(page.locator("#alternatives")).not_to_have_attribute("hx-trigger", "every 2s")

    page.keyboard.press("3")  # may move on without rating the second one
    expect(_alternative(page, 1)).to_have_attribute("data-alt-current", "")
    assert _ratings(label) == [1, None]
    page.keyboard.press("n")
    expect(page.locator("h1")).to_have_text("All caught up")
