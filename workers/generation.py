"""The loop's first stage: generate N solutions per train problem, store them as samples,
grade them; and alternatives at the first error (PRM800K phase 2).

Each generated solution is the Sample keyed (problem, generation, index), written by a
conditional insert (`INSERT … ON CONFLICT DO NOTHING` on that key) as it comes back, batch by
batch: a retried or resumed run asks the generator only for the indices not stored yet, so a
killed worker loses only its unfinished requests and nothing is ever stored twice. Empty or
unparsable outputs are stored without an answer, which keeps them out of the pool.

`generate_samples(generation_id)` is the stage of a generation's pipeline (then scoring);
`generate_for_campaign` is the same work for the `generate` command, outside the loop
(samples with no generation, keyed (problem, index)).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.db.models import Count, F, Q
from django.utils import timezone

from annotate.io.base import GradingMemo
from annotate.models import Alternative, Campaign, Generation, Label, Problem, Sample
from selector.generation import (
    GeneratedSolution,
    Generator,
    GeneratorConfig,
    ProblemPrompt,
    make_generator,
    propose_alternatives,
)
from selector.ratings import first_error
from selector.selection import steps_fingerprint

logger = logging.getLogger(__name__)

#: Solutions stored (and graded) per transaction: what a killed worker can lose at most.
STORE_BATCH = 64

#: The generator's counters a generation's summary adds up over its runs (resumes included).
SPENT = ("requests", "retries", "prompt_tokens", "completion_tokens")

#: Called as progress(stored) after each stored batch.
Stored = Callable[[int], None]


@dataclass
class GenerationSummary:
    """What one run stored, and what the campaign's generated samples now hold."""

    problems: int = 0
    wanted: int = 0
    stored: int = 0  # by this run
    total: int = 0  # generated samples of this generation (or of the command) now
    without_answer: int = 0
    correct: int = 0
    wrong: int = 0
    generator: dict[str, int] = field(default_factory=dict)  # requests, retries, tokens

    def as_dict(self) -> dict[str, Any]:
        spent = {key: self.generator.get(key, 0) for key in SPENT}
        return {
            "problems": self.problems,
            "wanted": self.wanted,
            "stored": self.stored,
            "total": self.total,
            "without_answer": self.without_answer,
            "correct": self.correct,
            "wrong": self.wrong,
            **spent,
        }

    def __str__(self) -> str:
        tokens = self.generator.get("completion_tokens", 0)
        return (
            f"Generated {self.stored} new samples for {self.problems} problems "
            f"({self.total} of {self.wanted} stored: {self.correct} correct, {self.wrong} wrong, "
            f"{self.without_answer} without an answer; {tokens} completion tokens)."
        )


def train_problems(campaign: Campaign, unique_ids: Iterable[str] | None = None) -> list[Problem]:
    """The problems to generate for: the campaign's train split (the pool's), or those named."""
    problems = Problem.objects.filter(campaign=campaign, split=Problem.Split.TRAIN)
    if unique_ids is not None:
        wanted = list(unique_ids)
        problems = Problem.objects.filter(campaign=campaign, unique_id__in=wanted)
        missing = set(wanted) - set(problems.values_list("unique_id", flat=True))
        if missing:
            raise ValueError(f"unknown problems: {', '.join(sorted(missing)[:5])}")
    return list(problems.order_by("pk"))


def _generated(campaign: Campaign, generation: Generation | None):
    return Sample.objects.for_campaign(campaign).filter(index__isnull=False, generation=generation)


def stored_indices(
    campaign: Campaign, generation: Generation | None, problems: Sequence[Problem]
) -> dict[str, set[int]]:
    """{problem key: indices already stored}, the generator's `existing`."""
    existing: dict[str, set[int]] = {}
    rows = _generated(campaign, generation).filter(problem__in=problems)
    for problem_id, index in rows.values_list("problem_id", "index").iterator(chunk_size=10_000):
        existing.setdefault(str(problem_id), set()).add(index)
    return existing


def _external_id(generation: Generation | None, problem_id: int, index: int) -> str:
    where = "cli" if generation is None else f"g{generation.number}"
    return f"generated/{where}/{problem_id}/{index}"


def store_solutions(
    campaign: Campaign,
    generation: Generation | None,
    solutions: Sequence[GeneratedSolution],
    problems: dict[str, Problem],
    grader: GradingMemo,
    generator_name: str,
) -> int:
    """Grade and insert one batch of solutions; returns the rows inserted.

    With a generation, its row is locked and its progress grows by exactly the rows this
    call inserted, so a duplicate delivery storing the same keys counts nothing twice.
    """
    answered = [s for s in solutions if s.answer is not None]
    truths = [problems[s.problem_key].ground_truth_answer for s in answered]
    verdicts = grader.grade([(s.answer, truth) for s, truth in zip(answered, truths, strict=True)])
    correct = {(s.problem_key, s.index): v for s, v in zip(answered, verdicts, strict=True)}
    rows = {
        (problem.pk, s.index): Sample(
            campaign=campaign,
            problem=problem,
            generation=generation,
            index=s.index,
            external_id=_external_id(generation, problem.pk, s.index),
            steps=s.steps,
            answer=s.answer,
            is_correct=correct.get((s.problem_key, s.index)),
            generator=generator_name[:200],
            steps_hash=steps_fingerprint(s.steps).hex(),
        )
        for s in solutions
        for problem in (problems[s.problem_key],)
    }
    with transaction.atomic():
        if generation is not None:
            Generation.objects.select_for_update().only("pk").get(pk=generation.pk)
        stored = _generated(campaign, generation).filter(
            problem_id__in={key[0] for key in rows}, index__in={key[1] for key in rows}
        )
        for key in stored.values_list("problem_id", "index"):
            rows.pop(key, None)
        # The conditional insert on the (problem, generation, index) key, should a writer
        # without the lock (the `generate` command) store the same key meanwhile.
        Sample.objects.bulk_create(rows.values(), ignore_conflicts=True)
        if generation is not None and rows:
            Generation.objects.filter(pk=generation.pk).update(
                samples_generated=F("samples_generated") + len(rows), updated_at=timezone.now()
            )
    return len(rows)


def generate_into(
    campaign: Campaign,
    generator: Generator,
    problems: Sequence[Problem],
    *,
    generation: Generation | None = None,
    n: int | None = None,
    on_stored: Stored | None = None,
) -> GenerationSummary:
    """Generate the missing solutions 0..n−1 of each problem and store them as they come."""
    n = generator.config.n if n is None else n
    by_key = {str(p.pk): p for p in problems}
    prompts = [ProblemPrompt(key, p.problem) for key, p in by_key.items()]
    summary = GenerationSummary(problems=len(problems), wanted=n * len(problems))
    grader = GradingMemo()
    name = f"{generator.config.backend}:{generator.config.model}"
    existing = stored_indices(campaign, generation, problems)
    batch: list[GeneratedSolution] = []

    def flush() -> None:
        stored = store_solutions(campaign, generation, batch, by_key, grader, name)
        summary.stored += stored
        batch.clear()
        if on_stored is not None:
            on_stored(stored)

    try:
        for solution in generator.generate(prompts, n=n, existing=existing):
            batch.append(solution)
            if len(batch) >= STORE_BATCH:
                flush()
    finally:
        # What came back before a failure is kept: a resumed run does not ask for it again.
        if batch:
            flush()
    rows = _generated(campaign, generation).filter(problem__in=problems)
    totals = rows.aggregate(
        total=Count("pk"),
        without_answer=Count("pk", filter=Q(answer__isnull=True)),
        correct=Count("pk", filter=Q(is_correct=True)),
        wrong=Count("pk", filter=Q(is_correct=False)),
    )
    for key, value in totals.items():
        setattr(summary, key, value)
    summary.generator = generator.stats.as_dict()
    return summary


def generate_samples(generation_id: int) -> bool:
    """A generation's first stage: N solutions per train problem from its generator
    snapshot, stored and graded, the summary on the row; status `generating`.

    True when scoring should follow (also for a redelivery that finds everything stored);
    False when the generation is past this stage (scoring already, failed, open).
    """
    generation = Generation.objects.select_related("campaign").get(pk=generation_id)
    if generation.status not in (Generation.Status.PENDING, Generation.Status.GENERATING):
        return False
    config = GeneratorConfig.from_dict(generation.generator)
    problems = train_problems(generation.campaign)
    if not generation.start_generating(samples_wanted=config.n * len(problems)):
        return False
    summary = generate_into(
        generation.campaign, make_generator(config), problems, generation=generation
    )
    with transaction.atomic():
        locked = Generation.objects.select_for_update().get(pk=generation_id)
        before = locked.generation_summary or {}
        record = summary.as_dict()
        for key in SPENT:  # a resumed run adds what it spent to what the killed one did
            record[key] += before.get(key, 0)
        record["stored"] = summary.total
        Generation.objects.filter(pk=generation_id).update(
            generation_summary=record, updated_at=timezone.now()
        )
    logger.info("generation %s: %s", generation_id, summary)
    return True


def generate_for_campaign(
    campaign: Campaign,
    config: GeneratorConfig,
    problems: Sequence[Problem] | None = None,
    *,
    on_stored: Stored | None = None,
) -> GenerationSummary:
    """The `generate` command's run: outside the loop, samples keyed (problem, index) with no
    generation, so running it again tops up to N without duplicating."""
    problems = train_problems(campaign) if problems is None else problems
    return generate_into(campaign, make_generator(config), problems, on_stored=on_stored)


def propose_label_alternatives(label_id: int) -> int:
    """Alternatives to the erroneous step of a found_error label, from the campaign's
    generator (the steps before it as the prompt); returns how many were stored. Does
    nothing when the label has some already, or the campaign wants none."""
    label = Label.objects.select_related("sample__problem", "sample__campaign").get(pk=label_id)
    campaign = label.sample.campaign
    wanted = campaign.alternatives_wanted
    if label.finish_reason != Label.FinishReason.FOUND_ERROR or wanted <= 0:
        return 0
    if label.alternatives.exists():
        return 0
    rated = dict(label.ratings.values_list("step", "rating"))
    steps = label.sample.steps
    step = first_error([rated.get(i) for i in range(len(steps))])
    if step is None:
        return 0
    generator = make_generator(campaign.generator_config())
    texts = propose_alternatives(
        generator, label.sample.problem.problem, steps[:step], wanted, exclude=[steps[step]]
    )
    return Alternative.store(label.pk, step, texts)
