"""The home page of a lead who labels nowhere (#14 item 7): their campaigns, how far the open
generations are, and the way to the dashboard, models, review and settings."""

from __future__ import annotations

import re

import pytest
from django.urls import reverse

from annotate.dashboard import lead_overview
from annotate.models import Campaign
from tests.factories import finish, make_generation, make_sample, make_task, open_slots

pytestmark = pytest.mark.django_db


@pytest.fixture
def progress(campaign, labeler):
    """Generation 0 complete (not counted), generation 1 open: 1 submitted, 1 claimed, 2 open."""
    old = make_generation(campaign, status="complete")
    open_slots(old, [make_sample(campaign)])
    generation = make_generation(campaign)
    done, _ = make_task(labeler, campaign, generation=generation)
    finish(done, [1, 1], "solution")
    make_task(labeler, campaign, generation=generation)
    open_slots(generation, [make_sample(campaign), make_sample(campaign)])
    Campaign.objects.create(slug="empty", name="<b>Empty</b>")
    return generation


def test_overview_counts_the_open_generations(progress):
    rows = {row.campaign.slug: row for row in lead_overview()}
    busy = rows["test-campaign"]
    assert busy.newest == 1
    assert busy.counts == {"submitted": 1, "in_progress": 1, "open": 2} and busy.total == 4
    assert [s.width for s in busy.segments] == [25, 25, 50]
    assert rows["empty"].newest is None and rows["empty"].total == 0


def test_a_lead_who_labels_nowhere_sees_their_campaigns(client, lead, campaign, progress):
    client.force_login(lead)
    html = client.get(reverse("labeler-home")).content.decode()
    row = re.search(r'<tr data-campaign="test-campaign">.*?</tr>', html, re.S).group(0)
    assert '<td class="num" data-stat="left">3</td>' in row
    assert "1 of 4 submitted" in row
    for url in (
        reverse("dashboard-campaign", args=[campaign.slug]),
        reverse("dashboard-models", args=[campaign.slug]),
        reverse("review-queue", args=[campaign.slug]),
        reverse("admin:annotate_campaign_change", args=[campaign.pk]),
    ):
        assert f'href="{url}"' in row
    assert "&lt;b&gt;Empty&lt;/b&gt;" in html and "<b>Empty</b>" not in html
    assert "nothing open" in html and 'data-action="next"' not in html


def test_a_lead_who_labels_gets_the_queue(client, lead, campaign, progress):
    campaign.labelers.add(lead)
    client.force_login(lead)
    html = client.get(reverse("labeler-home")).content.decode()
    assert 'data-home="labeler"' in html and 'data-action="next"' in html
