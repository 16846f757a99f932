"""The model-quality dashboard pages: staff only, model-written text escaped, the numbers the
loop stored shown per checkpoint and per generation."""

from __future__ import annotations

import json
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from annotate.model_dashboard import line_chart
from annotate.models import Checkpoint, Generation

SUMMARY = {
    "val_loss": 0.4321,
    "step_auc": 0.812,
    "first_error_f1": 0.5,
    "gold_first_error_f1": None,
    "best_of_n": 0.75,
}


def metrics(summary: dict, gate: dict | None = None) -> dict:
    data = {
        "n_val_examples": 6,
        "n_val_problems": 2,
        "n_val_labels": 15,
        "n_test_problems": 2,
        "n_test_samples": 8,
        "n_gold": 0,
    }
    out = {
        "summary": summary,
        "data": data,
        "threshold": 0.5,
        "evaluated_at": "2026-01-01T00:00:00+00:00",
        "labeled": {
            "first_error": {
                "acc_erroneous": 0.5,
                "acc_correct": 0.5,
                "f1": 0.5,
                "n_erroneous": 2,
                "n_correct": 4,
            }
        },
        "best_of_n": {
            "prm": [[1, 0.5], [2, 0.625], [4, 0.75]],
            "orm": [[1, 0.5], [2, 0.55], [4, 0.6]],
            "majority": [[1, 0.5], [2, 0.5], [4, 0.5]],
            "n_problems": 2,
            "trials": 200,
        },
    }
    if gate:
        out["gate"] = gate
    return out


@pytest.fixture
def history(campaign):
    """Generation 0 with a bootstrap model, a promoted retraining, generation 1 using it."""
    boot = Checkpoint.objects.create(
        campaign=campaign,
        name="bootstrap-1",
        path="/m/b",
        base_model="bootstrap",
        status=Checkpoint.Status.READY,
        metrics=metrics({**SUMMARY, "val_loss": 1.1}),
    )
    gate = {
        "metric": "val_loss",
        "decision": "promoted",
        "reason": "val_loss beats",
        "candidate": SUMMARY,
        "active": {**SUMMARY, "val_loss": 0.9},
        "active_checkpoint": boot.pk,
        "data": {},
    }
    new = Checkpoint.objects.create(
        campaign=campaign,
        name="<script>alert(1)</script>",
        path="/m/<b>",
        status="active",
        trained_on_generation=0,
        trained_on_labels=42,
        metrics=metrics(SUMMARY, gate),
        training_record={
            "history": [
                {"epoch": 1, "train_loss": 1.0, "val_loss": 0.9},
                {"epoch": 2, "train_loss": 0.7, "val_loss": 0.6},
            ],
        },
        retrain_trigger="label_target",
        retrain_stage="done",
    )
    rejected = Checkpoint.objects.create(
        campaign=campaign,
        name="gen1-rejected",
        path="/m/r",
        status="rejected",
        trained_on_generation=1,
        metrics=metrics(
            {**SUMMARY, "val_loss": 0.5},
            {
                **gate,
                "decision": "rejected",
                "candidate": {**SUMMARY, "val_loss": 0.5},
                "active": SUMMARY,
                "active_checkpoint": new.pk,
            },
        ),
    )
    now = timezone.now()
    Generation.objects.create(
        campaign=campaign, number=0, checkpoint=boot, status="complete", opened_at=now
    )
    Generation.objects.create(
        campaign=campaign, number=1, checkpoint=new, status="open", opened_at=now
    )
    campaign.activate(new)
    return boot, new, rejected


@pytest.mark.django_db
@pytest.mark.parametrize("page", ["models", "checkpoint"])
def test_pages_are_for_staff_only(client, labeler, history, campaign, page):
    url = (
        reverse("dashboard-models", args=[campaign.slug])
        if page == "models"
        else reverse("dashboard-checkpoint", args=[history[1].pk])
    )
    response = client.get(url)
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]
    client.force_login(labeler)
    assert client.get(url).status_code == 403
    assert client.post(url).status_code in (403, 405)


@pytest.mark.django_db
def test_campaign_page_shows_generations_checkpoints_and_gates(client, lead, history, campaign):
    boot, new, rejected = history
    client.force_login(lead)
    response = client.get(reverse("dashboard-models", args=[campaign.slug]))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    # Which checkpoint each generation used.
    row0 = re.search(r'<tr data-generation="0">.*?</tr>', html, re.S).group(0)
    row1 = re.search(r'<tr data-generation="1">.*?</tr>', html, re.S).group(0)
    assert f'data-checkpoint="{boot.pk}"' in row0 and "1.1000" in row0
    assert f'data-checkpoint="{new.pk}"' in row1 and "0.4321" in row1
    # The gate results of both retrainings, with their numbers.
    promoted = re.search(rf'<tr data-retraining="{new.pk}">.*?</tr>', html, re.S).group(0)
    assert "promoted" in promoted and "0.4321" in promoted and "0.9000" in promoted
    refused = re.search(rf'<tr data-retraining="{rejected.pk}">.*?</tr>', html, re.S).group(0)
    assert "rejected" in refused and "0.5000" in refused
    # The quality chart is data for Chart.js: one series per line with data.
    assert len(chart_specs(html)["chart-quality"]["series"]) == 3
    assert "cdn" not in html.lower()


@pytest.mark.django_db
def test_checkpoint_page_shows_metrics_and_best_of_n_curve(client, lead, history):
    new = history[1]
    client.force_login(lead)
    html = client.get(reverse("dashboard-checkpoint", args=[new.pk])).content.decode()
    assert "&lt;script&gt;" in html and "<script>alert" not in html
    assert "/m/&lt;b&gt;" in html
    assert re.search(r'data-metric="val_loss">.*?0\.4321', html, re.S)
    assert re.search(r'data-metric="step_auc">.*?0\.812', html, re.S)
    assert "Promotion gate: promoted" in html
    assert re.search(r'<tr data-n="4">.*?0\.750.*?0\.600.*?0\.500', html, re.S)
    # Best-of-N (3 methods) and the training curve (2 lines).
    specs = chart_specs(html)
    assert len(specs["chart-bon"]["series"]) == 3 and len(specs["chart-training"]["series"]) == 2
    assert specs["chart-bon"]["log2_x"] is True
    assert 'aria-label="Best-of-N accuracy"' in html


@pytest.mark.django_db
def test_an_unevaluated_checkpoint_page_says_so(client, lead, campaign):
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="fresh", path="/m/f")
    client.force_login(lead)
    html = client.get(reverse("dashboard-checkpoint", args=[checkpoint.pk])).content.decode()
    assert "Not evaluated yet" in html and chart_specs(html) == {}


def chart_specs(html: str) -> dict:
    """The charts' data by id, as the page's json_script elements carry it."""
    found = re.findall(r'<script id="(chart-[\w-]+)" type="application/json">(.*?)</script>', html)
    return {key: json.loads(text) for key, text in found}


def test_line_chart_keeps_the_points_with_a_value():
    chart = line_chart(
        [("a", [(1, 0.0), (2, None), (4, 1.0)]), ("b", [(1, None)])],
        x_label="N",
        y_label="acc",
        log2_x=True,
        y_range=(0.0, 1.0),
    )
    assert chart.spec["series"] == [{"name": "a", "points": [(1.0, 0.0), (4.0, 1.0)]}]
    assert chart.spec["x_ticks"] == [1.0, 4.0] and chart.spec["y_range"] == (0.0, 1.0)
    assert not chart.empty
    assert line_chart([("b", [(1, None)])], x_label="x", y_label="y").empty
