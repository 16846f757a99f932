"""The task page's alternatives to the erroneous step (PRM800K phase 2) and its automatic
sources' suggestions, server side: who may rate, what is stored, and that the poll only reads."""

import re

import pytest
from django.db import connection
from django.test import Client
from django.urls import reverse

from annotate.models import Alternative, LabelSource, SourceLabel
from tests.factories import make_task

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE)\b", re.IGNORECASE)


def _client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def found(labeler, campaign):
    """The labeler's task finished with a −1 at step 2 (index 1), with two alternatives."""
    assignment, label = make_task(labeler, campaign)
    label.rate(0, 1)
    label.rate(1, -1)
    Alternative.store(label.pk, 1, ["Then $x^2 = 4$, since $2 \\cdot 2 = 4$.", "<b>x</b> is 4"])
    return assignment, label


def _rate(client, assignment, alternative, rating):
    url = reverse("task-rate-alternative", args=[assignment.pk, alternative.pk])
    return client.post(url, {"rating": rating}, HTTP_HX_REQUEST="true")


def test_the_finished_task_lists_the_alternatives_escaped(labeler, found):
    assignment, _ = found
    html = _client(labeler).get(reverse("task", args=[assignment.pk])).content.decode()
    assert 'id="alternatives"' in html
    assert "Other versions of step 2" in html
    assert "<b>x</b>" not in html and "&lt;b&gt;x&lt;/b&gt;" in html
    assert html.count("data-alt-current") == 1
    assert "Proposing alternatives" not in html


def test_the_owner_rates_an_alternative(labeler, found):
    assignment, label = found
    first, second = label.alternatives.order_by("index")
    response = _rate(_client(labeler), assignment, first, "-1")
    assert response.status_code == 200
    html = response.content.decode()
    assert html.lstrip().startswith('<section id="alternatives"')
    assert re.search(r'id="alternative-1"[^>]*data-alt-current', html)
    first.refresh_from_db()
    assert first.rating == -1 and first.rated_at is not None
    assert _rate(_client(labeler), assignment, first, "1").status_code == 200  # re-rated
    first.refresh_from_db()
    second.refresh_from_db()
    assert (first.rating, second.rating) == (1, None)


def test_another_labeler_gets_404(other_labeler, campaign, found):
    assignment, label = found
    campaign.labelers.add(other_labeler)
    alternative = label.alternatives.first()
    assert _rate(_client(other_labeler), assignment, alternative, "1").status_code == 404
    url = reverse("task-alternatives", args=[assignment.pk])
    assert _client(other_labeler).get(url, HTTP_HX_REQUEST="true").status_code == 404
    alternative.refresh_from_db()
    assert alternative.rating is None


def test_an_alternative_of_another_label_is_404(labeler, campaign, found):
    assignment, _ = found
    _, mine = make_task(labeler, campaign)
    mine.rate(0, -1)
    Alternative.store(mine.pk, 0, ["elsewhere"])
    elsewhere = mine.alternatives.get()
    assert _rate(_client(labeler), assignment, elsewhere, "1").status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.rating is None


@pytest.mark.parametrize("rating", ["2", "", "x", "-2", "1.0"])
def test_an_invalid_rating_is_400(labeler, found, rating):
    assignment, label = found
    alternative = label.alternatives.first()
    assert _rate(_client(labeler), assignment, alternative, rating).status_code == 400
    alternative.refresh_from_db()
    assert alternative.rating is None


def test_a_reopened_label_refuses_with_409(labeler, found):
    assignment, label = found
    client = _client(labeler)
    undo = client.post(reverse("task-undo", args=[assignment.pk]), HTTP_HX_REQUEST="true")
    assert undo.status_code == 200
    label.refresh_from_db()
    assert label.finish_reason is None
    alternative = label.alternatives.first()
    response = _rate(client, assignment, alternative, "0")
    assert response.status_code == 409
    assert "Not saved" in response.content.decode()
    alternative.refresh_from_db()
    assert alternative.rating is None


def test_rating_needs_post_and_csrf(labeler, found):
    assignment, label = found
    url = reverse("task-rate-alternative", args=[assignment.pk, label.alternatives.first().pk])
    client = Client(enforce_csrf_checks=True)
    client.force_login(labeler)
    assert client.get(url).status_code == 405
    assert client.post(url, {"rating": "1"}).status_code == 403


def _writes(action) -> list[str]:
    writes = []

    def record(execute, sql, params, many, context):
        if WRITE.match(sql):
            writes.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        action()
    return writes


def test_waiting_for_alternatives_polls_a_get_that_writes_nothing(labeler, campaign):
    campaign.generator_model = "test-model"
    campaign.alternatives = 3
    campaign.save()
    assignment, label = make_task(labeler, campaign)
    label.rate(0, -1)
    client = _client(labeler)
    page = client.get(reverse("task", args=[assignment.pk])).content.decode()
    poll = reverse("task-alternatives", args=[assignment.pk])
    assert "Proposing alternatives…" in page
    assert f'hx-get="{poll}" hx-trigger="every 2s"' in page

    responses = []
    assert _writes(lambda: responses.append(client.get(poll, HTTP_HX_REQUEST="true"))) == []
    assert responses[0].status_code == 200
    assert 'hx-trigger="every 2s"' in responses[0].content.decode()

    Alternative.store(label.pk, 0, ["Let $x = 3$."])
    assert _writes(lambda: responses.append(client.get(poll, HTTP_HX_REQUEST="true"))) == []
    html = responses[1].content.decode()
    assert "hx-trigger" not in html  # the poll stops
    assert "Let" in html and "data-alt-current" in html


def test_no_alternatives_block_without_a_generator(labeler, campaign):
    assignment, label = make_task(labeler, campaign)
    label.rate(0, -1)
    html = _client(labeler).get(reverse("task", args=[assignment.pk])).content.decode()
    assert 'id="alternatives"' not in html and "Proposing" not in html


# --- suggestions from automatic sources ------------------------------------------------------


def test_a_shown_suggestion_appears_and_a_hidden_one_does_not(labeler, campaign):
    assignment, _ = make_task(labeler, campaign)
    client = _client(labeler)
    url = reverse("task", args=[assignment.pk])
    assert "data-suggestions" not in client.get(url).content.decode()  # off by default

    hidden = LabelSource.objects.create(campaign=campaign, name="judge", kind="hard")
    SourceLabel.objects.create(source=hidden, sample=assignment.sample, ratings=[1, -1])
    assert "data-suggestions" not in client.get(url).content.decode()

    shown = LabelSource.objects.create(
        campaign=campaign, name="mc", kind="soft", show_to_labelers=True
    )
    SourceLabel.objects.create(source=shown, sample=assignment.sample, scores=[0.9, 0.8, 0.1])
    html = client.get(url).content.decode()
    assert "data-suggestions" in html
    assert 'data-suggestion="mc"' in html and "mc: first error at step 3" in html
    assert 'data-suggestion="judge"' not in html


def test_a_lead_sees_the_suggestions_on_a_read_only_task(lead, labeler, campaign):
    assignment, _ = make_task(labeler, campaign)
    source = LabelSource.objects.create(
        campaign=campaign, name="mc", kind="hard", show_to_labelers=True
    )
    SourceLabel.objects.create(source=source, sample=assignment.sample, ratings=[1, 1, 1, 1])
    html = _client(lead).get(reverse("task", args=[assignment.pk])).content.decode()
    assert "mc: no error" in html
