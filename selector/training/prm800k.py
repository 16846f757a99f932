"""Training examples from PRM800K records (as in ``shared/data/prm800k_examples.jsonl``).

* **Phase 2** (records whose question has ``pre_generated_steps``): the pre-generated steps
  (each step's first completion) with their ratings. The extra completions some phase-2 records
  carry at their last step are not part of the pre-generated solution and are left out.
* **Phase 1**: the path the labeler built, i.e. at each step the chosen completion, else the
  labeler's own (human) completion, else the path ends there. Human completions are written by
  the labeler to replace completions they rejected, so they count as **positive** steps (unless
  the record rates them). Every other rated completion of a step on that path becomes an extra
  example that ends at that step: the chosen prefix + the alternative with its rating.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

from selector.training.examples import TrainingExample


def _rating(completion: Mapping[str, Any] | None) -> int | None:
    if completion is None:
        return None
    rating = completion.get("rating")
    return None if rating is None else int(rating)


def is_phase2(record: Mapping[str, Any]) -> bool:
    """Phase-2 records rate a pre-generated solution; phase-1 records were built step by step."""
    return "pre_generated_steps" in record.get("question", {})


def examples_from_prm800k(
    record: Mapping[str, Any], *, alternatives: bool = True, problem_id: str | None = None
) -> list[TrainingExample]:
    """Training examples from one PRM800K record (see the module docstring for the rules).

    ``alternatives`` (phase 1 only) adds one example per alternative rated completion.
    Examples with no rated step are left out.
    """
    problem = record["question"]["problem"]
    steps = record["label"]["steps"]
    out: list[TrainingExample] = []

    if is_phase2(record):
        texts: list[str] = []
        ratings: list[int | None] = []
        for step in steps:
            first = step["completions"][0] if step["completions"] else None
            if first is None:
                break
            texts.append(first["text"])
            ratings.append(_rating(first))
        example = TrainingExample(problem, texts, ratings, problem_id)
        return [example] if example.steps else []

    path_texts: list[str] = []
    path_ratings: list[int] = []
    extras: list[TrainingExample] = []
    for step in steps:
        chosen = step.get("chosen_completion")
        completions = step.get("completions") or []
        if alternatives:
            for j, completion in enumerate(completions):
                rating = _rating(completion)
                if j == chosen or rating is None:
                    continue
                extras.append(
                    TrainingExample(
                        problem,
                        [*path_texts, completion["text"]],
                        [*path_ratings, rating],
                        problem_id,
                    )
                )
        human = step.get("human_completion")
        if chosen is not None:
            text, rating = completions[chosen]["text"], _rating(completions[chosen])
        elif human is not None:
            # A labeler's own replacement step: positive unless the record rates it.
            text = human["text"]
            rating = 1 if human.get("rating") is None else int(human["rating"])
        else:
            break
        if rating is None:
            break
        path_texts.append(text)
        path_ratings.append(rating)
        if rating == -1:
            break
    main = TrainingExample(problem, path_texts, path_ratings, problem_id)
    if main.steps:
        out.append(main)
    out.extend(e for e in extras if e.steps)
    return out


def load_prm800k_examples(
    path: str | Path, *, alternatives: bool = True, phases: Collection[int] = (1, 2)
) -> list[TrainingExample]:
    """All examples from a PRM800K JSONL file (records of the given phases)."""
    out: list[TrainingExample] = []
    with open(path, encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            record = json.loads(line)
            if (2 if is_phase2(record) else 1) in phases:
                out.extend(examples_from_prm800k(record, alternatives=alternatives))
    return out
