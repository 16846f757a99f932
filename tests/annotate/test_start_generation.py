"""Starting the next generation while the open one still has work (#14 item 7): the lead is
asked first, on a page that writes nothing, and chooses to close the open one or keep it."""

from __future__ import annotations

import re

import pytest
from django.contrib.auth import get_user_model
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from annotate.generations import preview_selection
from annotate.models import Assignment, Checkpoint, Generation
from tests.factories import make_generation, make_pool, make_task, open_slots

pytestmark = pytest.mark.django_db


@pytest.fixture
def busy(campaign, labeler):
    """Generation 0 open with two unclaimed slots and one claimed task; a scored pool."""
    pool = make_pool(campaign)
    for rank, pk in enumerate(pool):
        campaign.samples.filter(pk=pk).update(verifier_score=1 - rank / len(pool))
    generation = make_generation(campaign)
    open_slots(generation, list(campaign.samples.filter(pk__in=pool[:2])))
    make_task(labeler, campaign, generation=generation)
    return generation


def confirm_url(campaign) -> str:
    return reverse("admin:annotate_campaign_start_generation", args=[campaign.pk])


def run_action(client, campaign):
    return client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "start_next_generation", "_selected_action": [campaign.pk]},
    )


def test_the_action_asks_first_when_work_is_open(client, lead, campaign, busy):
    client.force_login(lead)
    response = run_action(client, campaign)
    assert response.status_code == 302 and response.url == confirm_url(campaign)
    assert list(Generation.objects.values_list("number", flat=True)) == [0]


def test_the_page_says_what_would_happen_and_writes_nothing(client, lead, campaign, busy):
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="prm-7", path="/m/7")
    campaign.active_checkpoint = checkpoint
    campaign.save()
    client.force_login(lead)
    with CaptureQueriesContext(connection) as queries:
        html = client.get(confirm_url(campaign)).content.decode()
    writes = [q["sql"] for q in queries if q["sql"].split()[0] in ("INSERT", "UPDATE", "DELETE")]
    assert writes == []
    assert '<tr data-open-generation="0"><td>0</td><td data-stat="open">2</td>' in html
    assert '<td data-stat="in_progress">1</td>' in html
    assert "checkpoint <a" in html and "prm-7</a> (the active one)" in html
    assert f"k = {campaign.k}" in html
    # The active checkpoint has scored nothing yet: the page says why there is no preview.
    assert 'data-plan="preview">' in html and "0 of 0 scored pool samples" in html
    assert 'data-action="close-and-start"' in html and 'data-action="keep-and-start"' in html


def test_the_preview_counts_what_imported_scores_would_pick(client, lead, campaign, busy):
    client.force_login(lead)
    html = client.get(confirm_url(campaign)).content.decode()
    assert "no active checkpoint, so the pipeline first trains a bootstrap one" in html
    pool = campaign.samples.filter(verifier_score__isnull=False).count()
    picked = preview_selection(campaign, scores="imported")
    assert 0 < len(picked) < pool
    assert f"{len(picked)} of {pool} scored pool samples" in html
    assert f"{int(picked.wrong.sum())} with a wrong answer" in html
    # The first picks, named, in selection order.
    first = campaign.samples.get(pk=int(picked.sample[0]))
    row = re.search(r'<tr data-pick="0">.*?</tr>', html, re.S).group(0)
    assert first.external_id in row and first.problem.unique_id in row
    assert f"{picked.score[0]:.3f}" in row


def test_close_and_start(client, lead, campaign, busy, monkeypatch):
    from annotate import dispatch

    monkeypatch.setattr(dispatch, "start_pipeline", lambda generation: None)
    client.force_login(lead)
    response = client.post(confirm_url(campaign), {"open_generations": "close"})
    assert response.status_code == 302 and "generation" in response.url
    busy.refresh_from_db()
    assert busy.status == Generation.Status.COMPLETE
    assert Generation.objects.get(number=1).status == Generation.Status.PENDING
    # The claimed task is still the labeler's to finish.
    assert Assignment.objects.filter(state=Assignment.State.IN_PROGRESS).count() == 1


def test_keep_and_start(client, lead, campaign, busy, monkeypatch):
    from annotate import dispatch

    monkeypatch.setattr(dispatch, "start_pipeline", lambda generation: None)
    client.force_login(lead)
    client.post(confirm_url(campaign), {"open_generations": "keep"})
    busy.refresh_from_db()
    assert busy.status == Generation.Status.OPEN
    assert Generation.objects.filter(number=1, status=Generation.Status.PENDING).exists()


def test_a_refusal_comes_back_to_the_page(client, lead, campaign, busy):
    Generation.objects.create(campaign=campaign, number=1, status=Generation.Status.SCORING)
    client.force_login(lead)
    response = client.post(confirm_url(campaign), {"open_generations": "close"}, follow=True)
    assert "generation 1 is still scoring" in response.content.decode()
    busy.refresh_from_db()
    assert busy.status == Generation.Status.OPEN  # the close was rolled back with the refusal


def test_only_leads_who_may_change_campaigns(client, labeler, campaign, busy):
    client.force_login(labeler)
    for response in (client.get(confirm_url(campaign)), client.post(confirm_url(campaign))):
        assert response.status_code == 302 and reverse("admin:login") in response.url
    viewer = get_user_model().objects.create_user("viewer", is_staff=True)
    client.force_login(viewer)
    assert client.get(confirm_url(campaign)).status_code == 403
    assert client.post(confirm_url(campaign), {"open_generations": "close"}).status_code == 403
    assert Generation.objects.count() == 1


def test_several_campaigns_start_those_without_open_work(client, lead, campaign, busy, monkeypatch):
    from annotate import dispatch
    from annotate.models import Campaign

    started = []
    monkeypatch.setattr(dispatch, "start_pipeline", started.append)
    idle = Campaign.objects.create(slug="idle", name="Idle")
    client.force_login(lead)
    response = client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "start_next_generation", "_selected_action": [campaign.pk, idle.pk]},
        follow=True,
    )
    html = response.content.decode()
    assert [g.campaign.slug for g in started] == ["idle"]
    assert "Test-campaign: its open generation still has work." in html  # the admin capitalises
    assert f'href="{confirm_url(campaign)}"' in html
