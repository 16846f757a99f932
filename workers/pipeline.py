"""One generation, end to end: bootstrap a checkpoint if needed, score the pool in chunks,
select, open assignments.

Functions here join the database (`annotate`) to the models (`selector`); the Celery tasks in
`workers.tasks` are thin wrappers that take IDs. Status changes go through the `Generation`
lifecycle methods. Every step is idempotent, so a redelivered or
retried task (acks_late, a killed worker) repeats nothing that already finished:

    begin_generation     (annotate.generations) campaign locked; a new Generation in
                         `pending` (or the failed last one, reset), refused while another
                         one of the campaign is running
    generate_samples     (workers.generation) when the campaign's N > 0: N samples per train
                         problem, keyed (problem, generation, index), graded; `generating`
    prepare_generation   the active checkpoint, bootstrapped and activated when there is none;
                         the unscored pool split into ScoringChunks; status `scoring`
    score_chunk          each sub-batch's Score rows and the progress counter in one
                         transaction, then the chunk's heartbeat; the last chunk moves the
                         generation to `selecting`. A chunk whose heartbeat stops (its worker
                         died) is queued again by beat's `requeue_stale_chunks`
    select_generation    `annotate.generations.open_generation` fills the row: selections,
                         assignment slots, status `open`

torch is imported only inside the functions that run a model (`selector.scoring`), so the web
process, which imports this module to queue work, stays light.
"""

from __future__ import annotations

import logging
import shutil
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Exists, F, Max, OuterRef
from django.utils import timezone

from annotate.generations import PipelineError, SelectionError, open_generation, pool_samples
from annotate.models import Campaign, Checkpoint, Generation, Problem, Sample, Score
from workers.loop import campaign_examples, validation_keys
from workers.models import ScoringChunk

logger = logging.getLogger(__name__)

#: Samples whose text trains a bootstrap tokenizer.
BOOTSTRAP_TEXT_SAMPLES = 20_000
#: Deliveries of one chunk before the generation is failed (a chunk that kills its worker,
#: e.g. out of memory, would otherwise be redelivered forever).
MAX_CHUNK_ATTEMPTS = 5
#: Epochs when a bootstrap model is trained on the labels a campaign already has.
BOOTSTRAP_EPOCHS = 2


def chunk_samples() -> int:
    """Samples per scoring task (whole problems, so a chunk may hold more)."""
    return max(1, int(settings.STEPWISE_SCORING_CHUNK))


def sub_batch_samples() -> int:
    """Samples scored and committed per transaction inside a chunk."""
    return max(1, int(settings.STEPWISE_SCORING_SUB_BATCH))


def _lock_generation(generation_id: int) -> None:
    """SELECT … FOR UPDATE on the generation row (inside a transaction): the one lock that
    orders progress writes and chunk completion."""
    Generation.objects.select_for_update().only("pk").get(pk=generation_id)


# --- checkpoints ---------------------------------------------------------------------------


def _campaign_texts(campaign: Campaign) -> list[str]:
    """Problems and the steps of the first samples: a list, not a generator, because the
    tokenizer trainer may pull its input from another thread (another DB connection)."""
    texts = list(Problem.objects.filter(campaign=campaign).values_list("problem", flat=True))
    samples = Sample.objects.for_campaign(campaign).order_by("pk").values_list("steps", flat=True)
    for steps in samples[:BOOTSTRAP_TEXT_SAMPLES].iterator(chunk_size=2000):
        texts.extend(steps)
    return texts


def build_bootstrap_files(campaign: Campaign) -> tuple[str, Path, dict[str, Any], int]:
    """Write a small native PRM for the campaign to disk; no database row yet.

    The tokenizer is trained on the campaign's own problems and steps and the encoder starts
    from a seeded random init (size: `settings.STEPWISE_BOOTSTRAP`); when the campaign has
    labels, the model is then trained on them. Returns (name, directory, training record,
    labels trained on).
    """
    from selector.scoring.bootstrap import build_bootstrap_model

    options = dict(settings.STEPWISE_BOOTSTRAP)
    name = f"bootstrap-{timezone.now():%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    out_dir = Checkpoint.directory_for(campaign, name)
    examples = campaign_examples(campaign)
    if not examples:
        build_bootstrap_model(_campaign_texts(campaign), out_dir, **options)
        return name, out_dir, {"labels": 0, "bootstrap": options}, 0

    from selector.training import TrainingConfig, train_prm

    # The tokenizer sees the whole pool's text, not only the few labeled solutions.
    init_dir = Checkpoint.directory_for(campaign, f"{name}-init")
    build_bootstrap_model(_campaign_texts(campaign), init_dir, **options)
    # The loop's held-out problems, never a random split: no checkpoint trains on them.
    held = validation_keys({e.key for e in examples})
    result = train_prm(
        examples,
        TrainingConfig(out_dir=out_dir, base=init_dir, val_problems=held, epochs=BOOTSTRAP_EPOCHS),
    )
    shutil.rmtree(init_dir, ignore_errors=True)
    record = {**result.to_json(), "bootstrap": options}
    return name, out_dir, record, result.n_train_labels + result.n_val_labels


def ensure_active_checkpoint(campaign: Campaign) -> Checkpoint:
    """The campaign's active checkpoint; with none, bootstrap one, register and activate it.

    The model is built outside any transaction (it takes a while); registering it takes the
    campaign row lock, so of two concurrent bootstraps only one becomes active.
    """
    current = Campaign.objects.get(pk=campaign.pk)
    if current.active_checkpoint_id is not None:
        return Checkpoint.objects.get(pk=current.active_checkpoint_id)
    name, out_dir, record, n_labels = build_bootstrap_files(current)
    with transaction.atomic():
        locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
        if locked.active_checkpoint_id is not None:
            shutil.rmtree(out_dir, ignore_errors=True)
            return Checkpoint.objects.get(pk=locked.active_checkpoint_id)
        checkpoint = Checkpoint.objects.create(
            campaign=locked,
            name=name,
            path=str(out_dir),
            adapter=Checkpoint.Adapter.TOKEN_CLASSIFICATION,
            base_model="bootstrap",
            trained_on_labels=n_labels,
            training_record=record,
            status=Checkpoint.Status.READY,
        )
        locked.activate(checkpoint)
    logger.info("campaign %s: bootstrapped checkpoint %s at %s", campaign.slug, name, out_dir)
    return checkpoint


# --- scoring -------------------------------------------------------------------------------


def score_samples(
    campaign: Campaign,
    checkpoint: Checkpoint,
    sample_ids: Sequence[int],
    *,
    generation: Generation | None = None,
    on_batch: Callable[[int], None] | None = None,
    sub_batch: int | None = None,
) -> int:
    """Score those of `sample_ids` that `checkpoint` has not scored; returns how many.

    Each sub-batch is committed on its own, so a crash loses at most one. With `generation`,
    the sub-batch's transaction locks the generation row, writes only Scores still missing
    and adds exactly that many to `progress_done`: a duplicate delivery of the same chunk
    running at the same time is serialised on that lock and counts nothing twice.
    """
    from selector.scoring import get_adapter

    size = sub_batch or sub_batch_samples()
    # One model per worker process, kept warm across chunks (an LRU keyed by path and mtime).
    adapter = get_adapter(checkpoint.path, checkpoint.adapter)
    done = 0
    for start in range(0, len(sample_ids), size):
        ids = list(sample_ids[start : start + size])
        rows = list(
            Sample.objects.filter(pk__in=ids)
            .exclude(Exists(Score.objects.filter(sample=OuterRef("pk"), checkpoint=checkpoint)))
            .order_by("pk")
            .values_list("pk", "problem__problem", "steps")
        )
        if not rows:
            continue
        results = adapter.score(
            [(problem, steps) for _, problem, steps in rows],
            aggregation=campaign.score_aggregation,
            neutral_is_positive=campaign.neutral_is_positive,
        )
        with transaction.atomic():
            if generation is not None:
                _lock_generation(generation.pk)
            existing = set(
                Score.objects.filter(checkpoint=checkpoint, sample_id__in=ids).values_list(
                    "sample_id", flat=True
                )
            )
            new = [
                Score(
                    sample_id=pk,
                    checkpoint=checkpoint,
                    # The check constraint wants [0, 1]; float rounding may step just outside.
                    score=min(1.0, max(0.0, r.score)),
                    step_scores=r.step_scores,
                    truncated=r.truncated,
                )
                for (pk, _, _), r in zip(rows, results, strict=True)
                if pk not in existing
            ]
            # An upsert, so a `score` command racing a worker never fails on the unique pair.
            Score.objects.bulk_create(
                new,
                update_conflicts=True,
                unique_fields=["sample", "checkpoint"],
                update_fields=["score", "step_scores", "truncated"],
            )
            if generation is not None and new:
                Generation.objects.filter(pk=generation.pk).update(
                    progress_done=F("progress_done") + len(new), updated_at=timezone.now()
                )
        done += len(new)
        if on_batch is not None:
            on_batch(len(new))
    return done


# --- the generation pipeline ---------------------------------------------------------------


def prepare_generation(generation_id: int) -> list[int]:
    """Give the generation a checkpoint (bootstrapping one if the campaign has none) and split
    its unscored pool into chunks; status `scoring`.

    Returns the IDs of chunks still to score, none when there is nothing left to score (then
    `Generation.mark_scored`) or the generation is past scoring.
    """
    generation = Generation.objects.select_related("campaign").get(pk=generation_id)
    if generation.status not in Generation.SCORABLE_STATES:
        return []
    if generation.checkpoint_id is None:
        checkpoint = ensure_active_checkpoint(generation.campaign)
        Generation.objects.filter(pk=generation_id, checkpoint__isnull=True).update(
            checkpoint=checkpoint
        )
    with transaction.atomic():
        locked = (
            Generation.objects.select_for_update(of=("self",))
            .select_related("campaign", "checkpoint")
            .get(pk=generation_id)
        )
        if locked.status not in Generation.SCORABLE_STATES:
            return []
        if locked.scoring_chunks.exists():  # a redelivery: progress so far stands
            progress = {
                "progress_done": locked.progress_done,
                "progress_total": locked.progress_total,
            }
        else:
            progress = {"progress_done": 0, "progress_total": _create_chunks(locked)}
        if not locked.start_scoring(**progress):
            return []
    return list(
        ScoringChunk.objects.filter(generation_id=generation_id, done=False).values_list(
            "pk", flat=True
        )
    )


def _create_chunks(generation: Generation) -> int:
    """Whole problems per chunk, about `chunk_samples()` samples each, in problem order;
    returns the samples to score."""
    pool = pool_samples(generation.campaign, unscored_by=generation.checkpoint)
    per_problem = list(
        pool.order_by().values("problem_id").annotate(n=Count("pk")).order_by("problem_id")
    )
    cutoff = pool.order_by().aggregate(m=Max("pk"))["m"]
    limit = chunk_samples()
    chunks: list[tuple[list[int], int]] = []
    current: list[int] = []
    size = 0
    for row in per_problem:
        current.append(row["problem_id"])
        size += row["n"]
        if size >= limit:
            chunks.append((current, size))
            current, size = [], 0
    if current:
        chunks.append((current, size))
    ScoringChunk.objects.bulk_create(
        ScoringChunk(
            generation=generation,
            index=i,
            problem_ids=ids,
            sample_count=n,
            max_sample_id=cutoff,
        )
        for i, (ids, n) in enumerate(chunks)
    )
    return sum(n for _, n in chunks)


def score_chunk(chunk_id: int) -> bool:
    """Score one chunk. True when selection should be queued: this call finished the
    generation's last chunk, or (a redelivery) the chunk was done and the generation is
    waiting in `selecting`."""
    chunk = ScoringChunk.objects.select_related(
        "generation__campaign", "generation__checkpoint"
    ).get(pk=chunk_id)
    generation = chunk.generation
    if chunk.done:
        # The finisher may have died between its commit and queueing selection.
        return generation.status == Generation.Status.SELECTING
    if generation.status != Generation.Status.SCORING:
        return False
    # The heartbeat (here and after every sub-batch) tells beat's sweep the chunk is alive.
    ScoringChunk.objects.filter(pk=chunk.pk).update(
        attempts=F("attempts") + 1, heartbeat_at=timezone.now()
    )
    chunk.refresh_from_db(fields=["attempts"])
    if chunk.attempts > MAX_CHUNK_ATTEMPTS:
        raise PipelineError(
            f"scoring chunk {chunk.index} was started {chunk.attempts} times without finishing"
        )
    sample_ids = pool_samples(generation.campaign, unscored_by=generation.checkpoint).filter(
        problem_id__in=chunk.problem_ids
    )
    if chunk.max_sample_id is not None:
        sample_ids = sample_ids.filter(pk__lte=chunk.max_sample_id)
    score_samples(
        generation.campaign,
        generation.checkpoint,
        list(sample_ids.order_by("pk").values_list("pk", flat=True)),
        generation=generation,
        on_batch=lambda n: beat_chunk(chunk.pk),
    )
    return finish_chunk(chunk)


def beat_chunk(chunk_id: int) -> None:
    """The chunk's worker is alive (`annotate.generations.requeue_stale_chunks` reads it)."""
    ScoringChunk.objects.filter(pk=chunk_id, done=False).update(heartbeat_at=timezone.now())


def finish_chunk(chunk: ScoringChunk) -> bool:
    """Mark the chunk done; True for the one caller that moved the generation to selecting."""
    with transaction.atomic():
        # The generation row lock serialises finishers, so the last one sees all others done.
        _lock_generation(chunk.generation_id)
        ScoringChunk.objects.filter(pk=chunk.pk).update(done=True)
        return Generation(pk=chunk.generation_id).mark_scored()


def select_generation(generation_id: int) -> Generation | None:
    """Select with the generation's checkpoint and frozen params; open its assignments.

    Idempotent: an open generation is returned as is; one in any other state than
    `selecting` (failed, still scoring) gives None.
    """
    generation = Generation.objects.select_related("campaign").get(pk=generation_id)
    if generation.status == Generation.Status.OPEN:
        return generation
    if generation.status != Generation.Status.SELECTING:
        return None
    try:
        generation, _ = open_generation(
            generation.campaign, scores=generation.checkpoint_id, generation=generation
        )
    except SelectionError:
        # A duplicate delivery may have opened it while this one waited on the campaign lock.
        generation.refresh_from_db(fields=["status"])
        if generation.status == Generation.Status.OPEN:
            return generation
        raise
    return generation
