"""Problems from JSONL: `{"unique_id", "problem", "ground_truth_answer", ...}` (MATH names too)."""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import IO

from django.db import transaction

from annotate.io.base import (
    DEFAULT_BATCH_SIZE,
    ImportFailed,
    ImportSummary,
    ProgressCallback,
    Timer,
    analyze_on_commit,
    batched,
    check_range,
    check_type,
    iter_json_lines,
    optional,
    require,
)
from annotate.models import Campaign, Problem

#: Problem.level is a PostgreSQL smallint.
MAX_LEVEL = 32767
_LEVEL = re.compile(r"^\s*(?:level\s*)?(\d+)\s*$", re.IGNORECASE)
_SPLITS = {choice.value for choice in Problem.Split}


def parse_level(value: object, line: int) -> int | None:
    """MATH levels: 3, "3" or "Level 3" -> 3; "Level ?" (unknown in MATH) and null -> None."""
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool):
        if value < 0:
            raise ImportFailed(line, f'field "level" must not be negative, got {value}')
        return check_range(value, line, "level", 0, MAX_LEVEL)
    if isinstance(value, str):
        match = _LEVEL.match(value)
        if match:
            digits = match.group(1)  # thousands of digits would trip int()'s own limit
            level = int(digits) if len(digits) <= 9 else MAX_LEVEL + 1
            return check_range(level, line, "level", 0, MAX_LEVEL)
        if value.strip().lower() in {"", "?", "level ?"}:
            return None
        raise ImportFailed(line, f'field "level" must look like "Level 3", got {value!r}')
    check_type(value, "int", line, "level")
    return None  # pragma: no cover - check_type raised


def _first(obj: dict, names: tuple[str, ...], kind: str, line: int, needed: bool) -> str | None:
    for name in names:
        if obj.get(name) is not None:
            return check_type(obj[name], kind, line, name)
    if needed:
        raise ImportFailed(line, f'missing field "{names[0]}"')
    return None


def parse_problem(obj: dict, line: int, campaign: Campaign, default_split: str) -> Problem:
    """A validated, unsaved Problem from one JSONL object."""
    unique_id = require(obj, "unique_id", "str", line)
    if not unique_id or len(unique_id) > 255:
        raise ImportFailed(line, 'field "unique_id" must be 1 to 255 characters')
    text = _first(obj, ("problem",), "str", line, True)
    answer = _first(obj, ("ground_truth_answer", "answer"), "str", line, True)
    solution = _first(obj, ("ground_truth_solution", "solution"), "str", line, False)
    subject = optional(obj, "subject", "str", line) or ""
    split = optional(obj, "split", "str", line) or default_split
    if split not in _SPLITS:
        raise ImportFailed(line, f'field "split" must be "train" or "test", got {split!r}')
    return Problem(
        campaign=campaign,
        unique_id=unique_id,
        problem=text,
        ground_truth_answer=answer,
        ground_truth_solution=solution or "",
        subject=subject[:100],
        level=parse_level(obj.get("level"), line),
        split=split,
    )


def import_problems(
    stream: IO[str] | Iterable[str],
    campaign: Campaign,
    *,
    split: str = Problem.Split.TRAIN,
    progress: ProgressCallback | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> ImportSummary:
    """Import problems into `campaign`, all or nothing.

    `split` is the default for lines without a "split" field. A duplicate `unique_id` (in the
    file or already in the campaign) fails the import like any malformed line.
    """
    if split not in _SPLITS:
        raise ValueError(f"split must be one of {sorted(_SPLITS)}")
    timer = Timer()
    summary = ImportSummary(kind="problems")
    counts = {Problem.Split.TRAIN.value: 0, Problem.Split.TEST.value: 0}
    with transaction.atomic():
        # Problems number in the thousands, so their ids fit in memory (samples do not).
        seen = set(Problem.objects.filter(campaign=campaign).values_list("unique_id", flat=True))
        for batch in batched(iter_json_lines(stream), batch_size):
            rows = []
            for line, obj, _raw in batch:
                problem = parse_problem(obj, line, campaign, split)
                if problem.unique_id in seen:
                    raise ImportFailed(line, f'duplicate unique_id "{problem.unique_id}"')
                seen.add(problem.unique_id)
                counts[problem.split] += 1
                rows.append(problem)
            Problem.objects.bulk_create(rows, batch_size=1000)
            summary.lines = batch[-1][0]
            if progress is not None:
                progress(len(batch))
        analyze_on_commit(Problem)
    summary.created = {"problems": sum(counts.values())}
    summary.details = {f"{name} split": n for name, n in counts.items() if n}
    summary.seconds = timer.elapsed
    return summary
