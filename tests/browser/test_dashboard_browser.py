"""The lead dashboard in a real browser (#14 item 8): on a phone-wide screen nothing makes the
page scroll sideways, the hourly chart is drawn by Chart.js with its axes and the viewer's time
zone, the finish-reason bars are the shares they print, and the model charts are drawn too."""

from __future__ import annotations

import pytest
from django.urls import reverse
from django.utils import timezone
from playwright.sync_api import expect

from annotate.models import Checkpoint
from tests.browser.conftest import login
from tests.browser.test_csp import RECORD_VIOLATIONS
from tests.factories import finish, make_generation, make_task

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PHONE = {"width": 390, "height": 844}
ZONE = "Asia/Kolkata"  # +05:30: an hour that starts at :30 shows the labels are local


@pytest.fixture
def phone(browser, live_server):
    """A 390 px wide page in Kolkata's time zone."""
    context = browser.new_context(base_url=live_server.url, viewport=PHONE, timezone_id=ZONE)
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.add_init_script(RECORD_VIOLATIONS)  # Chart.js must need no inline style or eval
    yield page
    context.close()


@pytest.fixture
def worked(campaign, labeler):
    """Four finished labels: three found an error, one says the solution is right."""
    generation = make_generation(campaign)
    for reason in ("found_error", "found_error", "found_error", "solution"):
        assignment, _ = make_task(labeler, campaign, generation=generation)
        finish(assignment, [1, -1] if reason == "found_error" else [1, 1], reason)
    return campaign


def csp_violations(page) -> list[str]:
    return page.evaluate("window.__csp.splice(0)")


def page_overflow(page) -> int:
    """How many pixels the page is wider than the screen (0: no sideways scrolling)."""
    return page.evaluate(
        "document.documentElement.scrollWidth - document.documentElement.clientWidth"
    )


def test_campaign_dashboard_on_a_phone(phone, lead, worked) -> None:
    login(phone, "lead", "lead-password")
    phone.goto(reverse("dashboard-campaign", args=[worked.slug]))
    canvas = phone.locator("canvas[data-chart='chart-hours'][data-drawn='hours']")
    expect(canvas).to_be_visible()
    assert page_overflow(phone) == 0

    chart = canvas.evaluate(
        """(c) => {
          const chart = Chart.getChart(c);
          return {
            x: chart.options.scales.x.title.text,
            y: chart.options.scales.y.title.text,
            yTicks: chart.scales.y.ticks.map((t) => t.label),
            labels: chart.data.labels,
            counts: chart.data.datasets[0].data,
            zone: Intl.DateTimeFormat().resolvedOptions().timeZone,
          };
        }"""
    )
    assert chart["y"] == "labels finished" and len(chart["yTicks"]) >= 2
    assert chart["zone"] in ("Asia/Kolkata", "Asia/Calcutta")  # ICU may name the old alias
    assert chart["x"] == f"hour starting ({chart['zone']})"
    assert len(chart["labels"]) == 24 and all(label.endswith(":30") for label in chart["labels"])
    assert sum(chart["counts"]) == 4 and chart["counts"][-1] == 4
    expect(phone.locator("#hour-title")).to_contain_text(f"last 24 h, {chart['zone']}")

    # Each bar is its share of all finished labels: 75% and 25% of the track, 100% together.
    shares = {}
    for row in phone.locator("tr[data-reason]").all():
        track = row.locator("svg.bar").bounding_box()
        fill = row.locator("svg.bar rect").bounding_box()
        shares[row.get_attribute("data-reason")] = fill["width"] / track["width"]
    assert shares == pytest.approx({"found_error": 0.75, "solution": 0.25}, abs=0.01)
    assert sum(shares.values()) == pytest.approx(1.0, abs=0.01)
    assert csp_violations(phone) == []


def test_the_stats_refresh_redraws_the_chart(phone, lead, worked) -> None:
    login(phone, "lead", "lead-password")
    phone.goto(reverse("dashboard-campaign", args=[worked.slug]))
    expect(phone.locator("canvas[data-drawn='hours']")).to_have_count(1)
    phone.locator("canvas[data-drawn='hours']").evaluate("(c) => { c.dataset.old = 'yes'; }")
    # What the 30 s poll does: the stats fragment, swapped in place of the old one.
    phone.evaluate(
        "() => htmx.ajax('GET', location.pathname, {target: '#stats', swap: 'outerHTML'})"
    )
    expect(phone.locator("canvas[data-old]")).to_have_count(0)
    expect(phone.locator("canvas[data-drawn='hours']")).to_have_count(1)
    assert phone.locator("canvas[data-chart='chart-hours']").evaluate(
        "(c) => Chart.getChart(c) !== undefined"
    )
    assert phone.evaluate("Object.keys(Chart.instances).length") == 1  # the old one destroyed


def test_checkpoint_charts_on_a_phone(phone, lead, campaign) -> None:
    checkpoint = Checkpoint.objects.create(
        campaign=campaign,
        name="ckpt",
        path="/m/ckpt",
        metrics={
            "evaluated_at": timezone.now().isoformat(),
            "summary": {"val_loss": 0.5},
            "best_of_n": {
                "n_problems": 2,
                "trials": 4,
                "prm": [[1, 0.5], [2, 0.6], [4, 0.75]],
                "orm": [[1, 0.5], [2, 0.55], [4, 0.6]],
                "majority": [[1, 0.5], [2, 0.5], [4, 0.5]],
            },
        },
        training_record={"history": [{"epoch": 1, "train_loss": 0.9, "val_loss": 1.0}]},
    )
    login(phone, "lead", "lead-password")
    phone.goto(reverse("dashboard-checkpoint", args=[checkpoint.pk]))
    bon = phone.locator("canvas[data-chart='chart-bon'][data-drawn='line']")
    expect(bon).to_be_visible()
    expect(phone.locator("canvas[data-chart='chart-training'][data-drawn='line']")).to_be_visible()
    assert page_overflow(phone) == 0
    drawn = bon.evaluate(
        """(c) => {
          const chart = Chart.getChart(c);
          return {
            series: chart.data.datasets.length,
            xTicks: chart.scales.x.ticks.map((t) => t.label),
            x: chart.options.scales.x.title.text,
            y: chart.options.scales.y.title.text,
          };
        }"""
    )
    assert drawn == {
        "series": 3,
        "xTicks": ["1", "2", "4"],  # log2 axis, N printed at the ticks
        "x": "N (samples per problem)",
        "y": "accuracy",
    }
    assert csp_violations(phone) == []
