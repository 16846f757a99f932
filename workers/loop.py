"""The retraining loop: train → evaluate → gate → rescore the pool → open the next generation.

    start_retraining     (annotate.retraining) campaign row locked; refused while a training
                         or a generation of the campaign runs (one loop at a time); a
                         Checkpoint in `training`, its task queued on commit
    train_checkpoint     all labels so far (train-split problems; supervision up to the first
                         error, 3 classes) → a native PRM in the checkpoint's directory;
                         resumable (a redelivered task continues from the last epoch)
    evaluate_for_gate    the candidate AND the active checkpoint on one data set: the
                         validation problems' labels, the test split's graded samples
                         (best-of-N) and the campaign's gold first-error items
    gate_checkpoint      promote (campaign.activate) only if the candidate beats the active
                         one on the campaign's `promotion_metric` by more than
                         `promotion_min_delta`; otherwise `rejected`, numbers kept. Then the
                         triggering generation is completed and the next one is queued
                         (`annotate.generations.start_generation`: rescore with the active
                         checkpoint, select, assign)

A loop checkpoint's progress is its `retrain_stage` (training → evaluating → gating → done, or
failed), each step a conditional update (`Checkpoint.advance`), so a redelivered task finds
the stage it left and repeats nothing.

Validation data is the same for every checkpoint of a campaign: a problem is held out iff a
hash of its text falls below `VAL_FRACTION` (`validation_keys`), so a problem once held out
stays held out as labels accumulate, no checkpoint ever trains on it (the pipeline's bootstrap
checkpoint included: it holds out `validation_keys` too), and the gate's two evaluations see
exactly the same labeled steps. The gate also reports both checkpoints on the uniform control
arm's labels of those problems (`uniform_examples`): labels no strategy chose, so an unbiased
estimate of quality on the pool.

Triggers (`due_generations`, run by the beat task `check_retraining`): a campaign with
`auto_retrain` whose newest generation is open and has `retrain_label_target` finished labels
(default: all its regular assignments), once per generation (failed attempts are retried up to
`MAX_ATTEMPTS`); or the campaign's own beat schedule (`retrain_campaign`). After a label-target
retraining the next generation always opens (with the old checkpoint if the new one was
rejected); after a scheduled or manual one only when the candidate was promoted.

Training warm-starts from the active checkpoint when it is native (a bootstrap lineage keeps
the bootstrap learning rate), else builds a bootstrap model from the labeled text.

torch is imported only inside the functions that run a model.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from annotate.generations import PipelineError, start_generation
from annotate.models import (
    Assignment,
    Campaign,
    Checkpoint,
    Generation,
    GoldStandard,
    Label,
    Problem,
    Sample,
)
from annotate.retraining import MAX_ATTEMPTS, attempts, start_retraining
from selector.evaluation import processbench_label
from selector.promotion import METRICS, decide
from selector.ratings import first_error
from selector.training import splits
from workers.training_data import campaign_training_examples

if TYPE_CHECKING:
    from selector.training import TrainingExample

logger = logging.getLogger(__name__)

#: Share of a campaign's labeled problems held out for validation (stable, hash-based).
VAL_FRACTION = 0.2
#: Best-of-N subsets per N (PRM800K-style random subsampling; exact below this many).
BEST_OF_N_TRIALS = 200

#: Triggers after which the next generation opens even when the candidate was rejected.
NEXT_ON_REJECT = {Checkpoint.Trigger.LABEL_TARGET}


class LoopError(RuntimeError):
    """The loop cannot go on (no labels to train on, a checkpoint in the wrong state)."""


# --- data ------------------------------------------------------------------------------------


def validation_keys(keys: Iterable[str], fraction: float = VAL_FRACTION) -> set[str]:
    """The campaign's held-out problem keys (`selector.training.splits.validation_keys`)."""
    return splits.validation_keys(keys, fraction)


def test_problem_texts(campaign: Campaign) -> set[str]:
    return set(
        Problem.objects.filter(campaign=campaign, split=Problem.Split.TEST).values_list(
            "problem", flat=True
        )
    )


def campaign_examples(
    campaign: Campaign, extra: Sequence[TrainingExample] = ()
) -> list[TrainingExample]:
    """Examples from the campaign's finished labels (plus `extra`), minus test-split problems.

    Test-split problems are evaluation data (best-of-N, gold first errors): labels on them,
    e.g. QC answers on gold items, never reach training.
    """
    test = test_problem_texts(campaign)
    examples = [e for e in campaign_training_examples(campaign) if e.steps]
    examples += [e for e in extra if e.steps]
    return [e for e in examples if e.problem not in test]


def uniform_examples(
    campaign: Campaign, examples: Sequence[TrainingExample]
) -> list[TrainingExample]:
    """The `examples` that label samples the uniform control arm drew."""
    drawn = Label.objects.finished().regular().for_campaign(campaign)
    drawn = drawn.filter(assignment__arm=Assignment.Arm.UNIFORM)
    keys = {
        (problem, tuple(steps))
        for problem, steps in drawn.values_list("sample__problem__problem", "sample__steps")
    }
    return [e for e in examples if (e.problem, tuple(e.steps)) in keys]


@dataclass
class EvaluationData:
    """One evaluation set: what every checkpoint compared in a gate is scored on."""

    labeled: list = field(default_factory=list)  # TrainingExample of validation problems
    best_of_n: list = field(default_factory=list)  # GradedSolution of test problems
    first_error: list = field(default_factory=list)  # FirstErrorSample from gold items
    description: dict[str, Any] = field(default_factory=dict)
    uniform: list = field(default_factory=list)  # the `labeled` the uniform arm drew

    @property
    def empty(self) -> bool:
        return not (self.labeled or self.best_of_n or self.first_error)

    def uniform_arm(self) -> EvaluationData:
        """Only the uniform control arm's validation labels."""
        description = {"n_uniform_examples": len(self.uniform)}
        return EvaluationData(labeled=list(self.uniform), description=description)


def evaluation_data(
    campaign: Campaign,
    *,
    examples: Sequence[TrainingExample] | None = None,
    val_fraction: float = VAL_FRACTION,
    max_test_problems: int | None = None,
) -> EvaluationData:
    """The campaign's evaluation set: validation labels, graded test samples, gold items."""
    from selector.evaluation import FirstErrorSample, GradedSolution

    if examples is None:
        examples = campaign_examples(campaign)
    held = validation_keys({e.key for e in examples}, val_fraction)
    labeled = [e for e in examples if e.key in held]
    uniform = uniform_examples(campaign, labeled)

    rows = (
        Sample.objects.for_campaign(campaign)
        .test()
        .filter(is_correct__isnull=False)
        .order_by("problem_id", "pk")
        .values_list("problem__unique_id", "problem__problem", "steps", "answer", "is_correct")
    )
    groups: dict[str, list] = {}
    for unique_id, problem, steps, answer, correct in rows.iterator(chunk_size=2000):
        if steps:
            groups.setdefault(unique_id, []).append(
                GradedSolution(unique_id, problem, list(steps), answer, bool(correct))
            )
    # Best-of-N needs a choice: problems with at least two graded samples.
    chosen = [g for g in groups.values() if len(g) >= 2][:max_test_problems]
    best_of_n = [s for g in chosen for s in g]

    gold_first_errors = []
    gold = (
        GoldStandard.objects.filter(
            sample__campaign=campaign,
            finish_reason__in=[Label.FinishReason.FOUND_ERROR, Label.FinishReason.SOLUTION],
        )
        .order_by("pk")
        .values_list("sample__problem__problem", "sample__steps", "ratings")
    )
    for problem, steps, ratings in gold:
        if steps:
            truth = processbench_label(first_error(ratings))
            if truth < len(steps):
                gold_first_errors.append(FirstErrorSample(problem, list(steps), truth))

    description = {
        "val_fraction": val_fraction,
        "n_val_problems": len({e.key for e in labeled}),
        "n_val_examples": len(labeled),
        "n_val_labels": sum(len(e.ratings) for e in labeled),
        "n_test_problems": len(chosen),
        "n_test_samples": len(best_of_n),
        "n_gold": len(gold_first_errors),
        "n_uniform_examples": len(uniform),
    }
    return EvaluationData(labeled, best_of_n, gold_first_errors, description, uniform)


def _normalize_answer(answer: str) -> str:
    from selector.grading.normalize import normalize_answer

    return normalize_answer(answer) or answer.strip()


def summarize(metrics: dict[str, Any]) -> dict[str, float | None]:
    """The gate's candidate metrics, flat: val_loss, step_auc, first_error_f1, best_of_n."""
    labeled = metrics.get("labeled") or {}
    curves = metrics.get("best_of_n") or {}
    prm = curves.get("prm") or []
    return {
        "val_loss": metrics.get("val_loss"),
        "step_auc": metrics.get("step_auc"),
        "first_error_f1": (labeled.get("first_error") or {}).get("f1"),
        "gold_first_error_f1": (metrics.get("first_error") or {}).get("f1"),
        "best_of_n": prm[-1][1] if prm else None,
        "best_of_n_orm": curves["orm"][-1][1] if curves.get("orm") else None,
        "best_of_n_majority": curves["majority"][-1][1] if curves.get("majority") else None,
        "best_of_n_n": prm[-1][0] if prm else None,
    }


def evaluate(
    checkpoint: Checkpoint,
    data: EvaluationData,
    *,
    aggregation: str = "product",
    trials: int = BEST_OF_N_TRIALS,
    seed: int = 0,
) -> dict[str, Any]:
    """Score `data` with the checkpoint: best-of-N curves, first-error metrics, step AUC, val
    loss (`selector.evaluation.evaluate_checkpoint`), plus `summary`, `data` and a timestamp."""
    from selector.evaluation import evaluate_checkpoint
    from selector.scoring import get_adapter

    metrics: dict[str, Any] = {}
    if not data.empty:
        adapter = get_adapter(checkpoint.path, checkpoint.adapter)
        metrics = evaluate_checkpoint(
            adapter,
            best_of_n=data.best_of_n or None,
            first_error=data.first_error or None,
            labeled=data.labeled or None,
            trials=trials,
            seed=seed,
            normalize=_normalize_answer,
            aggregation=aggregation,
        )
    metrics["summary"] = summarize(metrics)
    metrics["data"] = dict(data.description)
    metrics["evaluated_at"] = timezone.now().isoformat()
    return metrics


def metric_value(summary: dict[str, Any] | None, metric: str) -> float | None:
    if metric not in METRICS:
        raise LoopError(f"unknown promotion metric {metric!r}; expected one of {list(METRICS)}")
    value = (summary or {}).get(metric)
    return None if value is None else float(value)


# --- checkpoints -----------------------------------------------------------------------------


def resolve_base(campaign: Campaign, base: str | Path | None) -> tuple[Path | None, str]:
    """(base directory or None for a fresh bootstrap, lineage). `base`, else the campaign's
    `retrain_base`, else warm-start from the active checkpoint when it is native; the lineage
    decides the learning rate."""
    from selector.scoring.checkpoint import read_prm_config

    base = base or campaign.retrain_base or None
    if base is not None:
        config = read_prm_config(base)
        lineage = config.base_model if config and config.base_model == "bootstrap" else str(base)
        return Path(base), lineage
    active = (
        Checkpoint.objects.filter(pk=campaign.active_checkpoint_id).first()
        if campaign.active_checkpoint_id
        else None
    )
    if active is None or active.adapter != Checkpoint.Adapter.TOKEN_CLASSIFICATION:
        return None, "bootstrap"
    return Path(active.path), active.base_model or active.path


def _latest_labeled_generation(campaign: Campaign) -> int | None:
    return (
        Generation.objects.numbered()
        .filter(campaign=campaign, assignments__label__isnull=False)
        .order_by("-number")
        .values_list("number", flat=True)
        .first()
    )


def train_checkpoint(
    checkpoint_id: int,
    *,
    base: str | Path | None = None,
    epochs: int | None = None,
    extra_examples: Sequence[TrainingExample] = (),
    val_fraction: float = VAL_FRACTION,
    device: str | None = None,
    done_status: str | None = None,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> Checkpoint:
    """Train the `training` checkpoint on all the campaign's labels so far (+ `extra_examples`).

    Resumable: training continues from the last finished epoch in the checkpoint's directory.
    Afterwards the row holds the training record; its status becomes `done_status` (`ready`
    for the command) or stays `training` with the loop stage `evaluating`.
    """
    from selector.training import BOOTSTRAP_LR, TrainingConfig, train_prm

    ckpt = Checkpoint.objects.select_related("campaign").get(pk=checkpoint_id)
    if ckpt.status != Checkpoint.Status.TRAINING:
        return ckpt
    if ckpt.retrain_stage not in ("", Checkpoint.Stage.TRAINING):
        return ckpt
    campaign = ckpt.campaign
    examples = campaign_examples(campaign, extra_examples)
    if not examples:
        raise LoopError(f"campaign {campaign.slug} has no finished labels to train on")
    held = validation_keys({e.key for e in examples}, val_fraction)
    base_dir, lineage = resolve_base(campaign, base)
    result = train_prm(
        examples,
        TrainingConfig(
            out_dir=Path(ckpt.path),
            base=base_dir,
            val_problems=held,
            epochs=epochs or campaign.retrain_epochs,
            lr=BOOTSTRAP_LR if lineage == "bootstrap" else None,
            batch_tokens=settings.STEPWISE_TRAIN_BATCH_TOKENS,
            device=device,
            resume=True,
            bootstrap_options=dict(settings.STEPWISE_BOOTSTRAP),
            neutral_is_positive=campaign.neutral_is_positive,
        ),
        progress=progress,
    )
    data = result.to_json()
    # Problem texts can be long and many: the row keeps a count, the JSON file beside the
    # weights keeps the list.
    data["held_out_problems"] = len(result.held_out_problems)
    data["val_fraction"] = val_fraction
    data["n_extra_examples"] = len(extra_examples)
    with transaction.atomic():
        locked = Checkpoint.objects.select_for_update().get(pk=checkpoint_id)
        if locked.status != Checkpoint.Status.TRAINING:
            return locked
        locked.training_record = data
        locked.base_model = lineage
        locked.trained_on_labels = result.n_train_labels
        if locked.trained_on_generation is None:
            locked.trained_on_generation = _latest_labeled_generation(campaign)
        fields = ["training_record", "base_model", "trained_on_labels", "trained_on_generation"]
        locked.save(update_fields=fields)
        if done_status is not None:
            locked.finish_training(done_status)
        else:
            locked.advance(Checkpoint.Stage.TRAINING, Checkpoint.Stage.EVALUATING)
    logger.info(
        "checkpoint %s trained: %d train / %d val labels, val loss %s → %s",
        checkpoint_id,
        result.n_train_labels,
        result.n_val_labels,
        result.initial_val_loss,
        result.final_val_loss,
    )
    return locked


# --- evaluation and the gate -----------------------------------------------------------------


def evaluate_and_store(
    checkpoint: Checkpoint,
    campaign: Campaign,
    *,
    data: EvaluationData | None = None,
    trials: int = BEST_OF_N_TRIALS,
) -> dict[str, Any]:
    """Evaluate and store in `checkpoint.metrics` (an earlier gate record is kept)."""
    if data is None:
        data = evaluation_data(campaign)
    metrics = evaluate(checkpoint, data, aggregation=campaign.score_aggregation, trials=trials)
    with transaction.atomic():
        locked = Checkpoint.objects.select_for_update().get(pk=checkpoint.pk)
        gate = (locked.metrics or {}).get("gate")
        locked.metrics = {**metrics, **({"gate": gate} if gate else {})}
        locked.save(update_fields=["metrics"])
    checkpoint.metrics = locked.metrics
    return locked.metrics


def compare_with_active(
    candidate: Checkpoint,
    campaign: Campaign,
    *,
    data: EvaluationData | None = None,
    trials: int = BEST_OF_N_TRIALS,
) -> dict[str, Any]:
    """Evaluate the candidate and the active checkpoint on ONE data set.

    The candidate's `metrics` get its evaluation and `metrics["gate"]` both summaries (the
    decision still open). The active checkpoint's own `metrics` are written only when it has
    none yet (a bootstrap model), so a checkpoint's metrics are those of its first evaluation.
    """
    if data is None:
        data = evaluation_data(campaign)
    evaluate_and_store(candidate, campaign, data=data, trials=trials)
    active = None
    if campaign.active_checkpoint_id and campaign.active_checkpoint_id != candidate.pk:
        active = Checkpoint.objects.get(pk=campaign.active_checkpoint_id)
    active_summary = None
    if active is not None:
        if (active.metrics or {}).get("summary"):
            # Its own metrics stay those of its first evaluation; this one goes in the gate.
            metrics = evaluate(active, data, aggregation=campaign.score_aggregation, trials=trials)
        else:
            metrics = evaluate_and_store(active, campaign, data=data, trials=trials)
        active_summary = metrics["summary"]
    metric = campaign.promotion_metric
    gate = {
        "metric": metric,
        "higher_is_better": METRICS[metric].higher_is_better if metric in METRICS else None,
        "min_delta": campaign.promotion_min_delta,
        "data": dict(data.description),
        "candidate": candidate.metrics["summary"],
        "active": active_summary,
        "active_checkpoint": active.pk if active else None,
        "decision": None,
        "uniform_arm": uniform_arm_report(candidate, active, campaign, data),
    }
    with transaction.atomic():
        locked = Checkpoint.objects.select_for_update().get(pk=candidate.pk)
        locked.metrics = {**locked.metrics, "gate": gate}
        locked.save(update_fields=["metrics"])
    candidate.metrics = locked.metrics
    return gate


def uniform_arm_report(
    candidate: Checkpoint, active: Checkpoint | None, campaign: Campaign, data: EvaluationData
) -> dict[str, Any] | None:
    """Both checkpoints' summaries on the uniform arm's validation labels; None without any."""
    if not data.uniform:
        return None
    uniform = data.uniform_arm()
    report: dict[str, Any] = {"n_examples": len(uniform.labeled)}
    for name, checkpoint in (("candidate", candidate), ("active", active)):
        if checkpoint is not None:
            metrics = evaluate(checkpoint, uniform, aggregation=campaign.score_aggregation)
            report[name] = metrics["summary"]
    return report


def evaluate_for_gate(checkpoint_id: int, *, trials: int = BEST_OF_N_TRIALS) -> bool:
    """The loop's evaluation stage; True when the gate should be queued."""
    ckpt = Checkpoint.objects.select_related("campaign").get(pk=checkpoint_id)
    if ckpt.status != Checkpoint.Status.TRAINING:
        return False
    if ckpt.retrain_stage == Checkpoint.Stage.GATING:
        return True  # a redelivery after the evaluation was stored
    if ckpt.retrain_stage != Checkpoint.Stage.EVALUATING:
        return False
    campaign = Campaign.objects.get(pk=ckpt.campaign_id)
    compare_with_active(ckpt, campaign, trials=trials)
    ckpt.advance(Checkpoint.Stage.EVALUATING, Checkpoint.Stage.GATING)
    return True


def apply_gate(candidate: Checkpoint, campaign: Campaign) -> dict[str, Any]:
    """Decide on the stored gate numbers: promote (activate) or reject; inside a transaction
    that holds the campaign row lock. Returns the completed gate record."""
    gate = dict((candidate.metrics or {}).get("gate") or {})
    if not gate:
        raise LoopError(f"checkpoint {candidate.pk} has no gate evaluation")
    metric = gate["metric"]
    if gate.get("active_checkpoint") != campaign.active_checkpoint_id:
        promote, reason = False, "the active checkpoint changed during evaluation; re-evaluate"
    elif gate.get("active_checkpoint") is None:
        promote, reason = True, "no active checkpoint"
    else:
        promote, reason = decide(
            metric,
            metric_value(gate.get("candidate"), metric),
            metric_value(gate.get("active"), metric),
            min_delta=float(gate.get("min_delta") or 0.0),
        )
    gate.update(
        decision="promoted" if promote else "rejected",
        reason=reason,
        decided_at=timezone.now().isoformat(),
    )
    candidate.metrics = {**candidate.metrics, "gate": gate}
    candidate.save(update_fields=["metrics"])
    # A loop candidate leaves `training` here; a checkpoint compared by hand is ready already.
    if promote:
        candidate.finish_training(Checkpoint.Status.READY)
        campaign.activate(candidate)
    elif not candidate.reject():
        raise LoopError(f"checkpoint {candidate.pk} is {candidate.status}, not a candidate")
    logger.info(
        "campaign %s, checkpoint %s: %s (%s)", campaign.slug, candidate.pk, gate["decision"], reason
    )
    return gate


def gate_checkpoint(checkpoint_id: int) -> dict[str, Any] | None:
    """The loop's gate stage, then the next generation (see the module docstring).

    Idempotent: a decided checkpoint is left alone. Returns the gate record, None if skipped.
    """
    with transaction.atomic():
        ckpt = Checkpoint.objects.select_related("campaign").get(pk=checkpoint_id)
        campaign = Campaign.objects.select_for_update().get(pk=ckpt.campaign_id)
        ckpt = Checkpoint.objects.select_for_update().get(pk=checkpoint_id)
        if not ckpt.advance(Checkpoint.Stage.GATING, Checkpoint.Stage.DONE):
            return None
        gate = apply_gate(ckpt, campaign)
        advance = gate["decision"] == "promoted" or ckpt.retrain_trigger in NEXT_ON_REJECT
        if advance:
            if ckpt.retrain_generation is not None:
                triggering = campaign.generations.filter(number=ckpt.retrain_generation).first()
                if triggering is not None:
                    triggering.complete()
            try:
                ckpt.next_generation = start_generation(campaign).number
            except PipelineError as exc:
                logger.warning("campaign %s: no next generation: %s", campaign.slug, exc)
            else:
                ckpt.save(update_fields=["next_generation"])
    return gate


# --- triggers --------------------------------------------------------------------------------


def label_target(campaign: Campaign, generation: Generation) -> int:
    """Finished labels that trigger retraining: the campaign's target, else every slot."""
    if campaign.retrain_label_target:
        return campaign.retrain_label_target
    return generation.selections.count() * campaign.overlap


def finished_labels(generation: Generation) -> int:
    return Label.objects.filter(
        assignment__generation=generation,
        assignment__kind=Assignment.Kind.REGULAR,
        finish_reason__isnull=False,
    ).count()


def due_generations(campaigns: Iterable[Campaign] | None = None) -> list[Generation]:
    """Open generations that reached their label target and were not retrained on yet."""
    if campaigns is None:
        campaigns = Campaign.objects.filter(auto_retrain=True)
    due = []
    for campaign in campaigns:
        newest = campaign.generations.newest()
        if newest is None or newest.status != Generation.Status.OPEN:
            continue
        target = label_target(campaign, newest)
        if target <= 0 or finished_labels(newest) < target:
            continue
        started, failed = attempts(campaign, newest.number)
        if started or failed >= MAX_ATTEMPTS:
            continue
        due.append(newest)
    return due


def check_retraining() -> list[int]:
    """Start the loop for every due generation; returns the new checkpoints' ids."""
    started = []
    for generation in due_generations():
        checkpoint = start_retraining(
            generation.campaign, reason=Checkpoint.Trigger.LABEL_TARGET, generation=generation
        )
        if checkpoint is not None:
            started.append(checkpoint.pk)
    return started
