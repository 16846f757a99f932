"""Marking gold in the admin: from samples with a form, from finished labels, and verdicts."""

import pytest
from django.contrib.admin.helpers import ACTION_CHECKBOX_NAME
from django.urls import reverse

from annotate.models import Assignment, Generation, GoldStandard, Label, ScreeningResult
from tests.factories import finish


@pytest.fixture
def admin_client_lead(client, lead):
    client.force_login(lead)
    return client


def _action(client, model: str, action: str, ids: list[int]):
    return client.post(
        reverse(f"admin:annotate_{model}_changelist"),
        {"action": action, ACTION_CHECKBOX_NAME: [str(i) for i in ids]},
    )


def test_mark_samples_as_gold_walks_through_each(admin_client_lead, make_sample, lead):
    first, second = make_sample(3), make_sample(2)
    response = _action(admin_client_lead, "sample", "mark_gold_screening", [first.pk, second.pk])
    assert response.status_code == 302
    form_url = response.url
    assert form_url.startswith(reverse("admin:annotate_goldstandard_mark", args=[first.pk]))

    page = admin_client_lead.get(form_url)
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('<select name="step_') == 3
    assert "Step 1 of sample" in html and "$x_0 = 0$" in html
    assert "1 left" in html

    saved = admin_client_lead.post(
        form_url,
        {
            "purpose": "screening",
            "finish_reason": "found_error",
            "step_0": "1",
            "step_1": "-1",
            "step_2": "",
        },
    )
    gold = GoldStandard.objects.get(sample=first)
    assert (gold.purpose, gold.ratings, gold.finish_reason) == ("screening", [1, -1], "found_error")
    assert gold.created_by == lead
    assert saved.url.startswith(reverse("admin:annotate_goldstandard_mark", args=[second.pk]))

    done = admin_client_lead.post(
        saved.url,
        {"purpose": "screening", "finish_reason": "solution", "step_0": "1", "step_1": "0"},
    )
    assert done.url == reverse("admin:annotate_goldstandard_changelist")
    assert GoldStandard.objects.get(sample=second).ratings == [1, 0]


def test_invalid_gold_is_refused_with_a_message(admin_client_lead, make_sample):
    sample = make_sample(3)
    url = reverse("admin:annotate_goldstandard_mark", args=[sample.pk]) + "?purpose=qc"
    response = admin_client_lead.post(
        url, {"purpose": "qc", "finish_reason": "solution", "step_0": "1", "step_1": "-1"}
    )
    assert response.status_code == 200
    assert "Finish reason is found_error exactly when a step is rated" in response.content.decode()
    assert not GoldStandard.objects.filter(sample=sample).exists()


def test_form_prefills_existing_gold(admin_client_lead, make_sample):
    sample = make_sample(2)
    GoldStandard.objects.create(
        sample=sample, purpose="qc", ratings=[0, -1], finish_reason="found_error"
    )
    url = reverse("admin:annotate_goldstandard_mark", args=[sample.pk]) + "?purpose=qc"
    form = admin_client_lead.get(url).context["form"]
    assert form.initial["step_0"] == "0" and form.initial["step_1"] == "-1"


def test_labeler_cannot_open_the_gold_form(client, labeler, make_sample):
    client.force_login(labeler)
    response = client.get(reverse("admin:annotate_goldstandard_mark", args=[make_sample().pk]))
    assert response.status_code == 302
    assert "/admin/login/" in response.url


def test_use_finished_label_as_gold(admin_client_lead, campaign, labeler, make_sample):
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    done = Assignment.objects.create(
        generation=generation, sample=make_sample(3), labeler=labeler, state="in_progress"
    )
    label = finish(done, [1, 0, -1], "found_error")
    pending = Assignment.objects.create(
        generation=generation, sample=make_sample(3), labeler=labeler, state="in_progress"
    )
    unfinished = Label.for_assignment(pending)
    response = _action(admin_client_lead, "label", "use_as_gold_qc", [label.pk, unfinished.pk])
    assert response.status_code == 302
    gold = GoldStandard.objects.get()
    assert (gold.sample_id, gold.purpose, gold.ratings) == (done.sample_id, "qc", [1, 0, -1])
    messages = [str(m) for m in response.wsgi_request._messages]
    assert any("not finished" in m for m in messages)


def test_let_failed_labeler_pass(admin_client_lead, campaign, labeler, lead):
    result = ScreeningResult.objects.create(
        campaign=campaign, labeler=labeler, status="failed", agreement=0.5, items=4
    )
    _action(admin_client_lead, "screeningresult", "let_pass", [result.pk])
    result.refresh_from_db()
    assert result.passed and result.overridden_by == lead


def test_admin_pages_render_with_the_quality_actions(
    admin_client_lead, campaign, labeler, make_sample
):
    generation = Generation.objects.create(campaign=campaign, number=0, status="open")
    Label.for_assignment(
        Assignment.objects.create(
            generation=generation, sample=make_sample(), labeler=labeler, state="in_progress"
        )
    )
    samples = admin_client_lead.get(reverse("admin:annotate_sample_changelist")).content.decode()
    assert "Mark as gold (Quality control)" in samples and "Mark as gold (Screening)" in samples
    labels = admin_client_lead.get(reverse("admin:annotate_label_changelist")).content.decode()
    assert "Use as gold (Quality control)" in labels
    for name in ("goldstandard", "screeningresult"):
        assert (
            admin_client_lead.get(reverse(f"admin:annotate_{name}_changelist")).status_code == 200
        )
