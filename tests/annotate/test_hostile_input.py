"""Hostile import input gets the same line-numbered error from the API and the command line,
and nothing is written: out-of-range numbers, lone surrogates, deep nesting, bad bytes, a BOM,
and the documented size limits (upload, line, steps, step text)."""

from __future__ import annotations

import json

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from annotate.models import Campaign, Problem, Sample
from tests.factories import API, JSONL, token_client

GOOD = {"unique_id": "p/1", "problem": "What is 1+1?", "ground_truth_answer": "2"}


def good_line(i: int = 1) -> bytes:
    return json.dumps(GOOD | {"unique_id": f"p/{i}"}).encode() + b"\n"


def via_api(lead, slug: str, kind: str, body: bytes):
    return token_client(lead).post(
        f"{API}/campaigns/{slug}/{kind}/upload/", body, content_type=JSONL
    )


def via_command(tmp_path, slug: str, kind: str, body: bytes) -> str:
    path = tmp_path / "input.jsonl"
    path.write_bytes(body)
    with pytest.raises(CommandError) as caught:
        call_command(f"import_{kind}", str(path), "--campaign", slug, verbosity=0)
    return str(caught.value)


def assert_both_paths(lead, campaign, tmp_path, kind: str, body: bytes, line: int, text: str):
    """Both paths refuse `body` naming `line`, with one and the same message; nothing written."""
    response = via_api(lead, campaign.slug, kind, body)
    assert response.status_code == 400, response.content[:300]
    detail = response.json()["detail"]
    assert response.json()["line"] == line
    assert detail.startswith(f"line {line}: ") and text in detail
    assert via_command(tmp_path, campaign.slug, kind, body) == detail
    assert not Problem.objects.exists() and not Sample.objects.exists()


HOSTILE_PROBLEM_LINES = [
    pytest.param(json.dumps(GOOD | {"level": 40000}).encode(), "between 0 and 32767", id="level"),
    pytest.param(
        json.dumps(GOOD | {"level": "Level 99999"}).encode(), "between 0 and 32767", id="level-str"
    ),
    pytest.param(
        b'{"unique_id": "p/2", "problem": "x\\ud800", "ground_truth_answer": "2"}',
        "lone UTF-16 surrogate",
        id="lone-surrogate",
    ),
    pytest.param(b"[" * 100_000, "nested deeper than 64", id="nested-100k"),
    pytest.param(b'{"a": ' + b"[" * 100 + b"]" * 100 + b"}", "nested deeper", id="nested-100"),
    pytest.param(
        b'{"unique_id": "p/\xff"}', "not valid UTF-8 (byte 18 of the line)", id="bad-byte"
    ),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("bad", "text"), HOSTILE_PROBLEM_LINES)
def test_hostile_problem_line_is_a_line_numbered_error_on_both_paths(
    lead, campaign, tmp_path, bad: bytes, text: str
) -> None:
    body = good_line(1) + bad + b"\n" + good_line(3)
    assert_both_paths(lead, campaign, tmp_path, "problems", body, 2, text)


@pytest.mark.django_db
def test_a_paired_surrogate_escape_is_an_ordinary_character(lead, campaign, tmp_path) -> None:
    line = b'{"unique_id": "p/1", "problem": "\\ud83d\\ude00", "ground_truth_answer": "2"}\n'
    assert via_api(lead, campaign.slug, "problems", line).status_code == 201
    assert Problem.objects.get().problem == "\U0001f600"


@pytest.mark.django_db
def test_bom_file_is_accepted_by_both_paths(lead, campaign, tmp_path) -> None:
    body = b"\xef\xbb\xbf" + good_line(1) + good_line(2)
    assert via_api(lead, campaign.slug, "problems", body).status_code == 201
    path = tmp_path / "bom.jsonl"
    path.write_bytes(body.replace(b"p/", b"q/"))
    call_command("import_problems", str(path), "--campaign", campaign.slug, verbosity=0)
    assert Problem.objects.filter(campaign=campaign).count() == 4


@pytest.mark.django_db
def test_line_over_the_line_limit_is_refused_on_both_paths(
    lead, campaign, tmp_path, settings
) -> None:
    settings.STEPWISE_MAX_LINE_BYTES = 200
    long = json.dumps(GOOD | {"problem": "x" * 300}).encode()
    body = good_line(1) + long + b"\n"
    assert_both_paths(lead, campaign, tmp_path, "problems", body, 2, "longer than 200 bytes")


@pytest.mark.django_db
def test_input_over_the_upload_limit_is_refused_on_both_paths(
    lead, campaign, tmp_path, settings
) -> None:
    body = b"".join(good_line(i) for i in range(1, 6))
    settings.STEPWISE_MAX_UPLOAD_BYTES = len(body) - 1
    # The API refuses by Content-Length before reading; the command counts the bytes it read.
    response = via_api(lead, campaign.slug, "problems", body)
    assert response.status_code == 413
    assert response.json()["detail"] == f"upload is larger than {len(body) - 1:,} bytes"
    message = via_command(tmp_path, campaign.slug, "problems", body)
    assert message == f"line 5: input is larger than {len(body) - 1:,} bytes"
    assert not Problem.objects.exists()


def sample_body(problem, steps: list[str]) -> bytes:
    first = {"id": "a", "unique_id": problem.unique_id, "steps": ["1+1=2", "# Answer\n\n2"]}
    second = {"id": "b", "unique_id": problem.unique_id, "steps": steps}
    return json.dumps(first).encode() + b"\n" + json.dumps(second).encode() + b"\n"


@pytest.mark.django_db
def test_too_many_steps_and_too_long_a_step_are_refused_on_both_paths(
    lead, problem, tmp_path, settings
) -> None:
    settings.STEPWISE_MAX_STEPS, settings.STEPWISE_MAX_STEP_CHARS = 3, 50
    campaign = problem.campaign
    many = sample_body(problem, ["a", "b", "c", "d"])
    text = 'field "steps" has 4 steps, more than 3'
    response = via_api(lead, campaign.slug, "samples", many)
    assert response.status_code == 400 and response.json()["detail"] == f"line 2: {text}"
    assert via_command(tmp_path, campaign.slug, "samples", many) == f"line 2: {text}"
    long = sample_body(problem, ["ok", "y" * 51])
    text = 'field "steps[1]" has 51 characters, more than 50'
    response = via_api(lead, campaign.slug, "samples", long)
    assert response.status_code == 400 and response.json()["detail"] == f"line 2: {text}"
    assert via_command(tmp_path, campaign.slug, "samples", long) == f"line 2: {text}"
    assert not Sample.objects.exists()


@pytest.mark.django_db
def test_command_reads_stdin_through_the_same_reader(campaign, monkeypatch) -> None:
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(good_line(1).decode() + "[" * 100_000 + "\n"))
    with pytest.raises(CommandError, match=r"^line 2: JSON nested deeper than 64 levels$"):
        call_command("import_problems", "-", "--campaign", campaign.slug, verbosity=0)


JSON_BODIES = [
    pytest.param(b"[" * 100_000, "nested deeper than 64", id="nested-100k"),
    pytest.param(b'{"slug": "x", "name": "a\\ud800"}', "lone UTF-16 surrogate", id="surrogate"),
    pytest.param(b'{"slug": "x", "name": "a\\u0000"}', "NUL character", id="nul"),
    pytest.param(b'{"slug": "x", "name": "n", "k": NaN}', "NaN is not valid JSON", id="nan"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "text"), JSON_BODIES)
def test_hostile_json_body_is_a_400_not_a_500(lead, body: bytes, text: str) -> None:
    response = token_client(lead).post(f"{API}/campaigns/", body, content_type="application/json")
    assert response.status_code == 400, response.content[:300]
    assert text in response.json()["detail"]
    assert not Campaign.objects.exists()


@pytest.mark.django_db
def test_json_body_over_the_memory_limit_is_a_400(lead, settings) -> None:
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 100
    body = json.dumps({"slug": "x", "name": "n" * 200}).encode()
    client = token_client(lead)
    client.raise_request_exception = False  # the answer a real client gets, not the exception
    response = client.post(f"{API}/campaigns/", body, content_type="application/json")
    assert response.status_code == 400
    assert not Campaign.objects.exists()
