"""A labeler in a real browser: keyboard-only labeling, resume, flag, give up, inert text.

Each test checks the page (what the server rendered as chosen) and the database (what was
stored) against what was pressed.
"""

import pytest
from playwright.sync_api import expect

from annotate.models import Assignment, Label
from tests.browser.conftest import claim_next, login
from tests.factories import make_generation, make_sample, open_slots, stored_ratings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def queued(labeler, campaign):
    """One four-step sample waiting in the labeler's queue; returns its slot."""
    campaign.labelers.add(labeler)
    generation = make_generation(campaign)
    return open_slots(generation, [make_sample(campaign)])[0]


def _step(page, index):
    return page.locator(f"#task [data-step='{index}']")


def _pressed(page, index):
    """The rating the page shows as chosen for a step, or None."""
    button = _step(page, index).locator("[data-rating][aria-pressed='true']")
    return int(button.get_attribute("data-rating")) if button.count() else None


def _label(slot) -> Label:
    return Label.objects.get(assignment_id=slot.pk)


def test_label_to_found_error_by_keyboard_only(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    page.keyboard.press("n")  # the home page's start link
    page.wait_for_url(f"**/tasks/{queued.pk}/")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "0")
    expect(page.locator("[data-progress]")).to_contain_text("Step 1 of 4")

    # Typed in one go: label.js queues keys while a save is in flight.
    for key in ("3", "2", "1"):
        page.keyboard.press(key)

    expect(page.locator("[data-finished]")).to_contain_text("error in step 3")
    assert [_pressed(page, i) for i in range(4)] == [1, 0, -1, None]
    expect(_step(page, 3)).to_have_class("step step--after_error")
    expect(page.locator("#task [data-rating]:enabled")).to_have_count(0)

    label = _label(queued)
    assert label.finish_reason == "found_error"
    assert stored_ratings(label) == {0: (1, False), 1: (0, False), 2: (-1, False)}
    assert 0 < label.total_time_ms < 60_000
    queued.refresh_from_db()
    assert queued.state == Assignment.State.SUBMITTED

    page.keyboard.press("n")  # next task: nothing left
    expect(page.locator("h1")).to_have_text("All caught up")


def test_reload_resumes_where_the_labeler_was(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.keyboard.press("3")
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")

    page.reload()
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    expect(page.locator("[data-progress]")).to_contain_text("Step 3 of 4")
    assert [_pressed(page, i) for i in range(4)] == [1, 1, None, None]
    assert stored_ratings(_label(queued)) == {0: (1, False), 1: (1, False)}

    page.keyboard.press("u")  # undo the last rating
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "1")
    assert stored_ratings(_label(queued)) == {0: (1, False)}
    for key in ("2", "3", "3"):
        page.keyboard.press(key)
    expect(page.locator("[data-finished]")).to_contain_text("No error")
    label = _label(queued)
    assert label.finish_reason == "solution"
    assert stored_ratings(label) == {0: (1, False), 1: (0, False), 2: (1, False), 3: (1, False)}


def test_flag_a_step(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    claim_next(page)
    _step(page, 0).locator("[data-action='flag']").click()
    expect(_step(page, 0).locator("[data-action='flag']")).to_have_attribute("aria-pressed", "true")
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "1")
    page.keyboard.press("f")  # flags the current step
    expect(_step(page, 1).locator("[data-action='flag']")).to_have_attribute("aria-pressed", "true")
    assert stored_ratings(_label(queued)) == {0: (1, True), 1: (None, True)}
    # Flags do not block rating: the flagged current step can still be rated.
    page.keyboard.press("2")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    assert stored_ratings(_label(queued)) == {0: (1, True), 1: (0, True)}


def test_give_up(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "1")
    page.locator("[data-action='give_up']").click()
    expect(page.locator("[data-finished]")).to_contain_text("gave up")
    expect(page.locator("[data-action='give_up']")).to_be_disabled()
    label = _label(queued)
    assert label.finish_reason == "give_up"
    assert stored_ratings(label) == {0: (1, False)}  # the ratings so far are kept
    queued.refresh_from_db()
    assert queued.state == Assignment.State.SUBMITTED
    # Submitted work is read-only, also after a reload.
    page.reload()
    expect(page.locator("#task [data-rating]:enabled")).to_have_count(0)


def test_untrusted_step_text_renders_inert(page, labeler, campaign):
    campaign.labelers.add(labeler)
    script = "<script>window.__pwned = 1; alert('script')</script> so $x^2 = 4$."
    image = "<img src=x onerror=\"window.__pwned = 2; alert('img')\">"
    link = r"Click $\href{javascript:alert('katex')}{here}$."
    sample = make_sample(campaign, steps=[script, image, link])
    slot = open_slots(make_generation(campaign), [sample])[0]

    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.wait_for_url(f"**/tasks/{slot.pk}/")
    text = _step(page, 0).locator(".step__text")
    expect(text).to_contain_text("<script>window.__pwned = 1;")
    expect(text.locator(".katex")).to_have_count(1)  # the math still renders
    expect(_step(page, 1).locator(".step__text")).to_contain_text("<img src=x onerror=")
    assert page.locator("#task .step__text img").count() == 0
    assert page.locator("#task .step__text script").count() == 0
    assert page.locator("#task .step__text a").count() == 0  # KaTeX trust is off: no link
    page.keyboard.press("3")
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []
    assert stored_ratings(_label(slot)) == {0: (1, False), 1: (1, False)}


def test_active_time_pauses_when_idle(page, labeler, queued):
    login(page, "labeler", "labeler-password")
    page.clock.install()
    claim_next(page)
    page.wait_for_url(f"**/tasks/{queued.pk}/")
    page.keyboard.press("Shift")  # any input starts the active period
    start = page.evaluate("StepwiseLabel.activeMs()")
    page.clock.run_for(30_000)  # reading, within the 60 s idle window
    assert 29_000 <= page.evaluate("StepwiseLabel.activeMs()") - start <= 31_000
    page.clock.run_for(5 * 60_000)  # five idle minutes count only until the 60 s mark
    idle = page.evaluate("StepwiseLabel.activeMs()") - start
    assert 58_000 <= idle <= 61_000
    page.keyboard.press("Shift")  # back: the clock runs again
    page.clock.run_for(10_000)
    assert 9_000 <= page.evaluate("StepwiseLabel.activeMs()") - start - idle <= 11_000
