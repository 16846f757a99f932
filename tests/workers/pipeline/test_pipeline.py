"""The scoring pipeline in-process: the admin's "Start next generation" (eager Celery), the
`score` + `select --scores active` command line, idempotent chunks, failures and retries.

The same pipeline on real Redis with a worker process that gets killed mid-generation is in
test_pipeline_worker.py.
"""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest
from django.core.management import call_command
from django.db import connection
from django.urls import reverse

from annotate.generations import begin_generation
from annotate.models import Assignment, Checkpoint, Generation, Score, Selection
from tests.factories import make_pool, reference_selection
from workers import pipeline
from workers.models import ScoringChunk

needs_postgres = pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="concurrent transactions need PostgreSQL: set DATABASE_URL=postgres://… (CI does)",
)


def start_from_admin(client, campaign, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        response = client.post(
            reverse("admin:annotate_campaign_changelist"),
            {"action": "start_next_generation", "_selected_action": [campaign.pk]},
        )
    return response, callbacks


def confirm_start(client, campaign, choice: str, django_capture_on_commit_callbacks):
    """The confirmation page's answer when the open generation still has work (#14 item 7)."""
    url = reverse("admin:annotate_campaign_start_generation", args=[campaign.pk])
    with django_capture_on_commit_callbacks(execute=True):
        return client.post(url, {"open_generations": choice})


def assert_generation_opened(generation: Generation, pool: list[int]) -> None:
    """One Score per pool sample, full progress, every chunk done, selections in the oracle's
    order with the checkpoint's scores, overlap assignment slots per selected sample."""
    campaign = generation.campaign
    assert generation.status == Generation.Status.OPEN, generation.error
    assert generation.opened_at is not None
    assert generation.score_source == Generation.ScoreSource.CHECKPOINT
    checkpoint = generation.checkpoint
    scored = list(Score.objects.filter(checkpoint=checkpoint).values_list("sample_id", flat=True))
    assert sorted(scored) == sorted(pool)
    assert generation.progress_done == generation.progress_total == len(pool)
    chunks = ScoringChunk.objects.filter(generation=generation)
    assert chunks.count() > 1
    assert not chunks.filter(done=False).exists()
    assert sum(chunks.values_list("sample_count", flat=True)) == len(pool)

    selections = list(generation.selections.order_by("rank"))
    assert selections
    assert [s.rank for s in selections] == list(range(len(selections)))
    expected = reference_selection(campaign, checkpoint.pk, generation.params, generation.pk)
    assert [s.sample_id for s in selections] == expected
    stored = dict(Score.objects.filter(checkpoint=checkpoint).values_list("sample_id", "score"))
    for s in selections:
        assert s.score == stored[s.sample_id]
        assert s.is_wrong is (s.sample.is_correct is False)

    assignments = Assignment.objects.filter(generation=generation)
    assert assignments.count() == campaign.overlap * len(selections)
    for s in selections:
        slots = assignments.filter(sample_id=s.sample_id)
        assert slots.count() == campaign.overlap
        assert all(a.state == "open" and a.labeler_id is None for a in slots)


@pytest.mark.django_db
def test_admin_start_next_generation_bootstraps_scores_selects_and_assigns(
    client, lead, campaign, tiny_models, eager, django_capture_on_commit_callbacks
):
    campaign.overlap = 2
    campaign.save()
    pool = make_pool(campaign, n_problems=4, per_problem=6)
    assert campaign.active_checkpoint is None
    client.force_login(lead)

    response, callbacks = start_from_admin(client, campaign, django_capture_on_commit_callbacks)

    assert response.status_code == 302
    assert len(callbacks) == 1, "the pipeline is queued once, on commit"
    generation = Generation.objects.get(campaign=campaign)
    assert generation.number == 0
    assert_generation_opened(generation, pool)
    checkpoint = generation.checkpoint
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk
    assert checkpoint.status == Checkpoint.Status.ACTIVE
    assert checkpoint.base_model == "bootstrap"
    assert checkpoint.adapter == Checkpoint.Adapter.TOKEN_CLASSIFICATION
    assert Path(checkpoint.path).is_relative_to(tiny_models.STEPWISE_MODEL_DIR)
    assert (Path(checkpoint.path) / "stepwise_prm.json").is_file()
    assert checkpoint.training_record["bootstrap"]["hidden"] == 32

    # The lead sees the outcome and the progress in the admin.
    page = client.get(response.url)
    assert "generation 0 queued" in page.content.decode()
    page = client.get(reverse("admin:annotate_generation_changelist")).content.decode()
    assert f"{len(pool)} / {len(pool)} samples (100%)" in page
    assert 'class="field-status">Open<' in page
    page = client.get(reverse("admin:annotate_campaign_changelist")).content.decode()
    assert "0: Open" in page


@pytest.mark.django_db
def test_second_generation_reuses_the_checkpoint_and_skips_selected_samples(
    client, lead, campaign, tiny_models, eager, django_capture_on_commit_callbacks
):
    make_pool(campaign, n_problems=4, per_problem=6)
    client.force_login(lead)
    start_from_admin(client, campaign, django_capture_on_commit_callbacks)
    first = Generation.objects.get(campaign=campaign, number=0)
    first_selected = set(first.selections.values_list("sample_id", flat=True))
    scores_before = Score.objects.count()

    # The first one still has open slots: the action asks first, and the lead keeps it open.
    response, _ = start_from_admin(client, campaign, django_capture_on_commit_callbacks)
    assert response.url == reverse("admin:annotate_campaign_start_generation", args=[campaign.pk])
    assert not Generation.objects.filter(number=1).exists()
    confirm_start(client, campaign, "keep", django_capture_on_commit_callbacks)

    second = Generation.objects.get(campaign=campaign, number=1)
    assert second.status == Generation.Status.OPEN, second.error
    assert second.checkpoint_id == first.checkpoint_id
    assert Checkpoint.objects.count() == 1, "no second bootstrap"
    assert Score.objects.count() == scores_before, "every sample was already scored"
    assert second.progress_total == 0
    picked = list(second.selections.order_by("rank").values_list("sample_id", flat=True))
    assert picked and not set(picked) & first_selected
    assert picked == reference_selection(campaign, second.checkpoint_id, second.params, second.pk)


@pytest.mark.django_db
def test_labeler_cannot_start_a_generation(client, labeler, campaign, tiny_models, eager):
    make_pool(campaign)
    client.force_login(labeler)
    response = client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "start_next_generation", "_selected_action": [campaign.pk]},
    )
    assert response.status_code == 302
    assert reverse("admin:login") in response.url
    assert not Generation.objects.exists()
    assert not Checkpoint.objects.exists()


@pytest.mark.django_db
def test_anonymous_cannot_start_a_generation(client, campaign):
    response = client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "start_next_generation", "_selected_action": [campaign.pk]},
    )
    assert response.status_code == 302 and reverse("admin:login") in response.url
    assert not Generation.objects.exists()


@pytest.mark.django_db
def test_command_line_score_then_select_runs_a_generation(campaign, tiny_models):
    pool = make_pool(campaign, n_problems=3, per_problem=5)
    out, err = io.StringIO(), io.StringIO()

    call_command("score", "--campaign", campaign.slug, stdout=out, stderr=err)

    assert "bootstrapping" in err.getvalue()
    campaign.refresh_from_db()
    checkpoint = campaign.active_checkpoint
    assert checkpoint is not None and checkpoint.status == Checkpoint.Status.ACTIVE
    assert f"Scored {len(pool)} samples" in out.getvalue()
    scored = Score.objects.filter(checkpoint=checkpoint).values_list("sample_id", flat=True)
    assert sorted(scored) == pool
    assert all(0.0 <= s <= 1.0 for s in Score.objects.values_list("score", flat=True))

    out = io.StringIO()
    call_command("select", "--campaign", campaign.slug, "--scores", "active", stdout=out)

    assert "Opened generation 0" in out.getvalue()
    generation = Generation.objects.get(campaign=campaign)
    assert generation.status == Generation.Status.OPEN
    assert generation.checkpoint_id == checkpoint.pk
    picked = list(generation.selections.order_by("rank").values_list("sample_id", flat=True))
    assert picked == reference_selection(campaign, checkpoint.pk, generation.params, generation.pk)

    out = io.StringIO()
    call_command("score", "--campaign", campaign.slug, stdout=out, stderr=io.StringIO())
    assert "Scored 0 samples" in out.getvalue()
    assert Score.objects.count() == len(pool)
    assert Checkpoint.objects.count() == 1


@pytest.mark.django_db
def test_score_command_refuses_another_campaigns_checkpoint(campaign, tiny_models):
    from django.core.management.base import CommandError

    from annotate.models import Campaign

    other = Campaign.objects.create(slug="other")
    foreign = Checkpoint.objects.create(campaign=other, name="x", path="/nowhere")
    with pytest.raises(CommandError, match="another campaign"):
        call_command("score", "--campaign", campaign.slug, "--checkpoint", str(foreign.pk))


def prepared(campaign) -> tuple[Generation, list[int]]:
    generation = begin_generation(campaign)
    chunk_ids = pipeline.prepare_generation(generation.pk)
    generation.refresh_from_db()
    return generation, chunk_ids


@pytest.mark.django_db
def test_a_chunk_run_twice_writes_and_counts_nothing_twice(campaign, tiny_models):
    make_pool(campaign, n_problems=4, per_problem=6)
    generation, chunk_ids = prepared(campaign)
    assert generation.status == Generation.Status.SCORING
    assert len(chunk_ids) > 1
    first = ScoringChunk.objects.get(pk=chunk_ids[0])

    assert pipeline.score_chunk(first.pk) is False
    generation.refresh_from_db()
    assert generation.progress_done == first.sample_count
    assert Score.objects.count() == first.sample_count

    assert pipeline.score_chunk(first.pk) is False
    generation.refresh_from_db()
    assert generation.progress_done == first.sample_count
    assert Score.objects.count() == first.sample_count
    first.refresh_from_db()
    assert first.done and first.attempts == 1


@pytest.mark.django_db
def test_a_chunk_killed_between_sub_batches_resumes_where_it_stopped(
    campaign, tiny_models, monkeypatch
):
    make_pool(campaign, n_problems=2, per_problem=6)
    generation, chunk_ids = prepared(campaign)
    chunk = ScoringChunk.objects.get(pk=chunk_ids[0])
    assert chunk.sample_count > tiny_models.STEPWISE_SCORING_SUB_BATCH

    from selector.scoring import loading

    real = loading.get_adapter
    calls = {"n": 0}

    class Dies:
        def __init__(self, adapter):
            self.adapter = adapter

        def score(self, *args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                raise RuntimeError("worker killed")
            return self.adapter.score(*args, **kwargs)

    monkeypatch.setattr(loading, "get_adapter", lambda *a, **k: Dies(real(*a, **k)))
    with pytest.raises(RuntimeError, match="worker killed"):
        pipeline.score_chunk(chunk.pk)
    sub = tiny_models.STEPWISE_SCORING_SUB_BATCH
    generation.refresh_from_db()
    assert Score.objects.count() == generation.progress_done == sub
    chunk.refresh_from_db()
    assert not chunk.done

    monkeypatch.setattr(loading, "get_adapter", real)
    pipeline.score_chunk(chunk.pk)
    generation.refresh_from_db()
    chunk.refresh_from_db()
    assert chunk.done and chunk.attempts == 2
    assert Score.objects.count() == generation.progress_done == chunk.sample_count


@pytest.mark.django_db
def test_finisher_that_died_before_queueing_selection_is_recovered(
    campaign, tiny_models, monkeypatch
):
    make_pool(campaign, n_problems=1, per_problem=6)
    generation, chunk_ids = prepared(campaign)
    assert len(chunk_ids) == 1
    assert pipeline.score_chunk(chunk_ids[0]) is True
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SELECTING
    # A redelivery of the finished chunk (its worker died before queueing selection).
    assert pipeline.score_chunk(chunk_ids[0]) is True
    assert pipeline.select_generation(generation.pk).status == Generation.Status.OPEN
    assert pipeline.score_chunk(chunk_ids[0]) is False
    # Selecting again changes nothing.
    n = Selection.objects.count()
    assert pipeline.select_generation(generation.pk).status == Generation.Status.OPEN
    assert Selection.objects.count() == n


@pytest.mark.django_db
def test_the_model_is_loaded_once_per_process(campaign, tiny_models, monkeypatch):
    from selector.scoring import clear_adapter_cache, loading

    make_pool(campaign, n_problems=4, per_problem=6)
    _, chunk_ids = prepared(campaign)
    clear_adapter_cache()
    loads = []
    real = loading.load_adapter
    monkeypatch.setattr(loading, "load_adapter", lambda *a, **k: loads.append(a) or real(*a, **k))
    for chunk_id in chunk_ids:
        pipeline.score_chunk(chunk_id)
    assert len(chunk_ids) > 1
    assert len(loads) == 1


@pytest.mark.django_db
def test_one_running_generation_per_campaign(client, lead, campaign, tiny_models):
    make_pool(campaign)
    running = begin_generation(campaign)
    with pytest.raises(pipeline.PipelineError, match="still pending"):
        begin_generation(campaign)
    client.force_login(lead)
    response = client.post(
        reverse("admin:annotate_campaign_changelist"),
        {"action": "start_next_generation", "_selected_action": [campaign.pk]},
        follow=True,
    )
    assert "generation 0 is still pending" in response.content.decode()
    assert list(Generation.objects.values_list("pk", flat=True)) == [running.pk]


@pytest.mark.django_db
def test_failure_marks_the_generation_failed_and_the_next_start_retries_it(
    client, lead, campaign, tiny_models, eager, django_capture_on_commit_callbacks
):
    from annotate.models import Sample

    make_pool(campaign, n_problems=3, per_problem=6)
    # With no answer anywhere the pool is empty: nothing to score, nothing to select.
    answers = dict(Sample.objects.values_list("pk", "answer"))
    Sample.objects.update(answer=None)
    client.force_login(lead)

    start_from_admin(client, campaign, django_capture_on_commit_callbacks)

    generation = Generation.objects.get(campaign=campaign)
    assert generation.status == Generation.Status.FAILED
    assert "nothing to select" in generation.error
    page = client.get(reverse("admin:annotate_campaign_changelist")).content.decode()
    assert "0: Failed" in page

    for pk, answer in answers.items():
        Sample.objects.filter(pk=pk).update(answer=answer)
    start_from_admin(client, campaign, django_capture_on_commit_callbacks)

    retried = Generation.objects.get(campaign=campaign)
    assert retried.pk == generation.pk and retried.number == 0
    assert retried.error == ""
    pool = list(
        Sample.objects.filter(campaign=campaign, problem__split="train", answer__isnull=False)
        .order_by("pk")
        .values_list("pk", flat=True)
    )
    assert_generation_opened(retried, pool)


@pytest.mark.django_db
def test_a_chunk_that_keeps_killing_its_worker_fails_the_generation(campaign, tiny_models):
    from workers.tasks import score_chunk

    make_pool(campaign, n_problems=3, per_problem=8)
    generation, chunk_ids = prepared(campaign)
    assert len(chunk_ids) == 3
    ScoringChunk.objects.filter(pk=chunk_ids[0]).update(attempts=pipeline.MAX_CHUNK_ATTEMPTS)
    # Traced as a worker traces it (no eager propagation), so the task's on_failure runs.
    result = score_chunk.apply(args=(generation.pk, chunk_ids[0]), throw=False)
    assert result.failed() and isinstance(result.result, pipeline.PipelineError)
    generation.refresh_from_db()
    assert generation.status == Generation.Status.FAILED
    assert "started 6 times" in generation.error
    # The other chunks stop at once.
    assert pipeline.score_chunk(chunk_ids[1]) is False
    assert not Score.objects.exists()


@pytest.mark.django_db
def test_bootstrap_trains_on_the_labels_a_campaign_already_has(campaign, tiny_models):
    data = Path(__file__).resolve().parents[3] / "data" / "prm800k_examples.jsonl"
    call_command("import_prm800k", str(data), "--campaign", campaign.slug, stdout=io.StringIO())
    checkpoint = pipeline.ensure_active_checkpoint(campaign)
    assert checkpoint.trained_on_labels > 0
    assert checkpoint.training_record["epochs_completed"] == pipeline.BOOTSTRAP_EPOCHS
    assert (Path(checkpoint.path) / "model.safetensors").is_file()
    assert not Path(checkpoint.path + "-init").exists()
    campaign.refresh_from_db()
    assert campaign.active_checkpoint_id == checkpoint.pk
    assert pipeline.ensure_active_checkpoint(campaign).pk == checkpoint.pk


def run_in_threads(*targets):
    """Run callables at once in threads with their own DB connections; their results."""
    results: list = [None] * len(targets)
    errors: list = []

    def run(i, target):
        try:
            results[i] = target()
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i, t)) for i, t in enumerate(targets)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    return results


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_two_chunks_finishing_together_move_to_selecting_exactly_once(
    campaign, tiny_models, monkeypatch
):
    make_pool(campaign, n_problems=2, per_problem=8)
    generation, chunk_ids = prepared(campaign)
    assert len(chunk_ids) == 2
    barrier = threading.Barrier(2)
    real_finish = pipeline.finish_chunk

    def finish_together(chunk):
        barrier.wait(timeout=30)
        return real_finish(chunk)

    monkeypatch.setattr(pipeline, "finish_chunk", finish_together)
    results = run_in_threads(*(lambda c=c: pipeline.score_chunk(c) for c in chunk_ids))

    assert sorted(results) == [False, True]
    generation.refresh_from_db()
    assert generation.status == Generation.Status.SELECTING
    assert generation.progress_done == generation.progress_total == Score.objects.count()


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_duplicate_deliveries_of_one_chunk_at_once_count_progress_once(
    campaign, tiny_models, monkeypatch
):
    tiny_models.STEPWISE_SCORING_SUB_BATCH = 100  # one sub-batch: both score, then both write
    make_pool(campaign, n_problems=1, per_problem=6)
    generation, chunk_ids = prepared(campaign)
    chunk = ScoringChunk.objects.get(pk=chunk_ids[0])
    from selector.scoring import loading

    real = loading.get_adapter
    barrier = threading.Barrier(2)

    class Together:
        def __init__(self, adapter):
            self.adapter = adapter

        def score(self, *args, **kwargs):
            out = self.adapter.score(*args, **kwargs)
            barrier.wait(timeout=30)
            return out

    monkeypatch.setattr(loading, "get_adapter", lambda *a, **k: Together(real(*a, **k)))
    results = run_in_threads(
        lambda: pipeline.score_chunk(chunk.pk), lambda: pipeline.score_chunk(chunk.pk)
    )

    assert sorted(results) == [False, True]
    generation.refresh_from_db()
    assert Score.objects.count() == chunk.sample_count
    assert generation.progress_done == generation.progress_total == chunk.sample_count
    assert generation.status == Generation.Status.SELECTING
