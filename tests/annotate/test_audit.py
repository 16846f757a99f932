"""The audit trail: each lead action, through each door it has (admin, API, command, review
page), leaves one AuditEvent naming who (a command: its OS user), what and when; the admin
shows the trail and nobody can edit it there."""

from __future__ import annotations

import getpass

import pytest
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from annotate.models import AuditEvent, Checkpoint, Generation, Label, Sample
from annotate.review import accept, open_review
from tests.factories import (
    API,
    campaign_change_form,
    finished_label,
    make_generation,
    token_client,
)

pytestmark = pytest.mark.django_db
Action = AuditEvent.Action


def only_event(action: str) -> AuditEvent:
    events = list(AuditEvent.objects.filter(action=action))
    assert len(events) == 1, events
    return events[0]


def admin_client(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def scored_pool(campaign, problem, n: int = 3) -> None:
    for i in range(n):
        Sample.objects.create(
            campaign=campaign,
            problem=problem,
            external_id=f"s{i}",
            steps=[f"# Answer\n\n{i}"],
            answer=str(i),
            is_correct=i == 2,
            verifier_score=0.9 - i / 10,
            steps_hash=f"{i:032x}",
        )


def test_admin_selection_change_records_old_and_new(lead, campaign) -> None:
    client = admin_client(lead)
    data = campaign_change_form(client, campaign) | {"k": "7", "name": "Renamed"}
    url = reverse("admin:annotate_campaign_change", args=[campaign.pk])
    assert client.post(url, data).status_code == 302
    event = only_event(Action.CAMPAIGN_SETTINGS)
    assert (event.actor, event.actor_name, event.via) == (lead, "lead", "admin")
    assert event.campaign == campaign and event.detail["changed"] == {"k": ["2", "7"]}
    # A change outside the selection settings (the name) is not a selection change.
    data["name"] = "Renamed again"
    client.post(url, data)
    assert AuditEvent.objects.count() == 1


def test_api_campaign_create_records_its_selection_settings(lead) -> None:
    body = {"slug": "fresh", "name": "Fresh", "k": 5, "wrong_fraction": 0.5}
    response = token_client(lead).post(f"{API}/campaigns/", body, format="json")
    assert response.status_code == 201, response.content
    event = only_event(Action.CAMPAIGN_SETTINGS)
    assert (event.actor, event.via, event.target) == (lead, "api", "campaign fresh")
    assert event.detail["settings"]["k"] == "5" and event.detail["created"] is True


def test_admin_start_generation_is_recorded(lead, campaign, problem) -> None:
    scored_pool(campaign, problem)
    url = reverse("admin:annotate_campaign_changelist")
    body = {"action": "start_next_generation", "_selected_action": [campaign.pk]}
    admin_client(lead).post(url, body)
    generation = Generation.objects.get(campaign=campaign)
    event = only_event(Action.GENERATION_STARTED)
    assert (event.actor, event.via) == (lead, "admin")
    assert event.target == f"generation {generation.number}"


def test_api_start_generation_is_recorded_with_its_overrides(lead, campaign, problem) -> None:
    scored_pool(campaign, problem)
    url = f"{API}/campaigns/{campaign.slug}/generations/"
    response = token_client(lead).post(url, {"k": 1}, format="json")
    assert response.status_code == 201, response.content
    event = only_event(Action.GENERATION_STARTED)
    assert (event.actor, event.via) == (lead, "api")
    assert event.detail == {"scores": "imported", "overrides": {"k": "1"}}
    # A dry run starts nothing and records nothing.
    token_client(lead).post(url, {"dry_run": True}, format="json")
    assert AuditEvent.objects.count() == 1


def test_select_command_records_the_os_user(campaign, problem) -> None:
    scored_pool(campaign, problem)
    call_command("select", "--campaign", campaign.slug, "--k", "1", stdout=None)
    event = only_event(Action.GENERATION_STARTED)
    assert event.actor is None and event.actor_name == f"os:{getpass.getuser()}"
    assert event.via == "command" and event.detail["command"] == "select"


def test_admin_close_generation_is_recorded(lead, campaign) -> None:
    generation = make_generation(campaign)
    url = reverse("admin:annotate_generation_changelist")
    body = {"action": "close_generations", "_selected_action": [generation.pk]}
    admin_client(lead).post(url, body)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.COMPLETE
    event = only_event(Action.GENERATION_CLOSED)
    assert (event.actor, event.via, event.campaign) == (lead, "admin", campaign)
    admin_client(lead).post(url, body)  # already closed: nothing more happens
    assert AuditEvent.objects.count() == 1


def test_api_and_command_activation_are_recorded(lead, campaign, tmp_path) -> None:
    from tests.selector.prm.published import qwen_prm_checkpoint  # torch: only this test

    weights = qwen_prm_checkpoint(tmp_path / "prm")
    checkpoint = Checkpoint.objects.create(
        campaign=campaign, name="c", path=str(weights), adapter="qwen-prm", status="ready"
    )
    url = f"{API}/checkpoints/{checkpoint.pk}/activate/"
    response = token_client(lead).post(url, {}, format="json")
    assert response.status_code == 200, response.content
    event = only_event(Action.CHECKPOINT_ACTIVATED)
    assert (event.actor, event.via, event.target) == (lead, "api", f"checkpoint {checkpoint.pk}")
    event.delete()
    call_command(
        "register_checkpoint", str(weights), "--campaign", campaign.slug, "--activate", "--json"
    )
    event = only_event(Action.CHECKPOINT_ACTIVATED)
    assert event.actor is None and event.via == "command"
    assert event.target == f"checkpoint {campaign.checkpoints.latest('pk').pk}"


def a_label(labeler, sample) -> Label:
    generation = make_generation(sample.campaign)
    return finished_label(labeler, sample, generation, [1, 1], "solution")


def test_admin_label_edit_is_recorded(lead, labeler, sample) -> None:
    label = a_label(labeler, sample)
    client = admin_client(lead)
    url = reverse("admin:annotate_label_change", args=[label.pk])
    form = client.get(url).context["adminform"].form
    data = {
        name: form.initial.get(name) for name in form.fields if form.initial.get(name) is not None
    }
    data |= {"finish_reason": "found_error", "total_time_ms": "1234"}
    for prefix in ("ratings", "alternatives"):
        data |= {f"{prefix}-TOTAL_FORMS": "0", f"{prefix}-INITIAL_FORMS": "0"}
    response = client.post(url, data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    event = only_event(Action.LABEL_EDITED)
    assert (event.actor, event.via, event.target) == (lead, "admin", f"label {label.pk}")
    assert set(event.detail["changed"]) >= {"finish_reason", "total_time_ms"}


def test_review_decision_is_recorded(lead, labeler, sample) -> None:
    label = a_label(labeler, sample)
    review = open_review(sample.pk, "sampled")
    assert list(review.labels.all()) == [label]
    accept(review, label, lead)
    event = only_event(Action.LABEL_RESOLVED)
    assert (event.actor, event.via, event.target) == (lead, "web", f"review {review.pk}")
    assert event.detail == {"decision": "accepted", "label": label.pk}


def test_admin_shows_the_trail_read_only(lead, campaign) -> None:
    AuditEvent.record(lead, "admin", Action.GENERATION_STARTED, "generation 4", campaign=campaign)
    client = admin_client(lead)
    page = client.get(reverse("admin:annotate_auditevent_changelist")).content.decode()
    assert "generation 4" in page and "started a generation" in page
    event = AuditEvent.objects.get()
    change = reverse("admin:annotate_auditevent_change", args=[event.pk])
    client.post(change, {"target": "forged"})
    assert AuditEvent.objects.get().target == "generation 4"
    delete = reverse("admin:annotate_auditevent_delete", args=[event.pk])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    assert Label.objects.count() == 0
