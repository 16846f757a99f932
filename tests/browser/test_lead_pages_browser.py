"""A lead's pages in a real browser (#14 item 7): the home page of a lead who labels nowhere,
the confirmation before starting a generation over open work, and a sample's steps rendered
with their scores."""

from __future__ import annotations

import pytest
from django.urls import reverse
from playwright.sync_api import expect

from annotate.models import Checkpoint, Generation, Score
from tests.browser.conftest import login
from tests.factories import make_generation, make_sample, make_task, open_slots

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def busy(campaign, labeler):
    """Generation 0 open: one unclaimed slot and one claimed task."""
    generation = make_generation(campaign)
    open_slots(generation, [make_sample(campaign)])
    make_task(labeler, campaign, generation=generation)
    return generation


def test_lead_home_leads_to_the_dashboard(page, lead, campaign, busy) -> None:
    login(page, "lead", "lead-password")
    row = page.locator(f"[data-home='lead'] tr[data-campaign='{campaign.slug}']")
    expect(row.locator("[data-stat='left']")).to_have_text("2")
    expect(row).to_contain_text("0 of 2 submitted")
    row.get_by_role("link", name="Dashboard").click()
    page.wait_for_url(f"**{reverse('dashboard-campaign', args=[campaign.slug])}")
    expect(page.locator("h1")).to_have_text(campaign.name)


def test_starting_over_open_work_asks_first(page, lead, campaign, busy, monkeypatch) -> None:
    from annotate import dispatch

    started = []
    monkeypatch.setattr(dispatch, "start_pipeline", started.append)  # no worker here
    login(page, "lead", "lead-password")
    page.goto(reverse("admin:annotate_campaign_changelist"))
    page.locator(f"input[name='_selected_action'][value='{campaign.pk}']").check()
    page.select_option("select[name='action']", "start_next_generation")
    page.get_by_role("button", name="Go").click()

    page.wait_for_url("**/start-generation/")
    expect(page.locator("[data-open-generation='0'] [data-stat='open']")).to_have_text("1")
    expect(page.locator("[data-open-generation='0'] [data-stat='in_progress']")).to_have_text("1")
    expect(page.locator("[data-plan='checkpoint']")).to_contain_text("bootstrap")
    assert Generation.objects.count() == 1  # asking wrote nothing

    page.locator("[data-action='close-and-start']").click()
    page.wait_for_url("**/annotate/generation/**")
    expect(page.locator(".messagelist")).to_contain_text("generation 1 queued")
    busy.refresh_from_db()
    assert busy.status == Generation.Status.COMPLETE
    assert [g.number for g in started] == [1]


def test_sample_admin_renders_steps_beside_their_scores(page, lead, campaign) -> None:
    sample = make_sample(campaign, ["Square: $x^2 = 4$.", "<b>So</b> $x = 2$.\n\n# Answer\n\n2"])
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="prm", path="/m/p")
    Score.objects.create(sample=sample, checkpoint=checkpoint, score=0.2, step_scores=[0.9, 0.2])
    login(page, "lead", "lead-password")
    page.goto(reverse("admin:annotate_sample_change", args=[sample.pk]))
    for step, score in ((0, "0.900"), (1, "0.200")):
        row = page.locator(f".stepwise-steps tr[data-step='{step}']")
        expect(row.locator(".katex").first).to_be_visible()  # KaTeX rendered the math
        cell = row.locator(".stepwise-score")
        expect(cell).to_have_text(score)
        text, beside = row.locator(".md").bounding_box(), cell.bounding_box()
        assert beside["x"] > text["x"] and abs(beside["y"] - text["y"]) < 20  # same line
    expect(page.locator(".stepwise-steps tr[data-step='1'] .md")).to_contain_text("<b>So</b>")
