"""`export_stepwise --exclude-gold --finished-only`: what is left out, and the count of each
reason, on the command's stderr and in the API's `Stepwise-Skipped` header."""

from __future__ import annotations

import io
import json

import pytest
from django.core.management import call_command

from annotate.io.stepwise import StepwiseExport
from annotate.models import GoldStandard
from tests.factories import (
    API,
    JSONL,
    finished_label,
    make_generation,
    make_sample,
    person,
    session_client,
)

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(campaign):
    """Two regular labels (one found_error, one give_up), one gold sample's label, and a
    bad_problem label that rated no step."""
    generation = make_generation(campaign, 0)
    a, b, c = (person(name, campaign) for name in ("ann", "bob", "cy"))
    regular, gold_sample = make_sample(campaign), make_sample(campaign)
    GoldStandard.objects.create(sample=gold_sample, ratings=[1, -1], finish_reason="found_error")
    finished_label(a, regular, generation, [1, -1], "found_error")
    finished_label(b, regular, generation, [1], "give_up")
    finished_label(c, regular, generation, [], "bad_problem")
    finished_label(a, gold_sample, generation, [1, 1, -1], "found_error")
    return campaign


def export(*flags: str, campaign) -> tuple[list[dict], str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("export_stepwise", "--campaign", campaign.slug, *flags, stdout=out, stderr=err)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


def test_without_flags_only_labels_with_no_rated_step_are_skipped(world):
    records, err = export(campaign=world)
    assert len(records) == 3
    assert "Skipped labels: 1 no_rated_step." in err
    assert "no_rated_step: it rated no step" in err


def test_exclude_gold_and_finished_only_leave_out_and_count(world):
    records, err = export("--exclude-gold", "--finished-only", campaign=world)
    assert [r["labels"] for r in records] == [[True, False]]
    # The bad_problem label is counted once, by the first rule that removes it.
    assert "Skipped labels: 1 gold, 2 not_finished." in err
    assert "gold: its sample is a gold (QC or screening) item" in err


def test_finished_only_alone_keeps_gold(world):
    records, err = export("--finished-only", campaign=world)
    assert sorted(len(r["labels"]) for r in records) == [2, 3]
    assert "Skipped labels: 2 not_finished." in err


def test_the_export_object_counts_what_the_stream_met(world):
    export_ = StepwiseExport(world, exclude_gold=True)
    assert len(list(export_.records())) == 2
    assert dict(export_.skipped) == {"gold": 1, "no_rated_step": 1}


def test_api_export_takes_the_flags_and_names_the_skips(world, lead):
    url = f"{API}/campaigns/{world.slug}/exports/stepwise/"
    client = session_client(lead)
    response = client.get(url, {"exclude_gold": "true", "finished_only": "true"}, HTTP_ACCEPT=JSONL)
    assert response.status_code == 200
    assert response["Stepwise-Skipped"] == "1 gold, 2 not_finished"
    lines = b"".join(response.streaming_content).decode().splitlines()
    assert [json.loads(line)["labels"] for line in lines] == [[True, False]]
    plain = client.get(url, HTTP_ACCEPT=JSONL)
    assert plain["Stepwise-Skipped"] == "none"  # the no-rated-step label is met while streaming
    assert len(b"".join(plain.streaming_content).splitlines()) == 3
