"""TRL stepwise supervision export: `{"prompt", "completions", "labels"}` per finished label.

TRL's "stepwise supervision" dataset type (PRMTrainer) has a string `prompt`, a list of step
strings `completions` and a list of booleans `labels`, one per step. Steps run up to and
including the first error: a −1 is False, +1 True, and a neutral 0 follows `neutral`:
`positive` (True, as Qwen's PRM800K conversion and the paper's best setting) or `negative`
(False, as TRL's own PRM800K script); by default the campaign's `neutral_is_positive`.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import IO, Any

from annotate.io.prm800k import finished_labels, iter_chunks, ratings_for
from annotate.models import Campaign

_FIELDS = ("id", "prm800k_steps", "sample__steps", "sample__problem__problem")


def rated_path(
    steps: list[str] | None,
    prm800k_steps: list[dict[str, Any]] | None,
    ratings: dict[int, tuple[int | None, bool]],
) -> list[tuple[str, int]]:
    """(step text, rating) along the labeled solution, up to and including the first −1.

    Native labels pair the sample's steps with their StepRatings. Imported PRM800K labels
    follow each step's chosen completion; a step with none chosen ends the path, with its
    first completion when that one was rated −1 (the error the labeler found).
    """
    path: list[tuple[str, int]] = []
    if prm800k_steps is None:
        for index, text in enumerate(steps or []):
            rating = ratings.get(index, (None, False))[0]
            if rating is None:
                break
            path.append((text, rating))
            if rating < 0:
                break
        return path
    for step in prm800k_steps:
        completions = step.get("completions") or []
        chosen = step.get("chosen_completion")
        if chosen is not None:
            completion = completions[chosen]
            if completion.get("rating") is None:
                break
            path.append((completion["text"], completion["rating"]))
            if completion["rating"] < 0:
                break
            continue
        if completions and completions[0].get("rating") == -1:
            path.append((completions[0]["text"], -1))
        break
    return path


NEUTRAL = ("positive", "negative")


def iter_stepwise_records(
    campaign: Campaign,
    *,
    generation: int | None = None,
    chunk_size: int = 2000,
    neutral: str | None = None,
    include_unresolved: bool = True,
    consensus_only: bool = False,
) -> Iterator[dict[str, Any]]:
    """One TRL stepwise-supervision record per finished label with at least one rated step."""
    if neutral is not None and neutral not in NEUTRAL:
        raise ValueError(f"neutral maps to one of {NEUTRAL}, not {neutral!r}")
    neutral_ok = campaign.neutral_is_positive if neutral is None else neutral == "positive"
    labels = finished_labels(
        campaign, generation, include_unresolved=include_unresolved, consensus_only=consensus_only
    )
    for rows in iter_chunks(labels, _FIELDS, chunk_size):
        ratings = ratings_for([row[0] for row in rows if row[1] is None])
        for label_id, prm800k_steps, steps, prompt in rows:
            path = rated_path(steps, prm800k_steps, ratings.get(label_id, {}))
            if not path:
                continue
            yield {
                "prompt": prompt,
                "completions": [text for text, _ in path],
                "labels": [r > 0 or (r == 0 and neutral_ok) for _, r in path],
            }


def export_stepwise(out: IO[str], campaign: Campaign, **options: Any) -> int:
    """Write stepwise-supervision JSONL to `out` (`options` as `iter_stepwise_records`);
    returns the number of records."""
    count = 0
    for record in iter_stepwise_records(campaign, **options):
        out.write(json.dumps(record, ensure_ascii=False))
        out.write("\n")
        count += 1
    return count
