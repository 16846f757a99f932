"""Round trips through the API with real MATH solutions: create a campaign, upload problems
and samples, start a generation on the imported scores, label through the models, export
PRM800K and TRL stepwise records, and start the next generation."""

from __future__ import annotations

import io
import json
from collections.abc import Callable

import pytest

from annotate.generations import preview_selection
from annotate.models import Assignment, Campaign, Checkpoint, Generation, Label
from annotate.queue import next_assignment
from tests.factories import (
    API,
    JSONL,
    cot_problems_and_samples,
    jsonl,
    session_client,
    token_client,
)
from tests.selector.prm.published import qwen_prm_checkpoint


def streamed_lines(response) -> list[dict]:
    assert response.status_code == 200
    assert response["Content-Type"].startswith(JSONL)
    assert "attachment" in response["Content-Disposition"]
    body = b"".join(response.streaming_content).decode("utf-8")
    return [json.loads(line) for line in body.splitlines()]


def label_next(user, campaign: Campaign, ratings: Callable[[int], list[int]]) -> Assignment:
    """What the labeling page does: take the next task from the queue, rate step by step
    (`ratings` gets the task's number of steps)."""
    assignment = next_assignment(user, campaign)
    assert assignment is not None, "the queue handed out nothing"
    record = Label.for_assignment(assignment)
    for step, rating in enumerate(ratings(len(assignment.sample.steps))):
        record.rate(step, rating, elapsed_ms=1500)
    assignment.refresh_from_db()
    return assignment


@pytest.mark.django_db
def test_upload_select_label_export(lead, labeler) -> None:
    api = token_client(lead)
    problems, samples = cot_problems_and_samples(3)

    created = api.post(
        f"{API}/campaigns/",
        {"slug": "roundtrip", "k": 2, "strategy": "per_problem", "wrong_fraction": 0.5},
        format="json",
    )
    assert created.status_code == 201, created.content
    assert created.json()["counts"] == {
        "problems": 0,
        "samples": 0,
        "generations": 0,
        "checkpoints": 0,
    }
    campaign = Campaign.objects.get(slug="roundtrip")
    campaign.labelers.add(labeler)

    # Problems as a raw JSONL body, samples as a multipart file: both upload forms.
    up = api.post(
        f"{API}/campaigns/roundtrip/problems/upload/", jsonl(problems), content_type=JSONL
    )
    assert up.status_code == 201, up.content
    assert up.json()["created"] == {"problems": 3} and up.json()["lines"] == 3
    upload = io.BytesIO(jsonl(samples))
    upload.name = "samples.jsonl"
    up = api.post(
        f"{API}/campaigns/roundtrip/samples/upload/", {"file": upload}, format="multipart"
    )
    assert up.status_code == 201, up.content
    assert up.json()["created"]["samples"] == len(samples) == 24

    # Every sample comes back through cursor pages, in import order.
    seen, url = [], f"{API}/campaigns/roundtrip/samples/?limit=10"
    while url:
        page = api.get(url).json()
        seen += [row["external_id"] for row in page["results"]]
        url = page["next"]
    assert seen == [sample["id"] for sample in samples]

    # A dry run previews exactly what the selection function picks, and writes nothing.
    preview = api.post(f"{API}/campaigns/roundtrip/generations/", {"dry_run": True}, format="json")
    assert preview.status_code == 200, preview.content
    assert preview.json() == preview_selection(campaign).as_json()
    picked = preview.json()["selected"]
    assert 0 < len(picked) <= 2 * 3
    assert Generation.objects.filter(campaign=campaign).count() == 0

    opened = api.post(f"{API}/campaigns/roundtrip/generations/", {}, format="json")
    assert opened.status_code == 201, opened.content
    detail = opened.json()
    assert detail["number"] == 0 and detail["status"] == "open"
    assert detail["score_source"] == "imported"
    assert detail["counts"]["selected"] == len(picked)
    assert detail["counts"]["assignments"]["open"] == len(picked) * campaign.overlap
    generation = Generation.objects.get(campaign=campaign, number=0)
    assert [row["sample"] for row in picked] == list(
        generation.selections.order_by("rank").values_list("sample_id", flat=True)
    )

    # Two labels through the queue and the rating rules: one all positive to the end (it
    # finishes as a solution), one finding an error at its second step.
    first = label_next(labeler, campaign, lambda n: [1] * n)
    second = label_next(labeler, campaign, lambda n: [1, -1])
    n_first = len(first.sample.steps)
    assert first.state == second.state == Assignment.State.SUBMITTED
    assert first.label.finish_reason == "solution"
    assert second.label.finish_reason == "found_error"

    progress = api.get(f"{API}/campaigns/roundtrip/generations/0/").json()
    assert progress["counts"]["assignments"]["submitted"] == 2

    mine = session_client(labeler).get(f"{API}/me/assignments/").json()
    assert sorted(row["id"] for row in mine["results"]) == sorted([first.pk, second.pk])

    records = streamed_lines(api.get(f"{API}/campaigns/roundtrip/exports/prm800k/"))
    assert len(records) == 2
    by_reason = {record["label"]["finish_reason"]: record for record in records}
    assert set(by_reason) == {"solution", "found_error"}
    for record, assignment in ((by_reason["solution"], first), (by_reason["found_error"], second)):
        assert record["generation"] == 0
        assert record["question"]["problem"] == assignment.sample.problem.problem
        assert record["question"]["pre_generated_steps"] == assignment.sample.steps
    ratings = [
        step["completions"][0]["rating"] for step in by_reason["found_error"]["label"]["steps"]
    ]
    assert ratings == [1, -1]

    only_zero = streamed_lines(api.get(f"{API}/campaigns/roundtrip/exports/prm800k/?generation=0"))
    assert len(only_zero) == 2
    assert streamed_lines(api.get(f"{API}/campaigns/roundtrip/exports/prm800k/?generation=5")) == []

    trl = streamed_lines(api.get(f"{API}/campaigns/roundtrip/exports/stepwise/"))
    pairs = {(tuple(row["completions"]), tuple(row["labels"])) for row in trl}
    assert (tuple(first.sample.steps), (True,) * n_first) in pairs
    assert (tuple(second.sample.steps[:2]), (True, False)) in pairs
    assert {row["prompt"] for row in trl} == {
        first.sample.problem.problem,
        second.sample.problem.problem,
    }

    # The next generation never re-selects a sample picked before.
    again = api.post(f"{API}/campaigns/roundtrip/generations/", {}, format="json")
    if again.status_code == 201:
        again_ids = set(
            Generation.objects.get(campaign=campaign, number=1).selections.values_list(
                "sample_id", flat=True
            )
        )
        assert again_ids.isdisjoint(row["sample"] for row in picked)
    else:  # the pool can run dry with 8 solutions per problem
        assert again.status_code == 400 and "nothing to select" in again.json()["scores"][0]


@pytest.mark.django_db
def test_register_activate_and_select_on_checkpoint_scores(lead, campaign, sample, tmp_path):
    """Register a local checkpoint, activate it, and start a generation on its scores."""
    api = token_client(lead)
    weights = qwen_prm_checkpoint(tmp_path / "prm")
    made = api.post(
        f"{API}/checkpoints/",
        {"name": "mine", "path": str(weights), "adapter": "qwen-prm", "campaign": campaign.slug},
        format="json",
    )
    assert made.status_code == 201, made.content
    checkpoint = Checkpoint.objects.get(pk=made.json()["id"])
    assert checkpoint.status == Checkpoint.Status.READY and checkpoint.adapter == "qwen-prm"

    for bad in ("relative/path", str(weights / "missing"), f"{weights}/../prm"):
        refused = api.post(f"{API}/checkpoints/", {"name": "x", "path": bad}, format="json")
        assert refused.status_code == 400 and "path" in refused.json(), bad
    # The same validation as `register_checkpoint`: every weight of the head must be there.
    headless = qwen_prm_checkpoint(tmp_path / "headless", drop=("score.2.weight",))
    refused = api.post(f"{API}/checkpoints/", {"name": "x", "path": str(headless)}, format="json")
    assert refused.status_code == 400 and "score.2.weight" in refused.json()["path"][0]

    activated = api.post(f"{API}/checkpoints/{checkpoint.pk}/activate/", {}, format="json")
    assert activated.status_code == 200 and activated.json()["status"] == "active"
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk

    checkpoint.scores.create(sample=sample, score=0.7, step_scores=[0.9, 0.7])
    preview = api.post(
        f"{API}/campaigns/{campaign.slug}/generations/",
        {"scores": "active", "dry_run": True},
        format="json",
    ).json()
    assert preview["selected"] == [
        {
            "sample": sample.pk,
            "id": sample.external_id,
            "problem": sample.problem.unique_id,
            "score": 0.7,
            "wrong": False,
        }
    ]
    assert preview["pool"] == 1 and preview["scores"] == checkpoint.pk

    rejected = Checkpoint.objects.create(name="bad", path=str(weights), status="rejected")
    conflict = api.post(
        f"{API}/checkpoints/{rejected.pk}/activate/", {"campaign": campaign.slug}, format="json"
    )
    assert conflict.status_code == 409
    no_campaign = api.post(f"{API}/checkpoints/{rejected.pk}/activate/", {}, format="json")
    assert no_campaign.status_code == 400
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk


@pytest.mark.django_db
def test_start_generation_on_a_checkpoint_queues_the_workers(
    lead, campaign, sample, tmp_path, django_capture_on_commit_callbacks
):
    """With workers installed, a checkpoint-scored generation is created pending and its
    pipeline queued on commit (not run here: that needs a model)."""
    checkpoint = Checkpoint.objects.create(campaign=campaign, name="c", path=str(tmp_path))
    api = token_client(lead)
    url = f"{API}/campaigns/{campaign.slug}/generations/"
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        queued = api.post(url, {"scores": str(checkpoint.pk)}, format="json")
    assert queued.status_code == 202, queued.content
    assert queued.json()["status"] == "pending" and queued.json()["checkpoint"] == checkpoint.pk
    assert len(callbacks) == 1
    busy = api.post(url, {"scores": str(checkpoint.pk)}, format="json")
    assert busy.status_code == 409 and "still" in busy.json()["detail"]


@pytest.mark.django_db
def test_generation_overrides_are_frozen_on_the_generation(lead, campaign, problem) -> None:
    from annotate.models import Sample

    for i, (score, answer) in enumerate([(0.9, "2"), (0.8, "3"), (0.7, "4"), (0.6, "2")]):
        Sample.objects.create(
            campaign=campaign,
            problem=problem,
            external_id=f"o{i}",
            steps=[f"# Answer\n\n{answer}"],
            answer=answer,
            is_correct=answer == "2",
            verifier_score=score,
            steps_hash=f"{i:032x}",
        )
    api = token_client(lead)
    url = f"{API}/campaigns/{campaign.slug}/generations/"
    preview = api.post(url, {"dry_run": True, "k": 3, "wrong_fraction": 1.0}, format="json")
    # K=3, all wrong first: both wrong answers, then the best remaining one (o3 repeats o0's
    # steps, so only the earlier o0 is eligible).
    picked = {
        Sample.objects.get(pk=row["sample"]).external_id: row["wrong"]
        for row in preview.json()["selected"]
    }
    assert picked == {"o1": True, "o2": True, "o0": False}
    opened = api.post(url, {"k": 1, "wrong_fraction": 0.0}, format="json")
    assert opened.status_code == 201, opened.content
    assert opened.json()["params"]["k"] == 1 and opened.json()["params"]["wrong_fraction"] == 0.0
    assert opened.json()["counts"]["selected"] == 1
    campaign.refresh_from_db()
    assert campaign.k == 2  # the campaign's own settings are untouched
    bad = api.post(url, {"k": 0}, format="json")
    assert bad.status_code == 400 and "k" in bad.json()


@pytest.mark.django_db
def test_evaluate_queues_the_workers_task_on_commit(
    lead, campaign, tmp_path, monkeypatch, django_capture_on_commit_callbacks
) -> None:
    """With an evaluation task installed, the API queues it with (checkpoint, campaign)."""
    from annotate import dispatch

    sent = []

    class FakeTask:
        name = dispatch.EVALUATE_CHECKPOINT

    def send(name, *args, queue):
        assert name == FakeTask.name and queue == "gpu"
        sent.append(args)

    monkeypatch.setattr(dispatch, "send", send)
    checkpoint = Checkpoint.objects.create(name="byo", path=str(tmp_path))  # no campaign
    api = token_client(lead)
    url = f"{API}/checkpoints/{checkpoint.pk}/evaluate/"
    assert api.post(url, {}, format="json").status_code == 400  # which campaign?
    with django_capture_on_commit_callbacks(execute=True):
        queued = api.post(url, {"campaign": campaign.slug}, format="json")
    assert queued.status_code == 202, queued.content
    assert queued.json()["queued"] == FakeTask.name
    assert sent == [(checkpoint.pk, campaign.pk)]
