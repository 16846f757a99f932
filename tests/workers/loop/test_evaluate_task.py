"""The `gpu`-queue evaluation task behind the API's checkpoint evaluate endpoint."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotate.models import Checkpoint
from tests.factories import label_train_samples, make_campaign_pool
from workers.tasks import evaluate_checkpoint_metrics


@pytest.mark.django_db
def test_evaluate_task_stores_the_same_metrics_as_the_command(campaign, labeler, tiny_loop):
    make_campaign_pool(campaign)
    label_train_samples(campaign, labeler)
    out = io.StringIO()
    call_command("train_prm", "--campaign", campaign.slug, "--epochs", "2", "--json", stdout=out)
    checkpoint = Checkpoint.objects.get(pk=json.loads(out.getvalue())["checkpoint"])
    assert not checkpoint.metrics.get("summary")

    summary = evaluate_checkpoint_metrics.apply(args=(checkpoint.pk, campaign.pk)).get()

    checkpoint.refresh_from_db()
    assert checkpoint.metrics["summary"] == summary
    assert 0.0 <= summary["best_of_n"] <= 1.0
    assert checkpoint.metrics["best_of_n"]["prm"][0][0] == 1
