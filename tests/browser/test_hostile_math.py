"""Hostile TeX in a model-written step: KaTeX's expansion and size limits stop it, the labeler
reads "could not render this formula" with the source, and the rest of the page still works."""

import pytest
from playwright.sync_api import expect

from annotate.models import Label
from tests.browser.conftest import claim_next, login
from tests.factories import make_generation, make_problem, make_sample, open_slots, stored_ratings

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# Each expansion of \a doubles it: without maxExpand this never finishes (or exhausts memory).
BOMB = r"$\def\a{\a\a}\a$"
HUGE_RULE = r"$\rule{100000em}{100000em}$"
STEPS = [
    f"First a bomb: {BOMB} and then a fine formula $x^2+1$.",
    f"A rule the size of a city: {HUGE_RULE}.",
    "Plain math still renders: $\\frac{a}{b}$.\n\n# Answer\n\n5",
]


def test_hostile_formula_shows_a_readable_error_and_the_page_works(page, labeler, campaign):
    campaign.labelers.add(labeler)
    problem = make_problem(campaign, "Compute $1+1$.")
    sample = make_sample(campaign, steps=STEPS, problem=problem)
    slot = open_slots(make_generation(campaign), [sample])[0]
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    login(page, "labeler", "labeler-password")
    claim_next(page)
    page.wait_for_url(f"**/tasks/{slot.pk}/")
    first = page.locator("#task [data-step='0']")
    note = first.locator(".math-error")
    expect(note).to_contain_text("could not render this formula")
    expect(note.locator("code")).to_have_text(r"\def\a{\a\a}\a")
    assert "Too many expansions" in (note.get_attribute("title") or "")
    # The formula after the bomb in the same step, and the other steps, still render.
    expect(first.locator(".katex")).to_have_count(1)
    expect(page.locator("#task [data-step='2'] .katex")).to_have_count(1)
    # maxSize caps the rule: it renders, but no wider than the page.
    rule = page.locator("#task [data-step='1'] .katex .rule")
    expect(rule).to_have_count(1)
    assert rule.evaluate("el => el.getBoundingClientRect().width") < 2000
    # Keys still rate and save every step.
    for _ in STEPS:
        page.keyboard.press("3")
    expect(page.locator("[data-finished]")).to_contain_text("No error")
    assert errors == []
    assert len(stored_ratings(Label.objects.get(assignment_id=slot.pk))) == len(STEPS)
