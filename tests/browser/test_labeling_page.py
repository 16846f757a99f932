"""The task page in a real browser at laptop and phone width: long math stays in its box,
undo, Give up / Bad problem keys with a confirm step, key hints, scrolling below the sticky
bar, the collapsing top navigation, safe Markdown, and a failed save that shows and retries."""

import json
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone
from playwright.sync_api import expect

from annotate.io import split_response
from annotate.models import Assignment, Label
from tests.browser.conftest import claim_next, login, wait_until_true
from tests.factories import (
    make_generation,
    make_problem,
    make_sample,
    open_slots,
    stored_ratings,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

DATA = Path(__file__).resolve().parents[2] / "data"
NOWHERE = "http://127.0.0.1:9/"  # the discard port: nothing listens
WIDTHS = {"laptop": (1366, 768), "phone": (390, 844)}

LONG_SUM = " + ".join(f"\\frac{{x_{{{i}}}^2}}{{y_{{{i}}} + {i}}}" for i in range(60))
LONG_STEPS = [
    f"Expanding every term:\n\n$$\n{LONG_SUM}\n$$",
    f"Inline it is just as long: ${LONG_SUM}$, which we simplify.",
    r"\[ " + " = ".join(["(a+b)^{2}"] * 40) + r" \]",
    "A word that cannot wrap: " + "x" * 400,
    "**So** the answer is:\n\n- first $a*b*c$\n- then $c$\n\n# Answer\n\n5",
]


def _queue(labeler, campaign, steps, problem_text=None):
    campaign.labelers.add(labeler)
    problem = make_problem(campaign, problem_text or f"Simplify $${LONG_SUM}$$.")
    sample = make_sample(campaign, steps=steps, problem=problem)
    return open_slots(make_generation(campaign), [sample])[0]


def _label(slot) -> Label:
    return Label.objects.get(assignment_id=slot.pk)


def _open(page, viewport, slot):
    page.set_viewport_size({"width": viewport[0], "height": viewport[1]})
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.wait_for_url(f"**/tasks/{slot.pk}/")
    page.locator("#task [data-current]").wait_for()


def _inside_viewport(page, locator) -> None:
    width = page.evaluate("innerWidth")
    for i in range(locator.count()):
        box = locator.nth(i).bounding_box()
        assert box is not None, f"button {i} is not shown"
        assert box["x"] >= 0 and box["x"] + box["width"] <= width, (i, box, width)


def _no_page_scroll(page) -> None:
    assert page.evaluate("document.documentElement.scrollWidth <= innerWidth")


@pytest.mark.parametrize("width", WIDTHS)
def test_long_math_scrolls_in_its_box_and_buttons_stay_visible(page, labeler, campaign, width):
    slot = _queue(labeler, campaign, LONG_STEPS)
    _open(page, WIDTHS[width], slot)
    page.locator("#task .katex-display").first.wait_for()
    _no_page_scroll(page)
    _inside_viewport(page, page.locator("#task [data-rating], #task [data-action='flag']"))
    _inside_viewport(page, page.locator("#task-bar button"))
    # The display equation is wider than its box, which scrolls instead of the page.
    box = page.locator("#task [data-step='0'] .katex-display").first
    assert box.evaluate("el => el.scrollWidth > el.clientWidth")
    assert box.evaluate("el => getComputedStyle(el).overflowX") == "auto"
    for _ in range(len(LONG_STEPS) - 1):
        page.keyboard.press("3")
    expect(page.locator("[data-progress]")).to_contain_text(f"Step {len(LONG_STEPS)} of")
    _no_page_scroll(page)
    _inside_viewport(page, page.locator("#task [data-current] [data-rating]"))
    page.keyboard.press("3")
    expect(page.locator("[data-finished]")).to_contain_text("No error")
    _no_page_scroll(page)
    _inside_viewport(page, page.locator("[data-finished] button"))


@pytest.mark.parametrize("width", WIDTHS)
def test_current_step_scrolls_to_just_below_the_sticky_bar(page, labeler, campaign, width):
    steps = [f"Step {i}: " + "we carry on with the computation. " * 12 for i in range(12)]
    slot = _queue(labeler, campaign, steps, problem_text="Short.")
    _open(page, WIDTHS[width], slot)
    for expected in range(1, 6):
        page.keyboard.press("3")
        current = page.locator(f"#task [data-step='{expected}'][data-current]")
        expect(current).to_be_visible()
        wait_until_true(
            page,
            "() => { const bar = document.getElementById('task-bar').getBoundingClientRect();"
            " const step = document.querySelector('#task [data-current]').getBoundingClientRect();"
            " return step.top >= bar.bottom - 1 && step.top <= bar.bottom + 40; }",
        )
    assert len(stored_ratings(_label(slot))) == 5


def test_top_navigation_collapses_on_a_phone(page, labeler, campaign):
    slot = _queue(labeler, campaign, ["One.", "Two."])
    _open(page, WIDTHS["phone"], slot)
    menu = page.locator(".topbar .nav-toggle")
    expect(menu).to_be_visible()
    expect(page.locator(".topbar__nav")).to_be_hidden()
    menu.click()
    expect(page.locator(".topbar__nav")).to_be_visible()
    expect(menu).to_have_attribute("aria-expanded", "true")
    _no_page_scroll(page)
    page.set_viewport_size({"width": 1366, "height": 768})
    expect(menu).to_be_hidden()
    expect(page.locator(".topbar__nav")).to_be_visible()


def test_key_hints_and_give_up_needs_a_second_press(page, labeler, campaign):
    slot = _queue(labeler, campaign, ["One.", "Two.", "Three."])
    _open(page, WIDTHS["laptop"], slot)
    current = page.locator("#task [data-current]")
    for value, key in (("-1", "1"), ("0", "2"), ("1", "3")):
        expect(current.locator(f"[data-rating='{value}'] kbd")).to_have_text(key)
    expect(current.locator("[data-action='flag'] kbd")).to_have_text("f")
    expect(page.locator("[data-action='give_up'] kbd")).to_have_text("g")
    expect(page.locator("[data-action='bad_problem'] kbd")).to_have_text("b")
    expect(page.locator("[data-action='undo'] kbd")).to_have_text("u")

    page.keyboard.press("3")
    page.keyboard.press("g")  # arms: nothing is sent yet
    expect(page.locator("#hint")).to_contain_text("Press g again")
    expect(page.locator("[data-action='give_up']")).to_have_class("btn btn--armed")
    page.keyboard.press("3")  # another key disarms (and rates)
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    page.keyboard.press("g")
    page.keyboard.press("g")
    expect(page.locator("[data-finished]")).to_contain_text("gave up")
    label = _label(slot)
    assert label.finish_reason == "give_up"
    assert stored_ratings(label) == {0: (1, False), 1: (1, False)}

    page.keyboard.press("u")  # a slip: re-open it
    expect(page.locator("#task")).to_have_attribute("data-editable", "true")
    assert _label(slot).finish_reason is None
    page.keyboard.press("b")
    page.keyboard.press("b")
    expect(page.locator("[data-finished]")).to_contain_text("bad problem")
    assert _label(slot).finish_reason == "bad_problem"


def test_undo_the_minus_one_and_a_flag_by_keyboard(page, labeler, campaign):
    slot = _queue(labeler, campaign, ["One.", "Two.", "Three.", "Four."])
    _open(page, WIDTHS["laptop"], slot)
    page.keyboard.press("3")
    page.keyboard.press("1")  # −1: the task is finished ...
    expect(page.locator("[data-finished]")).to_contain_text("error in step 2")
    expect(page.locator("[data-finished] [data-action='undo-finish']")).to_be_visible()
    slot.refresh_from_db()
    assert slot.state == Assignment.State.SUBMITTED
    page.keyboard.press("u")  # ... and undone, within the lease
    expect(page.locator("[data-finished]")).to_have_count(0)
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "1")
    slot.refresh_from_db()
    assert slot.state == Assignment.State.IN_PROGRESS
    assert stored_ratings(_label(slot)) == {0: (1, False)}
    page.keyboard.press("f")
    expect(page.locator("#task [data-step='1'] [data-action='flag']")).to_have_attribute(
        "aria-pressed", "true"
    )
    page.keyboard.press("u")  # undoes the flag, not the rating before it
    expect(page.locator("#task [data-step='1'] [data-action='flag']")).to_have_attribute(
        "aria-pressed", "false"
    )
    assert stored_ratings(_label(slot)) == {0: (1, False)}


@pytest.mark.parametrize("failure", ["network", "server"])
def test_a_failed_save_is_shown_and_can_be_retried(page, labeler, campaign, failure):
    slot = _queue(labeler, campaign, ["One.", "Two.", "Three."])
    _open(page, WIDTHS["laptop"], slot)

    def fail(route):
        if failure == "network":
            route.abort()
        else:
            route.fulfill(status=500, body="Server Error")

    page.route("**/rate/", fail)
    page.keyboard.press("3")
    error = page.locator("#task-bar .save-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("Not saved")
    expect(error.locator("[data-action='retry']")).to_be_visible()
    # Not shown as saved, and nothing stored.
    expect(page.locator("#task [data-step='0'] [data-rating='1']")).to_have_attribute(
        "aria-pressed", "false"
    )
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "0")
    assert stored_ratings(_label(slot)) == {}

    page.unroute("**/rate/")
    error.locator("[data-action='retry']").click()
    expect(page.locator("#task [data-step='0'] [data-rating='1']")).to_have_attribute(
        "aria-pressed", "true"
    )
    expect(error).to_have_count(0)
    assert stored_ratings(_label(slot)) == {0: (1, False)}


def test_markdown_renders_beside_katex_and_payloads_stay_inert(page, labeler, campaign):
    steps = [
        "**Key idea**: the product $a*b*c$ is *positive*.\n\n- one\n- two",
        '<img src=x onerror="window.__pwned = 1"> [click](javascript:window.__pwned=2)',
        "![x](javascript:window.__pwned=3) <javascript:window.__pwned=4> **<svg onload=x>**",
    ]
    slot = _queue(labeler, campaign, steps, problem_text="Find **all** $x$.")
    _open(page, WIDTHS["laptop"], slot)
    page.locator("#task .katex").first.wait_for()
    first = page.locator("#task [data-step='0'] .step__text")
    expect(first.locator("strong")).to_have_text("Key idea")
    expect(first.locator("em")).to_have_text("positive")
    expect(first.locator("li")).to_have_count(2)
    expect(first.locator(".katex")).to_have_count(1)  # $a*b*c$ is math, not italics
    expect(page.locator(".problem__text strong")).to_have_text("all")
    for selector in ("img", "a", "svg", "script"):
        assert page.locator(f"#task .step__text {selector}").count() == 0
    expect(page.locator("#task [data-step='1'] .step__text")).to_contain_text("<img src=x")
    page.keyboard.press("3")
    page.keyboard.press("3")
    expect(page.locator("#task [data-current]")).to_have_attribute("data-step", "2")
    assert page.evaluate("window.__pwned") is None
    assert page.dialogs == []


def _widest_demo_samples(count: int) -> list[tuple[str, list[str]]]:
    """(problem, steps) of the demo's samples with the longest unbreakable runs of text (what
    overflowed at phone width), split into steps as the import does."""
    records = [json.loads(line) for line in (DATA / "math_cot_samples.jsonl").open()]
    found = []
    for record in records:
        for sample in record["samples"]:
            steps = split_response(sample["response"])
            widest = max(len(word) for step in steps for word in step.split())
            found.append((widest, record["problem"], steps))
    found.sort(key=lambda item: -item[0])
    return [(problem, steps) for _, problem, steps in found[:count]]


@pytest.mark.parametrize("width", WIDTHS)
def test_the_widest_demo_tasks_fit(page, labeler, campaign, width):
    tasks = []
    for problem, steps in _widest_demo_samples(5):
        generation = make_generation(campaign)
        sample = make_sample(campaign, steps=steps, problem=make_problem(campaign, problem))
        tasks.append(
            Assignment.objects.create(
                generation=generation,
                sample=sample,
                labeler=labeler,
                state=Assignment.State.IN_PROGRESS,
                lease_expires_at=timezone.now() + timedelta(hours=1),
            )
        )
    page.set_viewport_size({"width": WIDTHS[width][0], "height": WIDTHS[width][1]})
    login(page, "labeler", "labeler-password")
    for task in tasks:
        page.goto(f"/tasks/{task.pk}/")
        page.locator("#task .katex").first.wait_for()
        _no_page_scroll(page)
        _inside_viewport(page, page.locator("#task [data-rating], #task [data-action='flag']"))
        _inside_viewport(page, page.locator("#task-bar button"))
        # Leaving a task sends an active-time beacon, which can slip past routing: send it
        # nowhere, so no late one holds locks on the server when the database is flushed.
        page.evaluate("document.getElementById('task').dataset.heartbeatUrl = '" + NOWHERE + "'")
