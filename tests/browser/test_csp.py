"""Content Security Policy (#15 item 3): the pages work under the policy with no violation.

Every violation is caught twice: the page's `securitypolicyviolation` events (recorded from
before any page script runs) and chromium's console messages about the policy.
"""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from tests.browser.conftest import login
from tests.factories import make_generation, make_sample, open_slots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

RECORD_VIOLATIONS = """
window.__csp = [];
document.addEventListener("securitypolicyviolation", (e) => {
  const where = `${e.sourceFile}:${e.lineNumber}`;
  window.__csp.push(`${e.effectiveDirective} blocked ${e.blockedURI} at ${where}`);
});
"""
POLICY = {
    "script-src 'self'",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "frame-ancestors 'none'",
}


@pytest.fixture
def watched(page):
    """The browser page, recording CSP violations; `violations(page)` reads and clears them."""
    page.csp_console = []

    def on_console(message):
        if "Content Security Policy" in message.text:
            page.csp_console.append(message.text)

    page.on("console", on_console)
    page.add_init_script(RECORD_VIOLATIONS)
    return page


def violations(page) -> list[str]:
    found = page.evaluate("window.__csp.splice(0)") + page.csp_console
    page.csp_console.clear()
    return found


def visit(page, path: str) -> None:
    response = page.goto(path)
    assert response is not None and response.status == 200, path
    policy = {part.strip() for part in response.headers["content-security-policy"].split(";")}
    assert policy >= POLICY, path
    page.wait_for_load_state("load")
    assert violations(page) == [], path


@pytest.fixture
def queued(labeler, campaign):
    campaign.labelers.add(labeler)
    return open_slots(make_generation(campaign), [make_sample(campaign)])[0]


def test_labeler_pages_under_the_policy(watched, labeler, queued) -> None:
    page = watched
    visit(page, reverse("login"))
    login(page, "labeler", "labeler-password")
    assert violations(page) == []
    visit(page, reverse("labeler-home"))
    visit(page, reverse("qc-feedback"))
    visit(page, reverse("labeler-home"))

    page.click("[data-action=next]")
    page.wait_for_url(f"**/tasks/{queued.pk}/")
    expect(page.locator("#task .katex").first).to_be_visible()  # KaTeX rendered, fonts loaded
    page.evaluate("document.fonts.ready")
    assert violations(page) == []

    page.keyboard.press("3")  # an htmx request and swap, re-rendering math
    expect(page.locator("#task [data-step='0'] [data-rating][aria-pressed='true']")).to_have_count(
        1
    )
    page.keyboard.press("?")  # the shortcuts dialog (label.js)
    expect(page.locator("#shortcuts")).to_be_visible()
    assert violations(page) == []


def test_lead_pages_under_the_policy(watched, lead, campaign, queued) -> None:
    page = watched
    login(page, "lead", "lead-password")
    for path in (
        reverse("labeler-home"),  # a lead who labels nowhere: their campaigns
        reverse("dashboard"),
        reverse("dashboard-campaign", args=[campaign.slug]),
        reverse("dashboard-models", args=[campaign.slug]),
        reverse("dashboard-arms", args=[campaign.slug]),
        reverse("admin:index"),
        reverse("admin:auth_user_changelist"),
        reverse("admin:axes_accessattempt_changelist"),
        reverse("admin:annotate_campaign_change", args=[campaign.pk]),
        reverse("admin:annotate_campaign_start_generation", args=[campaign.pk]),
    ):
        visit(page, path)


def test_lockout_page_under_the_policy(watched, labeler, settings) -> None:
    settings.AXES_FAILURE_LIMIT = 1
    page = watched
    visit(page, reverse("login"))
    page.fill("#id_username", "labeler")
    page.fill("#id_password", "wrong")
    page.press("#id_password", "Enter")
    page.wait_for_load_state("load")
    page.fill("#id_username", "labeler")
    page.fill("#id_password", "labeler-password")
    page.press("#id_password", "Enter")
    expect(page.locator("[role=alert]")).to_contain_text("Too many failed logins")
    assert violations(page) == []


def test_gold_marking_page_under_the_policy(watched, lead, sample) -> None:
    page = watched
    login(page, "lead", "lead-password")
    visit(page, reverse("admin:annotate_goldstandard_mark", args=[sample.pk]))


def test_sample_admin_page_under_the_policy(watched, lead, sample) -> None:
    page = watched
    login(page, "lead", "lead-password")
    visit(page, reverse("admin:annotate_sample_change", args=[sample.pk]))


def test_api_docs_page_under_the_policy(watched, lead) -> None:
    page = watched
    login(page, "lead", "lead-password")
    visit(page, reverse("api:docs"))
