"""Samples from JSONL: `{"id", "unique_id", "steps": [..] | "response": "..", "answer"?,
"generator"?, "verifier_score"?}`; answers extracted when absent, graded at import."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import IO, NamedTuple

from django.db import connection, transaction
from django.utils import timezone

from annotate.ground_truth import flag_disagreeing
from annotate.io.base import (
    DEFAULT_BATCH_SIZE,
    BackgroundCopyWriter,
    CopyPayload,
    GradingMemo,
    ImportFailed,
    ImportSummary,
    ProgressCallback,
    Timer,
    analyze_on_commit,
    batched,
    check_steps,
    check_type,
    copy_json,
    is_postgres,
    iter_json_lines,
    optional,
)
from annotate.models import Campaign, Problem, Sample

DEFAULT_SPLIT_STEPS = "\n\n"

#: Sample columns in the order the importer (and the benchmark's raw COPY) sends them.
COPY_COLUMNS = (
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


class _Line(NamedTuple):
    """One validated, encoded sample line."""

    line: int
    external_id: str
    problem: tuple[int, str]  # (pk, ground truth answer)
    steps: list[str]
    answer: str | None
    generator: str
    score: float | None
    digest: str  # steps_fingerprint, hex
    steps_json: bytes | None  # COPY-escaped JSON; None off PostgreSQL


class _Batch(NamedTuple):
    parsed: list[_Line]
    verdicts: list[bool | None]
    ids: dict[str, int]  # external id → line number
    last_line: int
    lines: int


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
    copy: bool,
) -> tuple[list[_Line], dict[str, int]]:
    """Validate and encode one batch of lines before any of it is written (`copy`: with the
    steps as COPY JSON), and the batch's ids → line numbers (duplicates within the batch
    already refused)."""
    from selector.grading import extract_answer
    from selector.selection import steps_fingerprint

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
            _Line(
                line,
                external_id,
                problem,
                steps,
                answer,
                generator,
                None if score is None else float(score),
                steps_fingerprint(steps).hex(),
                copy_json(steps) if copy else None,
            )
        )
    return parsed, in_batch


def _verdicts(
    parsed: list[_Line], graded: list[bool] | None, counts: dict[str, int]
) -> list[bool | None]:
    """is_correct of each parsed line (`graded`: the verdicts of the lines with an answer)."""
    given = iter(graded) if graded is not None else None
    verdicts: list[bool | None] = []
    for parsed_line in parsed:
        if parsed_line.answer is None:
            verdicts.append(None)
            counts["no answer"] += 1
        elif given is None:
            verdicts.append(None)
        else:
            correct = next(given)
            counts["correct" if correct else "wrong"] += 1
            verdicts.append(correct)
    return verdicts


def _copy_payload(
    parsed: list[_Line], verdicts: list[bool | None], campaign_pk: int
) -> CopyPayload:
    """The batch in `COPY_COLUMNS` order, one COPY buffer; every row stamped with one time."""
    payload = CopyPayload()
    now = timezone.now().isoformat().encode("ascii")  # bytes: CopyPayload writes them as they are
    for p, correct in zip(parsed, verdicts, strict=True):
        ids = (campaign_pk, p.problem[0], p.external_id)
        payload.add((*ids, p.steps_json, p.answer, correct, p.generator, p.digest, p.score, now))
    return payload


def _insert_with_orm(batch: _Batch, campaign: Campaign) -> int:
    """Off PostgreSQL: refuse the batch's first id the campaign has, else bulk insert it."""
    clash = _existing_external_ids(campaign, list(batch.ids))
    if clash:
        line = min(batch.ids[e] for e in clash)
        external_id = next(e for e in clash if batch.ids[e] == line)
        raise ImportFailed(line, f'duplicate id "{external_id}"')
    rows = [
        Sample(
            campaign=campaign,
            problem_id=p.problem[0],
            external_id=p.external_id,
            steps=p.steps,
            answer=p.answer,
            is_correct=correct,
            generator=p.generator,
            steps_hash=p.digest,
            verifier_score=p.score,
        )
        for p, correct in zip(batch.parsed, batch.verdicts, strict=True)
    ]
    return len(Sample.objects.bulk_create(rows, batch_size=500))


def _batches(
    stream: IO[str] | Iterable[str],
    problems: dict[str, tuple[int, str]],
    *,
    split_steps: str,
    batch_size: int,
    grader: GradingMemo | None,
    counts: dict[str, int],
    copy: bool,
) -> Iterator[_Batch]:
    """The input's lines validated, encoded and graded (`grader` None: not graded), a batch at
    a time; a bad line fails before any of its batch is written."""
    for batch in batched(iter_json_lines(stream), batch_size):
        parsed, ids = _parse_batch(batch, problems, split_steps, counts, copy)
        pairs = [(p.answer, p.problem[1]) for p in parsed if p.answer is not None]
        verdicts = _verdicts(parsed, grader.grade(pairs) if grader else None, counts)
        yield _Batch(parsed, verdicts, ids, batch[-1][0], len(batch))


def _campaign_problems(campaign: Campaign) -> dict[str, tuple[int, str]]:
    """unique_id → (pk, ground truth); problems number in the thousands, so they fit."""
    return {
        uid: (pk, gt)
        for uid, pk, gt in Problem.objects.filter(campaign=campaign).values_list(
            "unique_id", "pk", "ground_truth_answer"
        )
    }


def _new_counts() -> dict[str, int]:
    return {"correct": 0, "wrong": 0, "no answer": 0, "extracted answers": 0}


def sample_copy_payloads(
    stream: IO[str] | Iterable[str],
    campaign: Campaign,
    *,
    grade: bool = True,
    split_steps: str = DEFAULT_SPLIT_STEPS,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[bytes]:
    """The COPY data `import_samples` sends for `stream`, a batch at a time, writing nothing
    (the import benchmark times a raw COPY of exactly these bytes as its limit)."""
    grader = GradingMemo() if grade else None
    problems = _campaign_problems(campaign)
    for batch in _batches(
        stream,
        problems,
        split_steps=split_steps,
        batch_size=batch_size,
        grader=grader,
        counts=_new_counts(),
        copy=True,
    ):
        yield bytes(_copy_payload(batch.parsed, batch.verdicts, campaign.pk).buffer)


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
    if not split_steps:
        raise ValueError("split_steps must not be empty")
    timer = Timer()
    summary = ImportSummary(kind="samples")
    grader = GradingMemo(processes=processes)
    counts = _new_counts()
    created = 0
    postgres = is_postgres()
    with transaction.atomic():
        problems = _campaign_problems(campaign)
        writer = (
            BackgroundCopyWriter(
                Sample._meta.db_table,
                COPY_COLUMNS,
                f"SELECT external_id FROM {Sample._meta.db_table} "
                "WHERE campaign_id = %s AND external_id = ANY(%s)",
                [campaign.pk],
            )
            if postgres
            else None
        )
        try:
            for batch in _batches(
                stream,
                problems,
                split_steps=split_steps,
                batch_size=batch_size,
                grader=grader if grade else None,
                counts=counts,
                copy=postgres,
            ):
                if writer is not None:
                    writer.submit(
                        _copy_payload(batch.parsed, batch.verdicts, campaign.pk), batch.ids
                    )
                else:
                    created += _insert_with_orm(batch, campaign)
                summary.lines = batch.last_line
                if progress is not None:
                    progress(batch.lines)
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
