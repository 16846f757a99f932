"""No state change on GET: every URL pattern of the project, with its path filled from real
rows, answers GET and HEAD without one INSERT, UPDATE or DELETE, for every persona.

A page on another site can make a signed-in browser send any GET (an image tag is enough), so
claiming work, opening labels and every other write must sit behind POST and CSRF."""

from __future__ import annotations

import re

import pytest
from django.contrib.contenttypes.models import ContentType
from django.db import connection
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from annotate.models import Assignment, Campaign, Checkpoint, Label, Review
from tests.factories import make_generation, make_sample, make_task, open_slots

pytestmark = pytest.mark.django_db

WRITE = re.compile(r"^\s*(INSERT|UPDATE|DELETE|TRUNCATE|ALTER|CREATE|DROP)\b", re.IGNORECASE)
PARAMETER = re.compile(r"<(?:(?P<converter>[^>:]+):)?(?P<name>[^>]+)>")
# The pk a route segment names, by the collection before it.
PK_OF = {"assignments": "assignment", "problems": "problem", "samples": "sample"}


def _routes(patterns, prefix: str = ""):
    """(route, pattern) for every URL pattern, resolvers flattened; regex catch-alls (the
    admin's final `(?P<url>.*)$`) have no route to fill and are left out."""
    for pattern in patterns:
        route = prefix + str(pattern.pattern)
        if isinstance(pattern, URLResolver):
            yield from _routes(pattern.url_patterns, route)
        elif isinstance(pattern, URLPattern) and not route.endswith("$"):
            yield route, pattern


@pytest.fixture
def world(labeler, other_labeler, lead, campaign):
    """One of everything a URL can name: a campaign, its problem and sample, a generation,
    a checkpoint, the labeler's claimed task (with a label, and one without) and a slot."""
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="ckpt", path="/nonexistent")
    generation = make_generation(campaign)
    assignment, label = make_task(labeler, campaign, generation=generation)
    label.rate(0, 1)
    second = Campaign.objects.create(slug=f"{campaign.slug}-2", name="Second")
    unopened, _ = make_task(labeler, second)
    Label.objects.filter(assignment=unopened).delete()
    slot = open_slots(generation, [make_sample(campaign)])[0]
    campaign.labelers.add(other_labeler)
    sample = assignment.sample
    review = Review.objects.create(sample=sample, reason=Review.Reason.SAMPLED)
    review.labels.add(label)
    return {
        "item": review.pk,
        "slug": campaign.slug,
        "number": generation.number,
        "assignment": assignment.pk,
        "unopened": unopened.pk,
        "slot": slot.pk,
        "problem": sample.problem_id,
        "sample": sample.pk,
        "checkpoint": checkpoint.pk,
        "content_type_id": ContentType.objects.get_for_model(campaign).pk,
        "object_id": campaign.pk,
    }


def _fill(route: str, pattern: URLPattern, world: dict) -> list[str]:
    """The URLs to try for one pattern: each path parameter a real row's id (a task URL once
    for a task with its label, one without, and an unclaimed slot)."""
    if "assignment_id" not in route:
        return [_fill_one(route, pattern, world, None)]
    tasks = [world["assignment"], world["unopened"], world["slot"]]
    return [_fill_one(route, pattern, world, task) for task in tasks]


def _fill_one(route: str, pattern: URLPattern, world: dict, assignment_id: int | None) -> str:
    model_admin = getattr(pattern.callback, "model_admin", None)

    def value(match: re.Match) -> str:
        name = match["name"]
        if name == "assignment_id":
            return str(assignment_id)
        if name == "object_id" and model_admin is not None:
            row = model_admin.model._default_manager.order_by("pk").first()
            return str(row.pk if row is not None else 1)
        if name == "pk":
            before = route[: match.start()].rstrip("/").rsplit("/", 1)[-1]
            return str(world[PK_OF.get(before, before.rstrip("s"))])
        if name == "app_label":
            return "annotate"
        return str(world.get(name, 1))

    return "/" + PARAMETER.sub(value, route)


def _writes_during(action, *args) -> list[str]:
    writes: list[str] = []

    def record(execute, sql, params, many, context):
        if WRITE.match(sql):
            writes.append(sql)
        return execute(sql, params, many, context)

    with connection.execute_wrapper(record):
        action(*args)
    return writes


@pytest.mark.parametrize("persona", ["anonymous", "labeler", "other", "lead"])
def test_get_and_head_never_write(world, persona, labeler, other_labeler, lead):
    client = Client(raise_request_exception=False)
    user = {"labeler": labeler, "other": other_labeler, "lead": lead}.get(persona)
    if user is not None:
        client.force_login(user)
    routes = list(_routes(get_resolver().url_patterns))
    assert any(p.name == "labeling-next" for _, p in routes)
    before = (Assignment.objects.count(), Label.objects.count())
    tried, offenders = 0, []
    for route, pattern in routes:
        for url in _fill(route, pattern, world):
            for method in (client.get, client.head):
                tried += 1
                writes = _writes_during(method, url)
                if writes:
                    offenders.append(f"{method.__name__.upper()} {url}: {writes[0][:120]}")
    assert not offenders, "\n".join(offenders)
    assert (Assignment.objects.count(), Label.objects.count()) == before
    assert tried > 100  # the sweep really covered the project, admin included
    if persona in ("labeler", "other"):
        # The counter does see writes: a POST to the queue claims (or renews) a task.
        assert _writes_during(client.post, "/next/")
