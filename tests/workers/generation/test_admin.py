"""A lead configures the generator in the admin and starts a generation that generates."""

import pytest
from django.urls import reverse

from annotate.models import Campaign, Generation
from tests.factories import campaign_change_form, make_problems

pytestmark = pytest.mark.django_db


def test_lead_configures_the_generator(client, lead, campaign, monkeypatch):
    client.force_login(lead)
    response = client.get(reverse("admin:annotate_campaign_change", args=[campaign.pk]))
    assert b"Generator" in response.content and b"generator_base_url" in response.content
    data = campaign_change_form(client, campaign)
    data.update(
        generator_n="3",
        generator_base_url="http://gpu-host:8000/v1",
        generator_model="Qwen/Qwen2.5-Math-7B-Instruct",
        generator_api_key_env="STEPWISE_TEST_KEY",
        generator_stop='["\\n\\n\\n"]',
        generator_temperature="0.7",
        alternatives="2",
    )
    response = client.post(reverse("admin:annotate_campaign_change", args=[campaign.pk]), data)
    assert response.status_code == 302, response.context["adminform"].form.errors
    campaign.refresh_from_db()
    assert campaign.generator_n == 3 and campaign.generator_stop == ["\n\n\n"]

    make_problems(campaign, 1)
    monkeypatch.setenv("STEPWISE_TEST_KEY", "sk-secret")
    from annotate.generations import begin_generation

    generation = begin_generation(campaign)
    assert generation.generator["api_key_env"] == "STEPWISE_TEST_KEY"
    assert "sk-secret" not in str(generation.generator)
    assert generation.generator["temperature"] == 0.7 and generation.generator["n"] == 3


def test_admin_refuses_generator_settings_the_generator_refuses(client, lead, campaign):
    client.force_login(lead)
    data = campaign_change_form(client, campaign)
    data.update(generator_n="2", generator_model="m", generator_top_p="2")
    url = reverse("admin:annotate_campaign_change", args=[campaign.pk])
    response = client.post(url, data)
    assert response.status_code == 200
    assert "top_p" in str(response.context["adminform"].form.errors)
    data.update(generator_top_p="1", generator_base_url="")
    response = client.post(url, data)
    assert "base URL" in str(response.context["adminform"].form.errors)
    assert Campaign.objects.get(pk=campaign.pk).generator_n == 0


def test_start_next_generation_queues_the_generating_stage(
    client, lead, campaign, monkeypatch, django_capture_on_commit_callbacks
):
    from annotate import dispatch

    sent = []
    monkeypatch.setattr(dispatch, "send", lambda name, *args, queue: sent.append((name, queue)))
    campaign.generator_n, campaign.generator_model = 2, "m"
    campaign.generator_base_url = "http://gpu-host:8000/v1"
    campaign.save()
    client.force_login(lead)
    url = reverse("admin:annotate_campaign_changelist")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "start_next_generation", "_selected_action": [campaign.pk]})
    assert sent == [(dispatch.GENERATE_SAMPLES, "default")]
    assert Generation.objects.get(campaign=campaign).generates

    campaign.generator_backend = "local"
    campaign.save()
    Generation.objects.update(status="open")
    with django_capture_on_commit_callbacks(execute=True):
        client.post(url, {"action": "start_next_generation", "_selected_action": [campaign.pk]})
    assert sent[-1] == (dispatch.GENERATE_SAMPLES, "gpu")
