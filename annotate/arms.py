"""Active selection against its uniform control arm, per generation, on the campaign's labels.

A campaign's `uniform_fraction` reserves part of every generation for samples drawn uniformly
from the same pool (`Assignment.Arm.UNIFORM`). Comparing the two arms on the labels they got is
how a lead sees, with their own data, whether active selection pays:

- **found an error**: the share of decided tasks (found an error, or rated through as correct;
  give-ups and bad-problem reports left out) whose labeler marked a −1. Active selection looks
  for convincing wrong answers, so this share should be higher in the active arm; each share
  comes with a Wilson 95 % interval (`selector.proportions`), so a lead can see when the
  arms cannot be told apart yet;
- **score of the wrong ones**: the mean selector score (the generation's own scores: its
  checkpoint's, or the imported verifier's) of the samples found wrong: how convincing the
  errors were;
- **disagreement**: how often the selector's predicted first error (the first step scored
  below `PREDICTION_THRESHOLD`, `selector.evaluation.predict_first_error`) differs from the
  labeler's first error (none counts as a position), over decided labels whose generation has
  step scores. Imported verifier scores have none, so this reads "—" for them.

Only finished regular labels of generated work count: QC and screening gold are not drawn by
either arm.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from annotate.agreement import label_views
from annotate.models import Assignment, Campaign, Generation, Label, Sample, Score
from annotate.quality import outcome
from selector.evaluation import predict_first_error
from selector.proportions import wilson_interval

#: A step is predicted wrong when its score (P(not negative)) is below this: ProcessBench's
#: convention and `selector.evaluation`'s default.
PREDICTION_THRESHOLD = 0.5


@dataclass(frozen=True)
class ArmRow:
    """One arm of one generation."""

    generation: int
    arm: str
    labels: int  # finished
    decided: int  # found an error or rated through as correct
    found_error: int
    mean_wrong_score: float | None
    compared: int  # decided labels with the selector's step scores beside them
    disagreements: int

    @property
    def arm_label(self) -> str:
        return Assignment.Arm(self.arm).label

    @property
    def error_share(self) -> float | None:
        return self.found_error / self.decided if self.decided else None

    @property
    def error_interval(self) -> tuple[float, float] | None:
        return wilson_interval(self.found_error, self.decided)

    @property
    def disagreement_rate(self) -> float | None:
        return self.disagreements / self.compared if self.compared else None


@dataclass
class _Tally:
    labels: int = 0
    decided: int = 0
    found_error: int = 0
    wrong_score_sum: float = 0.0
    wrong_scored: int = 0
    compared: int = 0
    disagreements: int = 0

    def add(self, result: int | str | None, score: float | None, steps: list | None) -> None:
        self.labels += 1
        if isinstance(result, str):  # abandoned: gave up or reported a bad problem
            return
        self.decided += 1
        if result is not None:
            self.found_error += 1
            if score is not None:
                self.wrong_score_sum += score
                self.wrong_scored += 1
        if steps:
            predicted = predict_first_error(steps, PREDICTION_THRESHOLD)
            self.compared += 1
            self.disagreements += (None if predicted < 0 else predicted) != result


def _selector_scores(
    generations: dict[int, Generation], samples_by_generation: dict[int, set[int]]
) -> dict[tuple[int, int], tuple[float | None, list | None]]:
    """(generation id, sample id) → the score and step scores selection used for it."""
    scores: dict[tuple[int, int], tuple[float | None, list | None]] = {}
    for generation_id, sample_ids in samples_by_generation.items():
        generation = generations[generation_id]
        if generation.checkpoint_id is not None:
            rows = Score.objects.filter(
                checkpoint_id=generation.checkpoint_id, sample_id__in=sample_ids
            ).values_list("sample_id", "score", "step_scores")
            for sample_id, score, steps in rows:
                scores[generation_id, sample_id] = (score, list(steps or []))
        else:
            rows = Sample.objects.filter(pk__in=sample_ids).values_list("pk", "verifier_score")
            for sample_id, score in rows:
                scores[generation_id, sample_id] = (score, None)
    return scores


def arm_rows(campaign: Campaign) -> list[ArmRow]:
    """Both arms of every generation with finished labels, newest generation first."""
    labels = (
        Label.objects.for_campaign(campaign)
        .regular()
        .finished()
        .filter(assignment__generation__isnull=False)
    )
    placed = {
        label_id: (generation_id, arm)
        for label_id, generation_id, arm in labels.values_list(
            "id", "assignment__generation_id", "assignment__arm"
        )
    }
    views = label_views(labels)
    generations = Generation.objects.in_bulk({g for g, _ in placed.values()})
    samples: dict[int, set[int]] = defaultdict(set)
    for view in views:
        samples[placed[view.id][0]].add(view.sample_id)
    scores = _selector_scores(generations, samples)

    tallies: dict[tuple[int, str], _Tally] = defaultdict(_Tally)
    for view in views:
        generation_id, arm = placed[view.id]
        score, steps = scores.get((generation_id, view.sample_id), (None, None))
        tallies[generation_id, arm].add(outcome(view.ratings, view.finish_reason), score, steps)

    rows = []
    for (generation_id, arm), tally in tallies.items():
        rows.append(
            ArmRow(
                generation=generations[generation_id].number,
                arm=arm,
                labels=tally.labels,
                decided=tally.decided,
                found_error=tally.found_error,
                mean_wrong_score=(
                    tally.wrong_score_sum / tally.wrong_scored if tally.wrong_scored else None
                ),
                compared=tally.compared,
                disagreements=tally.disagreements,
            )
        )
    arm_order = list(Assignment.Arm.values)
    return sorted(rows, key=lambda row: (-row.generation, arm_order.index(row.arm)))


@dataclass(frozen=True)
class GenerationArms:
    """One generation's two arms side by side, and what they say."""

    generation: int
    active: ArmRow | None
    uniform: ArmRow | None

    @property
    def verdict(self) -> str:
        if self.uniform is None or not self.uniform.decided:
            return "no uniform labels yet"
        if self.active is None or not self.active.decided:
            return "no active labels yet"
        active, uniform = self.active.error_interval, self.uniform.error_interval
        if active[0] > uniform[1]:
            return "active finds more errors"
        if uniform[0] > active[1]:
            return "uniform finds more errors: selection is not paying"
        return "cannot tell apart yet (95 % intervals overlap)"


def generation_arms(rows: list[ArmRow]) -> list[GenerationArms]:
    """`arm_rows` grouped by generation, newest first."""
    by_generation: dict[int, dict[str, ArmRow]] = defaultdict(dict)
    for row in rows:
        by_generation[row.generation][row.arm] = row
    return [
        GenerationArms(
            number,
            arms.get(Assignment.Arm.ACTIVE),
            arms.get(Assignment.Arm.UNIFORM),
        )
        for number, arms in sorted(by_generation.items(), reverse=True)
    ]
