"""Samples from JSONL: `{"id", "unique_id", "steps": [..] | "response": "..", "answer"?,
"generator"?, "verifier_score"?}`; answers extracted when absent, graded at import."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import IO

from django.db import connection, transaction
from django.utils import timezone

from annotate.ground_truth import flag_disagreeing
from annotate.io.base import (
    DEFAULT_BATCH_SIZE,
    BackgroundCopyWriter,
    GradingMemo,
    ImportFailed,
    ImportSummary,
    ProgressCallback,
    Timer,
    analyze_on_commit,
    batched,
    check_steps,
    check_type,
    is_postgres,
    iter_json_lines,
    optional,
)
from annotate.models import Campaign, Problem, Sample

DEFAULT_SPLIT_STEPS = "\n\n"

_COPY_COLUMNS = (
    "campaign_id",
    "problem_id",
    "external_id",
    "steps",
    "answer",
    "is_correct",
    "generator",
    "steps_hash",
    "verifier_score",
    "created_at",
)


def split_response(response: str, separator: str = DEFAULT_SPLIT_STEPS) -> list[str]:
    """Steps of a whole response: split on `separator`, each stripped, empty parts dropped."""
    return [part for part in (piece.strip() for piece in response.split(separator)) if part]


def _existing_external_ids(campaign: Campaign, ids: list[str]) -> set[str]:
    """Which of `ids` the campaign already has (earlier batches of this import included)."""
    if not ids:
        return set()
    if is_postgres():
        with connection.cursor() as cursor:
            cursor.execute(
                f"SELECT external_id FROM {Sample._meta.db_table} "
                "WHERE campaign_id = %s AND external_id = ANY(%s)",
                [campaign.pk, ids],
            )
            return {row[0] for row in cursor.fetchall()}
    found: set[str] = set()
    for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
        found.update(
            Sample.objects.filter(
                campaign=campaign, external_id__in=ids[start : start + 500]
            ).values_list("external_id", flat=True)
        )
    return found


def _parse_batch(
    batch: list[tuple[int, dict, str]],
    problems: dict[str, tuple[int, str]],
    split_steps: str,
    counts: dict[str, int],
) -> tuple[list[tuple], dict[str, int]]:
    """Validate one batch of lines: (line, id, problem, steps, answer, generator, score) each,
    and the batch's ids → line numbers (duplicates within the batch already refused)."""
    from selector.grading import extract_answer

    parsed = []
    in_batch: dict[str, int] = {}
    for line, obj, _raw in batch:
        external_id = obj.get("id")
        if external_id is None:
            raise ImportFailed(line, 'missing field "id"')
        external_id = str(check_type(external_id, "str_or_int", line, "id"))
        if not external_id or len(external_id) > 255:
            raise ImportFailed(line, 'field "id" must be 1 to 255 characters')
        uid = obj.get("unique_id")
        if uid is None:
            raise ImportFailed(line, 'missing field "unique_id"')
        check_type(uid, "str", line, "unique_id")
        problem = problems.get(uid)
        if problem is None:
            raise ImportFailed(line, f'unknown problem unique_id "{uid}"')
        steps = obj.get("steps")
        if steps is not None:
            check_type(steps, "str_list", line, "steps")
        else:
            response = obj.get("response")
            if response is None:
                raise ImportFailed(line, 'missing field "steps" (or "response")')
            check_type(response, "str", line, "response")
            steps = split_response(response, split_steps)
        if not steps:
            raise ImportFailed(line, "a sample needs at least one step")
        check_steps(steps, line)
        answer = optional(obj, "answer", "str", line)
        if answer is None:
            answer = extract_answer(steps)
            if answer is not None:
                counts["extracted answers"] += 1
        generator = (optional(obj, "generator", "str", line) or "")[:200]
        score = optional(obj, "verifier_score", "number", line)
        if external_id in in_batch:
            raise ImportFailed(line, f'duplicate id "{external_id}"')
        in_batch[external_id] = line
        parsed.append(
            (
                line,
                external_id,
                problem,
                steps,
                answer,
                generator,
                None if score is None else float(score),
            )
        )
    return parsed, in_batch


def import_samples(
    stream: IO[str] | Iterable[str],
    campaign: Campaign,
    *,
    split_steps: str = DEFAULT_SPLIT_STEPS,
    progress: ProgressCallback | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    grade: bool = True,
    processes: int | None = None,
) -> ImportSummary:
    """Import model-written samples into `campaign`, all or nothing.

    Every line is validated (problem known, id new, steps well-formed) before its batch is
    written; answers missing from a line are extracted from its steps and every answer is
    graded against its problem's ground truth (`grade=False` leaves `is_correct` empty).
    Memory stays flat in the file size: one batch of lines is held at a time.
    """
    from selector.selection import steps_fingerprint

    if not split_steps:
        raise ValueError("split_steps must not be empty")
    timer = Timer()
    summary = ImportSummary(kind="samples")
    grader = GradingMemo(processes=processes)
    counts = {"correct": 0, "wrong": 0, "no answer": 0, "extracted answers": 0}
    created = 0
    postgres = is_postgres()
    dumps = json.dumps
    with transaction.atomic():
        # Problems number in the thousands: their ids and answers fit in memory.
        problems = {
            uid: (pk, gt)
            for uid, pk, gt in Problem.objects.filter(campaign=campaign).values_list(
                "unique_id", "pk", "ground_truth_answer"
            )
        }
        writer = (
            BackgroundCopyWriter(
                Sample._meta.db_table,
                _COPY_COLUMNS,
                f"SELECT external_id FROM {Sample._meta.db_table} "
                "WHERE campaign_id = %s AND external_id = ANY(%s)",
                [campaign.pk],
            )
            if postgres
            else None
        )
        try:
            for batch in batched(iter_json_lines(stream), batch_size):
                parsed, in_batch = _parse_batch(batch, problems, split_steps, counts)
                if writer is None:
                    clash = _existing_external_ids(campaign, list(in_batch))
                    if clash:
                        line = min(in_batch[e] for e in clash)
                        external_id = next(e for e in clash if in_batch[e] == line)
                        raise ImportFailed(line, f'duplicate id "{external_id}"')
                pairs = [(p[4], p[2][1]) for p in parsed if p[4] is not None]
                verdicts = iter(grader.grade(pairs)) if grade else None
                now = timezone.now()
                rows = []
                for _line, external_id, problem, steps, answer, generator, score in parsed:
                    if answer is None:
                        correct = None
                        counts["no answer"] += 1
                    elif verdicts is None:
                        correct = None
                    else:
                        correct = next(verdicts)
                        counts["correct" if correct else "wrong"] += 1
                    digest = steps_fingerprint(steps).hex()
                    if writer is not None:
                        rows.append(
                            (
                                campaign.pk,
                                problem[0],
                                external_id,
                                dumps(steps),
                                answer,
                                correct,
                                generator,
                                digest,
                                score,
                                now,
                            )
                        )
                    else:
                        rows.append(
                            Sample(
                                campaign=campaign,
                                problem_id=problem[0],
                                external_id=external_id,
                                steps=steps,
                                answer=answer,
                                is_correct=correct,
                                generator=generator,
                                steps_hash=digest,
                                verifier_score=score,
                            )
                        )
                if writer is not None:
                    writer.submit(rows, in_batch)
                else:
                    created += len(Sample.objects.bulk_create(rows, batch_size=500))
                summary.lines = batch[-1][0]
                if progress is not None:
                    progress(len(batch))
            if writer is not None:
                created = writer.wait()
        finally:
            if writer is not None:
                writer.close()
        if grade:
            counts["suspect ground truths"] = flag_disagreeing(campaign)
        analyze_on_commit(Sample, Problem)
    summary.created = {"samples": created}
    summary.details = {k: v for k, v in counts.items() if v}
    if grader.graded:
        summary.details["distinct pairs graded"] = grader.graded
    summary.seconds = timer.elapsed
    return summary
