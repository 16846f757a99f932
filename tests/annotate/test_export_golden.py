"""The PRM800K export, byte for byte, against a file written before the export was sped up.

One campaign holds every shape the export writes: native labels of each finish reason, with
gaps in their ratings, flagged and unrated steps, rated and unrated alternatives, a stored
labeler id, a deleted labeler, screening and quality-control labels, selection scores and
missing verifier scores, text that json.dumps escapes; and imported PRM800K labels (phase 1
and 2, one kept verbatim). `export_prm800k_golden.jsonl` is that campaign's export as the
export wrote it before any speed-up; the API streams the same bytes.
"""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from rest_framework.test import APIClient

from annotate.io import export_prm800k, import_prm800k, iter_prm800k_lines
from annotate.models import (
    Alternative,
    Assignment,
    Campaign,
    Generation,
    Label,
    Problem,
    Sample,
    Selection,
    StepRating,
)
from selector.selection import steps_fingerprint
from tests.factories import DATA_DIR

GOLDEN = Path(__file__).with_name("export_prm800k_golden.jsonl")
SLUG = "golden"

pytestmark = pytest.mark.django_db

STEPS = [
    ["We add.", "Two and two.", "It is 5.", "# Answer\n\n5"],
    ['Quote " and \\ back\\slash', "tab\there\x01\x7f", "é → ∑ 😀", "# Answer\n\n4"],
    ["One.", "Two.", "Three.", "Four.", "Five.", "# Answer\n\n6"],
]

# (sample, ratings as (step, rating, flagged), finish reason, kind, alternatives)
NATIVE = [
    (0, [(0, 1, False), (1, 0, True), (2, -1, False)], "found_error", "regular", []),
    (0, [(0, 1, False), (1, -1, True)], "found_error", "regular", [(1, "Ü", 1), (0, "A", -1)]),
    (1, [(0, 1, False), (1, 1, False), (2, -1, True)], "found_error", "regular", [(0, "x", None)]),
    (1, [(0, 1, False)], "give_up", "regular", []),
    (2, [(0, 1, False), (1, None, True)], "bad_problem", "regular", []),
    (2, [(0, 1, False), (2, 1, False)], "give_up", "regular", []),  # a gap at step 1
    (2, [(s, 1, False) for s in range(6)], "solution", "screening", []),
    (0, [(0, 0, False), (1, 1, False), (2, 1, False), (3, 1, False)], "solution", "qc", []),
    (1, [(0, 1, False), (1, 1, False), (7, -1, False)], "found_error", "regular", []),
    (2, [], "bad_problem", "regular", []),
    (0, [(0, 1, False)], None, "regular", []),  # unfinished: not exported
]


def _sample(campaign, problem, index: int, steps: list[str], score: float | None) -> Sample:
    return Sample.objects.create(
        campaign=campaign,
        problem=problem,
        external_id=f"g{index}",
        steps=steps,
        answer=steps[-1].rsplit("\n", 1)[-1],
        is_correct=False,
        steps_hash=steps_fingerprint(steps).hex(),
        verifier_score=score,
    )


def _native(sample, user, generation, spec, number: int) -> Label:
    _, ratings, finish_reason, kind, alternatives = spec
    assignment = Assignment.objects.create(
        generation=generation, sample=sample, labeler=user, kind=kind, state="submitted"
    )
    label = Label.objects.create(
        assignment=assignment,
        sample=sample,
        labeler=user,
        finish_reason=finish_reason,
        total_time_ms=1000 + number,
        finished_at=datetime(2024, 5, 6, 7, 8, number, 1000 * number, tzinfo=UTC),
        is_quality_control=kind == "qc",
        labeler_uuid="0b0c8a1e-0000-4000-8000-000000000001" if number == 3 else "",
    )
    StepRating.objects.bulk_create(
        StepRating(label=label, step=step, rating=rating, flagged=flagged)
        for step, rating, flagged in ratings
    )
    error = next((step for step, rating, _ in ratings if rating == -1), 0)
    Alternative.objects.bulk_create(
        Alternative(label=label, step=error, index=index, text=text, rating=rating)
        for index, text, rating in alternatives
    )
    return label


def build_campaign() -> Campaign:
    """The campaign described in the module docstring."""
    campaign = Campaign.objects.create(slug=SLUG, name="Golden", k=2)
    problem = Problem.objects.create(
        campaign=campaign,
        unique_id="g/1",
        problem="What is $2+2$? ü",
        ground_truth_answer="4",
        ground_truth_solution="$2+2=\\boxed{4}$.",
    )
    generation = Generation.objects.create(campaign=campaign, number=3, status="open")
    samples = [
        _sample(campaign, problem, i, steps, score)
        for i, (steps, score) in enumerate(zip(STEPS, (0.25, None, 1e-05), strict=True))
    ]
    Selection.objects.create(
        generation=generation, sample=samples[0], rank=0, score=0.75, is_wrong=True
    )
    users = get_user_model().objects.bulk_create(
        get_user_model()(username=f"golden-{i}") for i in range(len(NATIVE))
    )
    labels = [
        _native(samples[spec[0]], user, generation, spec, number)
        for number, (spec, user) in enumerate(zip(NATIVE, users, strict=True))
    ]
    Label.objects.filter(pk=labels[5].pk).update(labeler=None)  # a deleted labeler's label
    _import_prm800k(campaign)
    return campaign


def _import_prm800k(campaign: Campaign) -> None:
    lines = (DATA_DIR / "prm800k_examples.jsonl").read_text().splitlines()
    odd = json.loads(lines[3])
    odd["question"]["problem"] = "Ünïcode ∑ problem\u2028 with \\ and \x7f"
    odd["label"]["steps"][0]["completions"][0]["text"] = "ü\x02"
    odd["question"]["pre_generated_steps"][0] = "ü\x02"
    verbatim = json.loads(lines[0])
    verbatim["question"]["extra_key"] = 1  # cannot be rebuilt from rows: kept verbatim
    records = [*lines, json.dumps(odd), json.dumps(verbatim)]
    import_prm800k(io.StringIO("\n".join(records) + "\n"), campaign)


def exported(campaign: Campaign) -> str:
    out = io.StringIO()
    export_prm800k(out, campaign)
    return out.getvalue()


def test_export_is_byte_identical_to_before():
    campaign = build_campaign()
    assert Label.objects.filter(sample__campaign=campaign, prm800k_steps__isnull=False).exists()
    assert exported(campaign) == GOLDEN.read_text(encoding="utf-8")


def test_command_and_api_write_the_same_bytes(tmp_path):
    build_campaign()
    out = tmp_path / "export.jsonl"
    call_command("export_prm800k", "--campaign", SLUG, "-o", str(out), verbosity=0)
    golden = GOLDEN.read_bytes()
    assert out.read_bytes() == golden
    staff = get_user_model().objects.create_user("golden-staff", is_staff=True)
    client = APIClient()
    client.force_authenticate(staff)
    response = client.get(f"/api/v1/campaigns/{SLUG}/exports/prm800k/")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == golden
    by_generation = client.get(f"/api/v1/campaigns/{SLUG}/exports/prm800k/?generation=-1")
    (line,) = b"".join(by_generation.streaming_content).splitlines()
    assert json.loads(line)["generation"] == -1


def test_an_export_left_early_leaves_the_connection_usable():
    """Closing the stream mid-way (a client that disconnects) cancels the query and rolls back
    its savepoint: the same connection goes on working."""
    campaign = build_campaign()
    lines = iter_prm800k_lines(campaign, chunk_size=2)
    first = next(lines)
    lines.close()
    assert first == GOLDEN.read_text(encoding="utf-8").splitlines()[0]
    assert Label.objects.filter(sample__campaign=campaign).count() == 25
    assert len(list(iter_prm800k_lines(campaign))) == 24
