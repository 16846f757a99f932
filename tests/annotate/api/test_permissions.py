"""The API permission matrix: every endpoint × every persona (anonymous, labeler, other
labeler, staff by session, staff by token, labeler by token, a bad token).

Staff endpoints answer 401 to anonymous callers and 403 to labelers, and a refused write
changes nothing; `me/` endpoints show each caller only their own work. A last test checks
that the matrix covers every operation in the OpenAPI schema, so a new endpoint without a
row here fails the suite.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from annotate.models import (
    Assignment,
    Campaign,
    Checkpoint,
    Generation,
    Label,
    Problem,
    Sample,
    StepRating,
)
from tests.factories import API, JSONL, jsonl, session_client, token_client
from tests.selector.prm.published import qwen_prm_checkpoint

PERSONAS = [
    "anonymous",
    "bad_token",
    "labeler",
    "other_labeler",
    "labeler_token",
    "staff",
    "staff_token",
]


@pytest.fixture
def world(lead, labeler, other_labeler, campaign, problem, sample, tmp_path):
    sample.verifier_score = 0.4
    sample.save(update_fields=["verifier_score"])
    generation = Generation.objects.create(
        campaign=campaign, number=0, status=Generation.Status.OPEN, opened_at=timezone.now()
    )
    assignment = Assignment.objects.create(
        generation=generation,
        sample=sample,
        labeler=labeler,
        state=Assignment.State.IN_PROGRESS,
        claimed_at=timezone.now(),
        lease_expires_at=timezone.now() + timedelta(minutes=30),
    )
    label = Label.objects.create(assignment=assignment, sample=sample, labeler=labeler)
    StepRating.objects.create(label=label, step=0, rating=1)
    weights = tmp_path / "checkpoint-a"
    weights.mkdir()
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="a", path=str(weights))
    new_weights = qwen_prm_checkpoint(tmp_path / "checkpoint-b")
    return SimpleNamespace(
        lead=lead,
        labeler=labeler,
        other=other_labeler,
        campaign=campaign,
        problem=problem,
        sample=sample,
        generation=generation,
        assignment=assignment,
        checkpoint=checkpoint,
        new_weights=new_weights,
    )


def client_for(persona: str, w: SimpleNamespace) -> APIClient:
    if persona == "anonymous":
        return session_client()
    if persona == "bad_token":
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION="Token " + "0" * 40)
        return client
    if persona == "labeler":
        return session_client(w.labeler)
    if persona == "other_labeler":
        return session_client(w.other)
    if persona == "labeler_token":
        return token_client(w.labeler)
    if persona == "staff":
        return session_client(w.lead)
    return token_client(w.lead)


@dataclass
class Endpoint:
    """One operation: how to call it, and what staff (or each persona) should get."""

    name: str  # schema path template + method, for the coverage check
    method: str
    url: Any  # callable(world) -> str
    staff_status: int
    body: Any = None  # callable(world) -> (data, content_type) or None
    staff_only: bool = True
    own: dict[str, int] = field(default_factory=dict)  # me/ endpoints: persona -> status


def evaluate_status() -> int:
    return 202  # sent by name: the workers' task, whether or not one is running


def problem_body(w):
    return jsonl([{"unique_id": "new/1", "problem": "2+2?", "ground_truth_answer": "4"}]), JSONL


def sample_body(w):
    record = {"id": "new-s", "unique_id": w.problem.unique_id, "steps": ["4"], "answer": "4"}
    return jsonl([record]), JSONL


def json_body(data):
    return lambda w: (data, "json")


ENDPOINTS = [
    Endpoint("/campaigns/ GET", "get", lambda w: f"{API}/campaigns/", 200),
    Endpoint(
        "/campaigns/ POST",
        "post",
        lambda w: f"{API}/campaigns/",
        201,
        body=json_body({"slug": "fresh", "k": 3}),
    ),
    Endpoint("/campaigns/{slug}/ GET", "get", lambda w: f"{API}/campaigns/{w.campaign.slug}/", 200),
    Endpoint(
        "/campaigns/{slug}/problems/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/problems/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/problems/{id}/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/problems/{w.problem.pk}/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/problems/upload/ POST",
        "post",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/problems/upload/",
        201,
        body=problem_body,
    ),
    Endpoint(
        "/campaigns/{slug}/samples/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/samples/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/samples/{id}/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/samples/{w.sample.pk}/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/samples/upload/ POST",
        "post",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/samples/upload/",
        201,
        body=sample_body,
    ),
    Endpoint(
        "/campaigns/{slug}/generations/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/generations/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/generations/ POST",
        "post",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/generations/",
        200,
        body=json_body({"scores": "imported", "dry_run": True}),
    ),
    Endpoint(
        "/campaigns/{slug}/generations/{number}/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/generations/{w.generation.number}/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/exports/prm800k/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/exports/prm800k/",
        200,
    ),
    Endpoint(
        "/campaigns/{slug}/exports/stepwise/ GET",
        "get",
        lambda w: f"{API}/campaigns/{w.campaign.slug}/exports/stepwise/",
        200,
    ),
    Endpoint("/checkpoints/ GET", "get", lambda w: f"{API}/checkpoints/", 200),
    Endpoint(
        "/checkpoints/ POST",
        "post",
        lambda w: f"{API}/checkpoints/",
        201,
        body=lambda w: ({"name": "b", "path": str(w.new_weights), "adapter": "qwen-prm"}, "json"),
    ),
    Endpoint(
        "/checkpoints/{id}/ GET", "get", lambda w: f"{API}/checkpoints/{w.checkpoint.pk}/", 200
    ),
    Endpoint(
        "/checkpoints/{id}/activate/ POST",
        "post",
        lambda w: f"{API}/checkpoints/{w.checkpoint.pk}/activate/",
        200,
        body=json_body({}),
    ),
    Endpoint(
        "/checkpoints/{id}/evaluate/ POST",
        "post",
        lambda w: f"{API}/checkpoints/{w.checkpoint.pk}/evaluate/",
        -1,  # resolved at run time: 202 with an evaluation task, 501 without
        body=json_body({}),
    ),
    Endpoint(
        "/me/ GET",
        "get",
        lambda w: f"{API}/me/",
        200,
        staff_only=False,
        own={"labeler": 200, "other_labeler": 200, "labeler_token": 200},
    ),
    Endpoint(
        "/me/assignments/ GET",
        "get",
        lambda w: f"{API}/me/assignments/",
        200,
        staff_only=False,
        own={"labeler": 200, "other_labeler": 200, "labeler_token": 200},
    ),
    Endpoint(
        "/me/assignments/{id}/ GET",
        "get",
        lambda w: f"{API}/me/assignments/{w.assignment.pk}/",
        404,  # staff have no assignment of their own here: not even leads see others' work
        staff_only=False,
        own={"labeler": 200, "other_labeler": 404, "labeler_token": 200},
    ),
    Endpoint(
        "/me/token/ DELETE",
        "delete",
        lambda w: f"{API}/me/token/",
        204,  # revokes the caller's own token only (tests/config/test_api_tokens.py)
        staff_only=False,
        own={"labeler": 204, "other_labeler": 204, "labeler_token": 204},
    ),
    Endpoint("/schema/ GET", "get", lambda w: f"{API}/schema/", 200),
]


def expected_status(endpoint: Endpoint, persona: str) -> int:
    if persona in {"anonymous", "bad_token"}:
        return 401
    staff = persona in {"staff", "staff_token"}
    if staff:
        return evaluate_status() if endpoint.staff_status == -1 else endpoint.staff_status
    if endpoint.staff_only:
        return 403
    return endpoint.own[persona]


def snapshot() -> tuple:
    """Everything a refused write could have touched."""
    return (
        Campaign.objects.count(),
        Problem.objects.count(),
        Sample.objects.count(),
        Generation.objects.count(),
        Checkpoint.objects.count(),
        list(Campaign.objects.values_list("active_checkpoint", flat=True)),
        list(Checkpoint.objects.values_list("status", flat=True)),
    )


def call(client: APIClient, endpoint: Endpoint, w: SimpleNamespace):
    url = endpoint.url(w)
    if endpoint.body is None:
        return getattr(client, endpoint.method)(url)
    data, content_type = endpoint.body(w)
    if content_type == "json":
        return getattr(client, endpoint.method)(url, data, format="json")
    return getattr(client, endpoint.method)(url, data, content_type=content_type)


@pytest.mark.django_db
@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=lambda e: e.name)
def test_permission_matrix(endpoint: Endpoint, persona: str, world) -> None:
    client = client_for(persona, world)
    before = snapshot()
    response = call(client, endpoint, world)
    if getattr(response, "streaming", False):
        body = b"".join(response.streaming_content)  # a stream that fails midway fails here
    else:
        body = response.content
    want = expected_status(endpoint, persona)
    assert response.status_code == want, (persona, endpoint.name, body[:300])
    if want in (401, 403, 404) or endpoint.method == "get":
        assert snapshot() == before, "a refused or read-only call wrote to the database"
    if want == 401 and persona == "anonymous":
        assert response["WWW-Authenticate"].startswith("Token")


@pytest.mark.django_db
def test_me_assignments_list_only_the_callers_own(world) -> None:
    mine = session_client(world.labeler).get(f"{API}/me/assignments/").json()
    theirs = session_client(world.other).get(f"{API}/me/assignments/").json()
    lead = session_client(world.lead).get(f"{API}/me/assignments/").json()
    assert [row["id"] for row in mine["results"]] == [world.assignment.pk]
    assert theirs["results"] == [] and lead["results"] == []


@pytest.mark.django_db
def test_me_assignment_detail_shows_ratings_and_hides_qc_kind(world) -> None:
    world.assignment.kind = Assignment.Kind.QUALITY_CONTROL
    world.assignment.save(update_fields=["kind"])
    data = token_client(world.labeler).get(f"{API}/me/assignments/{world.assignment.pk}/").json()
    assert data["label"]["ratings"] == [{"step": 0, "rating": 1, "flagged": False}]
    assert data["steps"] == world.sample.steps
    assert "kind" not in data and "qc" not in str(data).lower()


@pytest.mark.django_db
@pytest.mark.parametrize("persona", ["anonymous", "labeler", "staff", "staff_token"])
def test_docs_page_matrix(persona: str, world) -> None:
    response = client_for(persona, world).get(f"{API}/docs/")
    if persona == "labeler":
        assert response.status_code == 403
    elif persona == "staff":
        assert response.status_code == 200
        html = response.content.decode()
        assert "/api/v1/campaigns/{slug}/samples/upload/" in html
        assert "<script" not in html and "cdn" not in html.lower()
    else:  # the docs page is HTML for browsers: a token header is not a session
        assert response.status_code == 302
        assert response["Location"].startswith("/accounts/login/")


@pytest.mark.django_db
def test_inactive_staff_token_is_refused(world) -> None:
    client = token_client(world.lead)
    world.lead.is_active = False
    world.lead.save(update_fields=["is_active"])
    assert client.get(f"{API}/campaigns/").status_code == 401


@pytest.mark.django_db
def test_matrix_covers_every_schema_operation() -> None:
    from annotate.api.docs import api_schema

    schema = api_schema()
    operations = {
        f"{path.removeprefix(API)} {method.upper()}"
        for path, item in schema["paths"].items()
        for method in item
        if method in {"get", "post", "put", "patch", "delete"}
    }
    covered = {endpoint.name for endpoint in ENDPOINTS}
    assert operations, "the schema lists no operations"
    assert operations - covered == set(), "endpoints missing from the permission matrix"
    assert covered - operations == {"/schema/ GET"}


@pytest.mark.django_db
def test_tokens_are_managed_in_the_admin(world) -> None:
    from django.test import Client
    from rest_framework.authtoken.models import Token

    admin = Client()
    admin.force_login(world.lead)
    assert admin.get("/admin/authtoken/tokenproxy/").status_code == 200
    made = admin.post("/admin/authtoken/tokenproxy/add/", {"user": world.other.pk})
    assert made.status_code == 302, made.content[:500]
    key = Token.objects.get(user=world.other).key
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    assert client.get(f"{API}/me/").json()["username"] == world.other.username
    assert client.get(f"{API}/campaigns/").status_code == 403
    labeler_admin = Client()
    labeler_admin.force_login(world.labeler)
    assert labeler_admin.get("/admin/authtoken/tokenproxy/").status_code == 302
