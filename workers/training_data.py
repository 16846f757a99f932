"""A campaign's labels as PRM training examples, from the same `LabelRecord`s the PRM800K
export writes (one row → one record), not from the export's text.

Native labels give their rated steps (supervision up to the first error) and one example per
rated alternative at that error (PRM800K phase 2); imported ones go
through `selector.training.examples_from_prm800k` on their stored step records (phase-1
alternatives as extra examples).
"""

from __future__ import annotations

import json
from collections.abc import Iterator

from annotate.consensus import consensus_samples, source_training_examples
from annotate.io.prm800k import LabelRecord, iter_label_records
from annotate.models import Campaign, QualitySettings
from selector.training import TrainingExample, examples_from_prm800k


def record_examples(record: LabelRecord) -> list[TrainingExample]:
    if record.native is not None:
        texts = [text for text, _, _ in record.native]
        ratings = [rating for _, rating, _ in record.native]
        example = TrainingExample(record.problem, texts, ratings)
        examples = [example] if example.steps else []
        # Each rated alternative at the first error: one more example ending at its step.
        step = record.error_step
        for text, rating in record.alternatives if step is not None else ():
            examples.append(
                TrainingExample(record.problem, [*texts[:step], text], [*ratings[:step], rating])
            )
        return examples
    if record.record_json is not None:
        return examples_from_prm800k(json.loads(record.record_json))
    question: dict = {"problem": record.problem}
    if record.phase == 2:
        question["pre_generated_steps"] = json.loads(record.steps_text)
    steps = json.loads(record.prm800k_steps or "[]")
    return examples_from_prm800k({"question": question, "label": {"steps": steps}})


def campaign_training_examples(
    campaign: Campaign, *, generation: int | None = None
) -> Iterator[TrainingExample]:
    """Resolved labels' examples, then (for the whole campaign) those of the automatic
    sources training uses; only consensus samples when the quality settings say so."""
    consensus_only = QualitySettings.of(campaign).train_on_consensus_only
    for record in iter_label_records(
        campaign, generation=generation, consensus_only=consensus_only
    ):
        yield from record_examples(record)
    if generation is None:
        only = consensus_samples(campaign) if consensus_only else None
        yield from source_training_examples(campaign, only=only)
