"""Ratings answered with only the changed rows (swapped out of band), in a real browser.

The page must end up exactly as a full re-render would show it, and a tab that fell behind
must be brought up to date in full rather than patched.
"""

import pytest
from playwright.sync_api import expect

from annotate.models import Label
from tests.browser.conftest import claim_next, login
from tests.factories import make_generation, make_sample, open_slots, stored_ratings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

STEPS = [f"Step {i}: $x_{i} = {i}$." for i in range(6)]


@pytest.fixture
def queued(labeler, campaign):
    campaign.labelers.add(labeler)
    return open_slots(make_generation(campaign), [make_sample(campaign, steps=STEPS)])[0]


def _pressed(page):
    """The rating each step shows as chosen (None where none is)."""
    values = []
    for index in range(len(STEPS)):
        button = page.locator(f"#task [data-step='{index}'] [data-rating][aria-pressed='true']")
        values.append(int(button.get_attribute("data-rating")) if button.count() else None)
    return values


def test_rows_are_swapped_in_place_and_match_a_reload(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    reswaps = []
    page.on(
        "response",
        lambda r: reswaps.append(r.headers.get("hx-reswap")) if "/rate/" in r.url else None,
    )
    claim_next(page)
    page.wait_for_url(f"**/tasks/{queued.pk}/")
    section = page.locator("#task").element_handle()

    for key in ("3", "2", "3"):
        page.keyboard.press(key)
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "3")
    expect(page.locator("[data-progress]")).to_contain_text("Step 4 of 6")
    assert reswaps == ["none", "none", "none"]  # only the changed rows came back
    assert section.evaluate("el => el.isConnected")  # the section itself was never replaced
    expect(page.locator("#task-bar [data-action='undo']")).to_be_enabled()
    expect(page.locator("#task [data-step='1'] .katex")).to_have_count(1)  # math re-rendered
    shown = _pressed(page)
    assert shown == [1, 0, 1, None, None, None]
    assert stored_ratings(Label.objects.get(assignment=queued)) == {
        0: (1, False),
        1: (0, False),
        2: (1, False),
    }

    page.reload()
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "3")
    assert _pressed(page) == shown

    page.keyboard.press("1")  # −1 ends the task: the whole fragment comes back
    expect(page.locator("[data-finished]")).to_contain_text("error in step 4")
    assert reswaps[-1] is None
    expect(page.locator("#task [data-rating]:enabled")).to_have_count(0)


def test_a_tab_that_fell_behind_is_brought_up_to_date(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.wait_for_url(f"**/tasks/{queued.pk}/")
    behind = page.context.new_page()  # a second tab on the same task, same session
    behind.goto(f"/tasks/{queued.pk}/")
    expect(behind.locator("#task [data-current]")).to_have_attribute("data-step", "0")

    page.keyboard.press("3")
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")

    # The old tab still shows step 1 as current; re-rating it there must show all of the
    # saved state, not just the row it touched.
    behind.locator("#task [data-step='0'] [data-rating='0']").click()
    expect(behind.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    assert _pressed(behind) == [0, 1, None, None, None, None]
    assert stored_ratings(Label.objects.get(assignment=queued)) == {0: (0, False), 1: (1, False)}
    behind.close()
