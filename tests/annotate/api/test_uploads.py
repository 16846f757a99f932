"""Uploads are atomic and line-numbered like the import commands; uploads and exports stream
(the body is never held whole, the export's memory does not grow with its size)."""

from __future__ import annotations

import io
import json
import tracemalloc

import pytest
from django.utils import timezone

from annotate.api import views
from annotate.models import Campaign, Label, Problem, Sample, StepRating
from tests.factories import API, JSONL, jsonl, session_client, token_client


def problem_line(i: int) -> dict:
    return {
        "unique_id": f"p/{i}",
        "problem": f"What is {i}+{i}?",
        "ground_truth_answer": str(2 * i),
    }


@pytest.mark.django_db
def test_malformed_problem_line_is_a_400_naming_it_and_writes_nothing(lead, campaign) -> None:
    body = jsonl([problem_line(1), problem_line(2)]) + b'{"unique_id": "p/3", "problem": \n'
    body += jsonl([problem_line(4)])
    response = token_client(lead).post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/", body, content_type=JSONL
    )
    assert response.status_code == 400
    assert response.json()["line"] == 3
    assert response.json()["detail"].startswith("line 3:")
    assert Problem.objects.filter(campaign=campaign).count() == 0


@pytest.mark.django_db
def test_sample_line_with_unknown_problem_rolls_back_the_whole_upload(lead, problem) -> None:
    good = {"id": "a", "unique_id": problem.unique_id, "steps": ["1+1=2", "# Answer\n\n2"]}
    bad = {"id": "b", "unique_id": "no/such/problem", "steps": ["x"]}
    before = Sample.objects.count()
    response = token_client(lead).post(
        f"{API}/campaigns/{problem.campaign.slug}/samples/upload/",
        jsonl([good, good | {"id": "c"}, bad]),
        content_type=JSONL,
    )
    assert response.status_code == 400
    assert response.json()["line"] == 3 and "no/such/problem" in response.json()["detail"]
    assert Sample.objects.count() == before


@pytest.mark.django_db
def test_invalid_utf8_names_its_line(lead, campaign) -> None:
    body = jsonl([problem_line(1)]) + b'{"unique_id": "p/\xff", "problem": "x"}\n'
    response = token_client(lead).post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/", body, content_type=JSONL
    )
    assert response.status_code == 400
    assert response.json() == {"detail": "line 2: not valid UTF-8 (byte 18 of the line)", "line": 2}
    assert not Problem.objects.exists()


@pytest.mark.django_db
def test_multipart_upload_with_a_bad_line_is_refused_too(lead, campaign) -> None:
    upload = io.BytesIO(jsonl([problem_line(1)]) + b"[1, 2]\n")
    upload.name = "problems.jsonl"
    response = token_client(lead).post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/?split=test",
        {"file": upload},
        format="multipart",
    )
    assert response.status_code == 400 and response.json()["line"] == 2
    assert not Problem.objects.exists()


@pytest.mark.django_db
def test_upload_split_and_byte_order_mark(lead, campaign) -> None:
    body = b"\xef\xbb\xbf" + jsonl([problem_line(1), problem_line(2) | {"split": "train"}])
    response = token_client(lead).post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/?split=test",
        body,
        content_type=f"{JSONL}; charset=utf-8",
    )
    assert response.status_code == 201, response.content
    splits = dict(Problem.objects.values_list("unique_id", "split"))
    assert splits == {"p/1": "test", "p/2": "train"}


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("content_type", "status"),
    [("application/json", 415), ("text/csv", 415), ("multipart/form-data", 400)],
)
def test_upload_refuses_other_bodies(lead, campaign, content_type, status) -> None:
    client = token_client(lead)
    url = f"{API}/campaigns/{campaign.slug}/problems/upload/"
    if content_type == "multipart/form-data":
        response = client.post(url, {"other": "x"}, format="multipart")  # no `file` field
    else:
        response = client.post(url, jsonl([problem_line(1)]), content_type=content_type)
    assert response.status_code == status
    assert not Problem.objects.exists()


@pytest.mark.django_db
def test_upload_to_unknown_campaign_is_404(lead) -> None:
    response = token_client(lead).post(
        f"{API}/campaigns/nope/problems/upload/", jsonl([problem_line(1)]), content_type=JSONL
    )
    assert response.status_code == 404
    assert not Campaign.objects.filter(slug="nope").exists()


@pytest.mark.django_db
def test_upload_streams_past_the_request_body_limit(lead, campaign, settings) -> None:
    """The view reads the body line by line: Django's in-memory body cap never applies."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1024
    body = jsonl(problem_line(i) for i in range(3000))
    assert len(body) > 100 * settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    response = token_client(lead).post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/", body, content_type=JSONL
    )
    assert response.status_code == 201, response.content[:300]
    assert Problem.objects.filter(campaign=campaign).count() == 3000


@pytest.mark.django_db
def test_session_upload_needs_a_csrf_token(lead, campaign) -> None:
    client = session_client(lead)
    client.handler.enforce_csrf_checks = True
    response = client.post(
        f"{API}/campaigns/{campaign.slug}/problems/upload/",
        jsonl([problem_line(1)]),
        content_type=JSONL,
    )
    assert response.status_code == 403 and "CSRF" in response.json()["detail"]
    assert not Problem.objects.exists()


def make_finished_labels(campaign: Campaign, user, n: int) -> None:
    problem = Problem.objects.create(
        campaign=campaign, unique_id="big", problem="Sum it.", ground_truth_answer="1"
    )
    steps = [f"Step {i}: " + "x" * 200 for i in range(5)]
    samples = Sample.objects.bulk_create(
        Sample(
            campaign=campaign,
            problem=problem,
            external_id=f"s{i}",
            steps=steps,
            answer="1",
            is_correct=True,
            steps_hash=f"{i:032d}",
        )
        for i in range(n)
    )
    now = timezone.now()
    labels = Label.objects.bulk_create(
        Label(sample=sample, labeler=user, finish_reason="solution", finished_at=now)
        for sample in samples
    )
    StepRating.objects.bulk_create(
        StepRating(label=label, step=step, rating=1) for label in labels for step in range(5)
    )


def export_peak(client, url: str) -> tuple[int, int]:
    """(records, peak bytes allocated while the export streams)."""
    tracemalloc.start()
    try:
        response = client.get(url)
        records = 0
        for chunk in response.streaming_content:
            records += chunk.count(b"\n")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return records, peak


@pytest.mark.django_db
@pytest.mark.slow
@pytest.mark.parametrize("kind", ["prm800k", "stepwise"])
def test_export_memory_does_not_grow_with_size(lead, labeler, monkeypatch, kind) -> None:
    monkeypatch.setattr(views, "EXPORT_CHUNK", 50)
    small = Campaign.objects.create(slug="small")
    large = Campaign.objects.create(slug="large")
    make_finished_labels(small, labeler, 150)
    make_finished_labels(large, labeler, 750)
    client = token_client(lead)
    client.get(f"{API}/campaigns/small/exports/{kind}/")  # warm caches and query compilers
    n_small, peak_small = export_peak(client, f"{API}/campaigns/small/exports/{kind}/")
    n_large, peak_large = export_peak(client, f"{API}/campaigns/large/exports/{kind}/")
    assert (n_small, n_large) == (150, 750)
    # Five times the records, about the same peak: memory is one chunk, not the export.
    assert peak_large < 1.5 * peak_small, (peak_small, peak_large)


@pytest.mark.django_db
def test_export_rejects_bad_generation_and_answers_jsonl_accept(lead, campaign) -> None:
    client = token_client(lead)
    bad = client.get(f"{API}/campaigns/{campaign.slug}/exports/prm800k/?generation=abc")
    assert bad.status_code == 400 and "generation" in bad.json()
    ok = client.get(f"{API}/campaigns/{campaign.slug}/exports/stepwise/", HTTP_ACCEPT=JSONL)
    assert ok.status_code == 200 and b"".join(ok.streaming_content) == b""
    assert json.loads(
        client.get(f"{API}/campaigns/missing/exports/stepwise/", HTTP_ACCEPT=JSONL).content
    ) == {"detail": "No Campaign matches the given query."}
