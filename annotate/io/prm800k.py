"""PRM800K records: import (phase 1 and 2) and streaming export, byte for byte.

One place lays out a record (`render_record`, which writes the JSON line directly, in PRM800K's
key order and json.dumps' spelling), used by export and, at import, to check that a record will
come back exactly; the REST API reuses the same generators (`iter_prm800k_lines`/`_records`).

Decisions (documented here, relied on by the tests):

- **Problems** are matched by exact problem text within the campaign (PRM800K records carry no
  ``unique_id``); a new one gets ``unique_id = "prm800k/" + blake2b-64(text)`` and split train.
  A matched problem with no ground-truth solution takes the record's.
- **Samples**: phase 2 → the pre-generated steps, answer and verifier score; phase 1 → the path
  the labeler followed (each step's chosen completion, or the human completion where none was
  chosen, up to the first step with neither). ``external_id = "prm800k:" + blake2b-96(problem
  text, steps)``, so several labels of one solution share one sample. Answers are graded.
- **Labels** keep the step records verbatim in ``prm800k_steps``; ``question_extra`` is
  ``{"phase": 1|2}``, plus ``"record_json"`` (the line verbatim) in the rare case the record
  could not be rebuilt exactly from rows (e.g. the problem already existed with another
  ground truth, extra question keys, a key order PostgreSQL's jsonb would not keep, floats
  inside the step records).
- **Native labels** (StepRating rows) export in the phase-2 shape: each rated step is
  ``{"completions": [{"text", "rating", "flagged"}], "human_completion": null,
  "chosen_completion": 0}``; a −1 step has ``chosen_completion`` null and ends the list (as in
  PRM800K's found_error records), its rated alternatives (`Alternative`) following the
  original in its ``completions`` with ``flagged`` false, as PRM800K's phase 2 writes them;
  for ``give_up``/``bad_problem`` the step the labeler stopped on follows, unrated, with
  ``chosen_completion`` null (as in PRM800K's phase-1 give_up records). ``labeler`` =
  uuid5(`LABELER_NAMESPACE`, username); ``timestamp`` = finished_at in UTC as
  ``2022-07-30T23:23:32.118856``; ``generation`` = the assignment's generation number, −1 for
  screening; ``pre_generated_verifier_score`` = the score the sample was selected with (else
  its imported verifier score).
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import uuid
from collections.abc import Iterable, Iterator
from contextlib import closing, nullcontext
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import IO, Any

import orjson
import psycopg
from django.conf import settings
from django.contrib.postgres.expressions import ArraySubquery
from django.contrib.postgres.fields import ArrayField
from django.core.exceptions import EmptyResultSet
from django.db import connections, transaction
from django.db.backends.utils import CursorDebugWrapper
from django.db.models import (
    Case,
    DateTimeField,
    F,
    Func,
    IntegerField,
    OuterRef,
    Subquery,
    TextField,
    Value,
    When,
)
from django.db.models.functions import Cast, Coalesce, JSONArray

from annotate.consensus import consensus_samples
from annotate.io.base import (
    GradingMemo,
    ImportFailed,
    ImportSummary,
    ProgressCallback,
    Timer,
    analyze_on_commit,
    batched,
    check_range,
    check_step_count,
    check_steps,
    check_text_lengths,
    check_type,
    iter_json_lines,
    jsonl_blocks,
    optional,
    require,
)
from annotate.models import (
    Alternative,
    Assignment,
    Campaign,
    Generation,
    Label,
    Problem,
    Sample,
    StepRating,
)
from annotate.models.label import FinishReason
from annotate.review import resolved
from selector.ratings import first_error

#: uuid5 namespace for native labelers' PRM800K ids: uuid5(LABELER_NAMESPACE, username).
LABELER_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://stepwise.invalid/labeler")

TOP_KEYS = (
    "labeler",
    "timestamp",
    "generation",
    "is_quality_control_question",
    "is_initial_screening_question",
    "question",
    "label",
)
LABEL_KEYS = ("steps", "total_time", "finish_reason")
_FINISH_REASONS = {choice.value for choice in FinishReason}
_STOPPED = {FinishReason.GIVE_UP.value, FinishReason.BAD_PROBLEM.value}


def dumps(record: Any) -> str:
    """PRM800K's own JSON spelling: Python's defaults (", ", ": ", ASCII escapes)."""
    return json.dumps(record)


@functools.lru_cache(maxsize=4096)
def labeler_uuid(username: str) -> str:
    """The stable anonymous PRM800K labeler id of a Stepwise user."""
    return str(uuid.uuid5(LABELER_NAMESPACE, username))


def format_timestamp(moment: datetime | str | None) -> str | None:
    """A datetime as PRM800K writes it: naive UTC ISO 8601 with microseconds (a string is
    one `UTCTimestamp` already spelled so)."""
    if moment is None or type(moment) is str:
        return moment
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="microseconds")


_encode_str = json.encoder.encode_basestring_ascii  # the C encoder json.dumps uses


def _enc(value: Any) -> str:
    """One JSON scalar spelled exactly as json.dumps spells it, without its call overhead."""
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    kind = type(value)
    if kind is str:
        return _encode_str(value)
    if kind is int:
        return int.__repr__(value)
    if kind is float and math.isfinite(value):
        return float.__repr__(value)
    return json.dumps(value)


def stored_json(text: str | None) -> str:
    """A JSON column read as text, re-spelled as json.dumps would spell its value.

    SQLite keeps json.dumps' own text. PostgreSQL's jsonb output uses the same separators and
    escapes for ASCII text, so ASCII without DEL is used as is (no decode/encode: the export's
    speed); anything else is decoded and re-encoded. Callers only pass values without floats
    and with jsonb's key order (the import checks both), where the two spellings agree.
    """
    if text is None:
        return "null"
    if text.isascii() and "\x7f" not in text:
        return text
    return dumps(loads(text))


def phase1_question_json(problem: str, ground_truth_answer: str) -> str:
    return f'{{"problem": {_enc(problem)}, "ground_truth_answer": {_enc(ground_truth_answer)}}}'


def phase2_question_json(
    problem: str,
    ground_truth_solution: str,
    ground_truth_answer: str,
    steps_json: str,
    answer: str | None,
    verifier_score: float | None,
) -> str:
    return (
        f'{{"problem": {_enc(problem)}, '
        f'"ground_truth_solution": {_enc(ground_truth_solution)}, '
        f'"ground_truth_answer": {_enc(ground_truth_answer)}, '
        f'"pre_generated_steps": {steps_json}, '
        f'"pre_generated_answer": {_enc(answer)}, '
        f'"pre_generated_verifier_score": {_enc(verifier_score)}}}'
    )


def render_record(
    *,
    labeler: str | None,
    timestamp: str | None,
    generation: int | None,
    is_quality_control: bool,
    is_initial_screening: bool,
    question_json: str,
    steps_json: str,
    total_time: int,
    finish_reason: str | None,
) -> str:
    """One PRM800K JSONL line (no newline): PRM800K's key order, json.dumps' spelling.

    The only place that knows the record layout; export and the import's exactness check
    both use it, and `iter_prm800k_records` parses its output.
    """
    return (
        f'{{"labeler": {_enc(labeler)}, "timestamp": {_enc(timestamp)}, '
        f'"generation": {_enc(generation)}, '
        f'"is_quality_control_question": {_enc(is_quality_control)}, '
        f'"is_initial_screening_question": {_enc(is_initial_screening)}, '
        f'"question": {question_json}, '
        f'"label": {{"steps": {steps_json}, "total_time": {_enc(total_time)}, '
        f'"finish_reason": {_enc(finish_reason)}}}}}'
    )


def native_path(
    steps: list[str], ratings: dict[int, tuple[int | None, bool]], finish_reason: str | None
) -> list[tuple[str, int | None, bool]]:
    """The (text, rating, flagged) steps a native label records: rated steps in order up to
    and including the first −1; for give_up/bad_problem the step the labeler stopped on
    follows, unrated."""
    path: list[tuple[str, int | None, bool]] = []
    for index, text in enumerate(steps):
        rating, flagged = ratings.get(index, (None, False))
        if rating is None:
            if finish_reason in _STOPPED:
                path.append((text, None, flagged))
            break
        path.append((text, rating, flagged))
        if rating < 0:
            break
    return path


def native_steps_json(
    steps: list[str], ratings: dict[int, tuple[int | None, bool]], finish_reason: str | None
) -> str:
    """PRM800K phase-2 step records of a native label, as JSON (see the module docstring):
    `native_path`, chosen_completion 0 unless rated −1 or unrated (then null)."""
    parts = []
    for text, rating, flagged in native_path(steps, ratings, finish_reason):
        parts.append(_step_json(text, rating, flagged))
    return "[" + ", ".join(parts) + "]"


def _step_json(text: str, rating: int | None, flagged: bool) -> str:
    return _STEP_HEAD + _encode_str(text) + _STEP_TAIL[rating, flagged]


def _error_step_json(text: str, rating: int, flagged: bool, alternatives: Alternatives) -> str:
    """A −1 step with its rated alternatives after it, as PRM800K's phase 2 records them:
    the original first, then each alternative (`flagged` false), `chosen_completion` null."""
    completions = [_COMPLETION_JSON % (_encode_str(text), _RATING[rating], _BOOL[flagged])]
    for other, other_rating in alternatives:
        completions.append(_COMPLETION_JSON % (_encode_str(other), _RATING[other_rating], "false"))
    return (
        '{"completions": [' + ", ".join(completions) + '], "human_completion": null, '
        '"chosen_completion": null}'
    )


_COMPLETION_JSON = '{"text": %s, "rating": %s, "flagged": %s}'
_RATING = {-1: "-1", 0: "0", 1: "1"}
_BOOL = {True: "true", False: "false"}
_STEP_HEAD = '{"completions": [{"text": '
# What follows a step's text, for each (rating, flagged): chosen 0 unless −1 or unrated.
_STEP_TAIL = {
    (rating, flagged): (
        f', "rating": {_enc(rating)}, "flagged": {_BOOL[flagged]}}}], "human_completion": null, '
        f'"chosen_completion": {"0" if rating is not None and rating >= 0 else "null"}}}'
    )
    for rating in (None, -1, 0, 1)
    for flagged in (False, True)
}


def followed_path(steps: list[dict[str, Any]]) -> list[str]:
    """Phase 1: the texts the labeler went on from (chosen, else human completion)."""
    path = []
    for step in steps:
        chosen = step.get("chosen_completion")
        human = step.get("human_completion")
        if chosen is not None:
            path.append(step["completions"][chosen]["text"])
        elif human is not None:
            path.append(human["text"])
        else:
            break
    return path


def _survives_jsonb(value: Any) -> bool:
    """True if PostgreSQL's jsonb gives `value` back spelled the same: object keys already in
    jsonb's order (byte length, then bytes) and no floats (jsonb rewrites 1e-05 as 0.00001)."""
    if isinstance(value, dict):
        keys = [k.encode("utf-8") for k in value]
        if keys != sorted(keys, key=lambda k: (len(k), k)):
            return False
        return all(_survives_jsonb(v) for v in value.values())
    if isinstance(value, list):
        return all(_survives_jsonb(v) for v in value)
    return not isinstance(value, float)


# --- import -----------------------------------------------------------------------------


def _text_key(text: str) -> bytes:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def _problem_unique_id(text: str) -> str:
    return (
        "prm800k/"
        + hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=8).hexdigest()
    )


def _sample_external_id(problem_text: str, steps: list[str]) -> str:
    data = json.dumps([problem_text, steps]).encode("utf-8")
    return "prm800k:" + hashlib.blake2b(data, digest_size=12).hexdigest()


def _validate_steps(steps: list, line: int) -> None:
    for i, step in enumerate(steps):
        where = f"label.steps[{i}]."
        if not isinstance(step, dict):
            raise ImportFailed(line, f'field "label.steps[{i}]" must be an object')
        completions = require(step, "completions", "list", line, where)
        for j, completion in enumerate(completions):
            if not isinstance(completion, dict):
                raise ImportFailed(line, f'field "{where}completions[{j}]" must be an object')
            require(completion, "text", "str", line, f"{where}completions[{j}].")
            rating = completion.get("rating")
            if rating not in (None, -1, 0, 1) or isinstance(rating, bool):
                raise ImportFailed(
                    line, f'field "{where}completions[{j}].rating" must be -1, 0, 1 or null'
                )
        texts = [completion["text"] for completion in completions]
        check_text_lengths(texts, line, f"{where}completions", settings.STEPWISE_MAX_STEP_CHARS)
        chosen = optional(step, "chosen_completion", "int", line, where)
        if chosen is not None and not 0 <= chosen < len(completions):
            raise ImportFailed(line, f'field "{where}chosen_completion" is out of range')
        human = optional(step, "human_completion", "dict", line, where)
        if human is not None:
            require(human, "text", "str", line, f"{where}human_completion.")


def _parse_record(obj: dict, line: int) -> dict[str, Any]:
    for key in TOP_KEYS:
        if key not in obj:
            raise ImportFailed(line, f'missing field "{key}"')
    extra = [key for key in obj if key not in TOP_KEYS]
    if extra:
        raise ImportFailed(line, f'unexpected field "{extra[0]}"')
    labeler = (
        check_type(obj["labeler"], "str", line, "labeler") if obj["labeler"] is not None else ""
    )
    timestamp = obj["timestamp"]
    if timestamp is not None:
        check_type(timestamp, "str", line, "timestamp")
    if len(labeler) > 64 or len(timestamp or "") > 40:
        raise ImportFailed(line, 'field "labeler" or "timestamp" is too long')
    generation = optional(obj, "generation", "int", line)
    if generation is not None:
        check_range(generation, line, "generation", -(2**31), 2**31 - 1)  # an integer column
    is_qc = require(obj, "is_quality_control_question", "bool", line)
    is_screening = require(obj, "is_initial_screening_question", "bool", line)
    question = require(obj, "question", "dict", line)
    text = require(question, "problem", "str", line, "question.")
    gt_answer = require(question, "ground_truth_answer", "str", line, "question.")
    gt_solution = optional(question, "ground_truth_solution", "str", line, "question.")
    label = require(obj, "label", "dict", line)
    steps = require(label, "steps", "list", line, "label.")
    check_step_count(len(steps), line, "label.steps")
    _validate_steps(steps, line)
    total_time = require(label, "total_time", "int", line, "label.")
    if total_time < 0:
        raise ImportFailed(line, 'field "label.total_time" must not be negative')
    finish_reason = label.get("finish_reason")
    if finish_reason not in _FINISH_REASONS:
        raise ImportFailed(
            line, f'field "label.finish_reason" must be one of {sorted(_FINISH_REASONS)}'
        )
    phase = 2 if "pre_generated_steps" in question else 1
    if phase == 2:
        sample_steps = require(question, "pre_generated_steps", "str_list", line, "question.")
        check_steps(sample_steps, line, "question.pre_generated_steps")
        answer = optional(question, "pre_generated_answer", "str", line, "question.")
        score = optional(question, "pre_generated_verifier_score", "number", line, "question.")
        score = None if score is None else float(score)
    else:
        sample_steps = followed_path(steps)
        answer = score = None
    finished_at = None
    if timestamp:
        try:
            finished_at = datetime.fromisoformat(timestamp)
        except ValueError:
            finished_at = None  # kept verbatim in Label.timestamp all the same
        if finished_at is not None and finished_at.tzinfo is None:
            finished_at = finished_at.replace(tzinfo=UTC)
    return {
        "line": line,
        "phase": phase,
        "labeler": obj["labeler"],
        "labeler_str": labeler,
        "timestamp": timestamp,
        "finished_at": finished_at,
        "generation": generation,
        "is_qc": is_qc,
        "is_screening": is_screening,
        "text": text,
        "gt_answer": gt_answer,
        "gt_solution": gt_solution,
        "steps": steps,
        "total_time": total_time,
        "finish_reason": finish_reason,
        "sample_steps": sample_steps,
        "answer": answer,
        "score": score,
    }


def import_prm800k(
    stream: IO[str] | Iterable[str],
    campaign: Campaign,
    *,
    progress: ProgressCallback | None = None,
    batch_size: int = 1000,
    processes: int | None = None,
) -> ImportSummary:
    """Import labeled PRM800K records (phase 1 or 2) into `campaign`, all or nothing."""
    from selector.grading import extract_answer
    from selector.selection import steps_fingerprint

    timer = Timer()
    summary = ImportSummary(kind="prm800k")
    grader = GradingMemo(processes=processes)
    made = {"problems": 0, "samples": 0, "labels": 0}
    verbatim = 0
    with transaction.atomic():
        # Problems number in the thousands: index them by text in memory.
        problems: dict[bytes, list[Any]] = {}
        for pk, text, gt, solution in Problem.objects.filter(campaign=campaign).values_list(
            "pk", "problem", "ground_truth_answer", "ground_truth_solution"
        ):
            problems.setdefault(_text_key(text), [pk, gt, solution])
        for batch in batched(iter_json_lines(stream), batch_size):
            records = []
            for line, obj, raw in batch:
                record = _parse_record(obj, line)
                record["raw"] = raw
                records.append(record)

            # Problems: create the new ones, give solutions to those that lack one.
            new_problems: dict[bytes, Problem] = {}
            for rec in records:
                key = rec["key"] = _text_key(rec["text"])
                known = problems.get(key)
                if known is None and key not in new_problems:
                    new_problems[key] = Problem(
                        campaign=campaign,
                        unique_id=_problem_unique_id(rec["text"]),
                        problem=rec["text"],
                        ground_truth_answer=rec["gt_answer"],
                        ground_truth_solution=rec["gt_solution"] or "",
                        split=Problem.Split.TRAIN,
                    )
                elif known is not None and not known[2] and rec["gt_solution"]:
                    Problem.objects.filter(pk=known[0]).update(
                        ground_truth_solution=rec["gt_solution"]
                    )
                    known[2] = rec["gt_solution"]
            if new_problems:
                taken = set(
                    Problem.objects.filter(
                        campaign=campaign,
                        unique_id__in=[p.unique_id for p in new_problems.values()],
                    ).values_list("unique_id", flat=True)
                )
                for key, problem in new_problems.items():
                    if problem.unique_id in taken:
                        line = next(r["line"] for r in records if r["key"] == key)
                        raise ImportFailed(
                            line, f'problem unique_id "{problem.unique_id}" is already taken'
                        )
                Problem.objects.bulk_create(new_problems.values())
                for key, problem in new_problems.items():
                    problems[key] = [
                        problem.pk,
                        problem.ground_truth_answer,
                        problem.ground_truth_solution,
                    ]
                made["problems"] += len(new_problems)

            # Samples: one per (problem text, steps); reuse those imported before.
            wanted: dict[str, dict[str, Any]] = {}
            for rec in records:
                rec["external_id"] = _sample_external_id(rec["text"], rec["sample_steps"])
                wanted.setdefault(rec["external_id"], rec)
            stored: dict[str, tuple[int, list[str], str | None, float | None]] = {}
            ids = list(wanted)
            for start in range(0, len(ids), 500):
                for pk, ext, steps, answer, score in Sample.objects.filter(
                    campaign=campaign, external_id__in=ids[start : start + 500]
                ).values_list("pk", "external_id", "steps", "answer", "verifier_score"):
                    stored[ext] = (pk, steps, answer, score)
            fresh = [rec for ext, rec in wanted.items() if ext not in stored]
            for rec in fresh:
                if rec["phase"] == 1:
                    rec["answer"] = (
                        extract_answer(rec["sample_steps"]) if rec["sample_steps"] else None
                    )
            graded = iter(
                grader.grade(
                    [(r["answer"], problems[r["key"]][1]) for r in fresh if r["answer"] is not None]
                )
            )
            new_samples = []
            for rec in fresh:
                new_samples.append(
                    Sample(
                        campaign=campaign,
                        problem_id=problems[rec["key"]][0],
                        external_id=rec["external_id"],
                        steps=rec["sample_steps"],
                        answer=rec["answer"],
                        is_correct=None if rec["answer"] is None else next(graded),
                        generator="prm800k-phase2" if rec["phase"] == 2 else "prm800k-phase1",
                        steps_hash=steps_fingerprint(rec["sample_steps"]).hex(),
                        verifier_score=rec["score"],
                    )
                )
            if new_samples:
                Sample.objects.bulk_create(new_samples)
                for sample in new_samples:
                    stored[sample.external_id] = (
                        sample.pk,
                        sample.steps,
                        sample.answer,
                        sample.verifier_score,
                    )
                made["samples"] += len(new_samples)

            # Labels, each checked to come back byte for byte.
            labels = []
            for rec in records:
                pk, steps, answer, score = stored[rec["external_id"]]
                _problem_pk, gt_answer, gt_solution = problems[rec["key"]]
                if rec["phase"] == 2:
                    question = phase2_question_json(
                        rec["text"], gt_solution, gt_answer, dumps(steps), answer, score
                    )
                else:
                    question = phase1_question_json(rec["text"], gt_answer)
                rebuilt = render_record(
                    labeler=rec["labeler"],
                    timestamp=rec["timestamp"],
                    generation=rec["generation"],
                    is_quality_control=rec["is_qc"],
                    is_initial_screening=rec["is_screening"],
                    question_json=question,
                    steps_json=dumps(rec["steps"]),
                    total_time=rec["total_time"],
                    finish_reason=rec["finish_reason"],
                )
                extra: dict[str, Any] = {"phase": rec["phase"]}
                if rebuilt != rec["raw"] or not _survives_jsonb(rec["steps"]):
                    extra["record_json"] = rec["raw"]
                    verbatim += 1
                labels.append(
                    Label(
                        sample_id=pk,
                        labeler_uuid=rec["labeler_str"],
                        prm800k_generation=rec["generation"],
                        is_quality_control=rec["is_qc"],
                        is_initial_screening=rec["is_screening"],
                        finish_reason=rec["finish_reason"],
                        total_time_ms=rec["total_time"],
                        finished_at=rec["finished_at"],
                        timestamp=rec["timestamp"] or "",
                        prm800k_steps=rec["steps"],
                        question_extra=extra,
                    )
                )
            Label.objects.bulk_create(labels)
            made["labels"] += len(labels)
            summary.lines = batch[-1][0]
            if progress is not None:
                progress(len(batch))
        analyze_on_commit(Problem, Sample, Label)
    summary.created = made
    if verbatim:
        summary.details["kept verbatim"] = verbatim
    summary.seconds = timer.elapsed
    return summary


# --- export -----------------------------------------------------------------------------

_EXPORT_FIELDS = (
    "id",
    "labeler_uuid",
    "labeler__username",
    "timestamp",
    "finished_text",
    "export_generation",
    "is_quality_control",
    "is_initial_screening",
    "finish_reason",
    "total_time_ms",
    "prm800k_text",
    "extra_text",
    "steps_text",
    "sample__answer",
    "sample__verifier_score",
    "sample__selection__score",
    "sample__problem__problem",
    "sample__problem__ground_truth_answer",
    "sample__problem__ground_truth_solution",
    "rating_rows",
    "alternatives_json",
)
_FLAG = Cast("flagged", IntegerField())


def _of_native(value: Func) -> Case:
    """`value` for native labels only: imported ones (their step records kept) skip it."""
    return Case(When(prm800k_steps__isnull=True, then=value))


def finished_labels(
    campaign: Campaign,
    generation: int | None = None,
    *,
    include_unresolved: bool = True,
    consensus_only: bool = False,
):
    """A campaign's finished labels as reviews resolved them (`annotate.review.resolved`),
    annotated with their PRM800K generation number; `consensus_only` keeps the samples whose
    label sources agree (`annotate.consensus`)."""
    qs = Label.objects.filter(sample__campaign=campaign, finish_reason__isnull=False)
    qs = resolved(qs, include_unresolved=include_unresolved)
    if consensus_only:
        qs = qs.filter(sample_id__in=consensus_samples(campaign))
    qs = qs.annotate(
        export_generation=Case(
            When(
                assignment__kind=Assignment.Kind.SCREENING,
                then=Value(Generation.SCREENING_NUMBER),
            ),
            default=Coalesce(F("assignment__generation__number"), F("prm800k_generation")),
            output_field=IntegerField(),
        )
    )
    if generation is not None:
        qs = qs.filter(export_generation=generation)
    return qs


def iter_chunks(qs, fields: tuple[str, ...], chunk_size: int) -> Iterator[list[tuple]]:
    """Rows of `qs` by id (the first field), `chunk_size` at a time, from one streamed query.

    On PostgreSQL this is a server-side cursor inside a transaction (a non-holdable cursor:
    rows are produced as they are fetched, never materialised), so memory stays constant on
    both sides; callers add one query per chunk at most (the chunk's step ratings).
    """
    with transaction.atomic():
        chunk: list[tuple] = []
        for row in qs.order_by("id").values_list(*fields).iterator(chunk_size=chunk_size):
            chunk.append(row)
            if len(chunk) >= chunk_size:
                yield chunk
                chunk = []
        if chunk:
            yield chunk


def ratings_for(label_ids: list[int]) -> dict[int, dict[int, tuple[int | None, bool]]]:
    """StepRating rows of these labels: {label id: {step: (rating, flagged)}}, one query."""
    out: dict[int, dict[int, tuple[int | None, bool]]] = {}
    if not label_ids:
        return out
    for label_id, step, rating, flagged in StepRating.objects.filter(
        label_id__in=label_ids
    ).values_list("label_id", "step", "rating", "flagged"):
        out.setdefault(label_id, {})[step] = (rating, flagged)
    return out


Alternatives = tuple[tuple[str, int], ...]


def stream_rows(qs, fields: tuple[str, ...], chunk_size: int) -> Iterator[tuple]:
    """Rows of `qs` by id (`fields` as values_list), from one query.

    On PostgreSQL the rows stream (libpq's chunked rows, `chunk_size` at a time): the server
    computes the next rows while the caller works on these, as COPY TO would, and memory
    stays one chunk on both sides. The rows are psycopg's, without Django's converters
    (the export's columns need none). The connection runs nothing else until the iteration
    ends or is closed (psycopg then cancels the query; the savepoint undoes it). The query
    is logged as Django logs its own. Elsewhere Django's chunked iterator.
    """
    qs = qs.order_by("id").values_list(*fields)
    connection = connections[qs.db]
    if connection.vendor != "postgresql":
        yield from qs.iterator(chunk_size=chunk_size)
        return
    try:
        sql, params = qs.query.get_compiler(qs.db).as_sql()
    except EmptyResultSet:  # e.g. `sample_id__in` an empty set: nothing to read
        return
    with transaction.atomic(using=qs.db), connection.cursor() as cursor:
        logged = cursor.debug_sql(sql, params) if isinstance(cursor, CursorDebugWrapper) else None
        with (
            logged or nullcontext(),
            connection.wrap_database_errors,
            closing(cursor.cursor.stream(sql, params, size=_stream_size(chunk_size))) as rows,
        ):
            yield from rows


def _stream_size(chunk_size: int) -> int:
    """Rows per chunk: libpq before 17 has no chunked rows, only single-row mode."""
    return chunk_size if psycopg.pq.version() >= 170000 else 1


class UTCTimestamp(Func):
    """A datetime as `format_timestamp` spells it, by PostgreSQL's to_char (cheaper than
    loading a datetime and formatting it in Python); elsewhere the datetime itself."""

    template = "%(expressions)s"
    output_field = DateTimeField()

    def as_postgresql(self, compiler, connection, **extra_context):
        template = """to_char(%(expressions)s AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US')"""
        return self.as_sql(compiler, connection, template=template, **extra_context)


class _JSONAgg(Func):
    """Rows as one JSON array (PostgreSQL json_agg, SQLite json_group_array). A Func, not an
    Aggregate, so Django adds no GROUP BY: it aggregates one label's whole subquery."""

    function = "JSON_AGG"
    output_field = TextField()

    def as_sqlite(self, compiler, connection, **extra_context):
        return self.as_sql(compiler, connection, function="JSON_GROUP_ARRAY", **extra_context)


class _IntArray(Func):
    """ARRAY[a, b, …]: one row's integer columns, for ArraySubquery."""

    template = "ARRAY[%(expressions)s]"
    output_field = ArrayField(IntegerField())


def per_label_rows(queryset, *columns: str | Func, integers: bool = False) -> Func:
    """Each label's rows of `queryset` as one value, one `[column, …]` per row in no set
    order, NULL or empty when it has none: JSON text; for `integers` columns on PostgreSQL
    an int[][] instead (ARRAY(SELECT ARRAY[…]): half the server's work of JSON, and psycopg
    reads it in C). A correlated subquery, so the labels' one query carries them."""
    rows = queryset.filter(label_id=OuterRef("pk")).order_by()
    if integers and connections[queryset.db].vendor == "postgresql":
        return ArraySubquery(rows.values_list(_IntArray(*columns)))
    return Cast(Subquery(rows.values_list(_JSONAgg(JSONArray(*columns)))), TextField())


def loads(text: str) -> Any:
    """json.loads, by orjson where it can (~4x faster on a sample's steps); what orjson
    refuses and json accepts (a lone surrogate escape, NaN, huge integers) goes to json."""
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError:
        return json.loads(text)


def _ratings(rows: list | str | None) -> dict[int, tuple[int | None, bool]]:
    """`per_label_rows` of StepRating (step, rating, flagged) as {step: (rating, flagged)}."""
    if rows is None:
        return {}
    if type(rows) is str:
        rows = loads(rows)
    return {step: (rating, bool(flagged)) for step, rating, flagged in rows}


def _alternatives(alternatives_json: str | None) -> Alternatives:
    """`per_label_rows` of rated Alternatives (index, text, rating), in proposal order."""
    if alternatives_json is None:
        return ()
    return tuple((text, rating) for _, text, rating in sorted(loads(alternatives_json)))


@dataclass(frozen=True, slots=True)
class LabelRecord:
    """One finished label as PRM800K sees it, straight from its row: the export writes it as a
    line (`line()`), training takes its rated steps (`workers.training_data`).

    Exactly one of `record_json` (an imported line kept verbatim), `prm800k_steps` (imported
    step records, as JSON text) and `native` (the label's StepRating path) says what it holds.
    `alternatives`: a native label's rated alternatives to its −1 step (text, rating).
    """

    labeler: str | None
    timestamp: str | None
    generation: int | None
    is_quality_control: bool
    is_initial_screening: bool
    finish_reason: str | None
    total_time: int | None
    phase: int
    problem: str
    ground_truth_answer: str
    ground_truth_solution: str | None
    steps_text: str  # the sample's steps, as JSON text
    answer: str | None
    score: float | None
    record_json: str | None = None
    prm800k_steps: str | None = None
    native: list[tuple[str, int | None, bool]] | None = None
    alternatives: Alternatives = ()

    def steps_json(self) -> str:
        if self.prm800k_steps is not None:
            return stored_json(self.prm800k_steps)
        parts = [_step_json(*step) for step in self.native or ()]
        if self.alternatives and self.error_step is not None:
            parts[-1] = _error_step_json(*self.native[-1], self.alternatives)
        return "[" + ", ".join(parts) + "]"

    @property
    def error_step(self) -> int | None:
        """Index of a native label's −1 step (the last of its path), else None."""
        ratings = [rating for _, rating, _ in self.native or ()]
        return first_error(ratings)

    def line(self) -> str:
        """The PRM800K JSONL line, no trailing newline."""
        if self.record_json is not None:
            return self.record_json
        if self.phase == 1:
            question = phase1_question_json(self.problem, self.ground_truth_answer)
        else:
            question = phase2_question_json(
                self.problem,
                self.ground_truth_solution,
                self.ground_truth_answer,
                stored_json(self.steps_text),
                self.answer,
                self.score,
            )
        return render_record(
            labeler=self.labeler,
            timestamp=self.timestamp,
            generation=self.generation,
            is_quality_control=self.is_quality_control,
            is_initial_screening=self.is_initial_screening,
            question_json=question,
            steps_json=self.steps_json(),
            total_time=self.total_time,
            finish_reason=self.finish_reason,
        )


def _label_record(row: tuple) -> LabelRecord:
    (
        _id,
        stored_uuid,
        username,
        timestamp,
        finished_at,
        generation,
        is_qc,
        is_screening,
        finish_reason,
        total_time,
        prm800k_text,
        extra_text,
        steps_text,
        answer,
        verifier_score,
        selection_score,
        problem,
        gt_answer,
        gt_solution,
        rating_rows,
        alternatives_json,
    ) = row
    extra = loads(extra_text) if extra_text is not None else None
    native = None
    if prm800k_text is not None:  # imported from PRM800K: its step records verbatim
        phase = (extra or {}).get("phase", 2)
        labeler = stored_uuid or None
        timestamp = timestamp or format_timestamp(finished_at)
        score = verifier_score
    else:
        phase = 2
        native = native_path(loads(steps_text), _ratings(rating_rows), finish_reason)
        labeler = stored_uuid or (labeler_uuid(username) if username else None)
        timestamp = format_timestamp(finished_at) or timestamp or None
        # The score the sample was selected with (PRM800K's meaning), else its imported one.
        score = verifier_score if selection_score is None else selection_score
    return LabelRecord(
        labeler=labeler,
        timestamp=timestamp,
        generation=generation,
        is_quality_control=is_qc,
        is_initial_screening=is_screening,
        finish_reason=finish_reason,
        total_time=total_time,
        phase=phase,
        problem=problem,
        ground_truth_answer=gt_answer,
        ground_truth_solution=gt_solution,
        steps_text=steps_text,
        answer=answer,
        score=score,
        record_json=(extra or {}).get("record_json"),
        prm800k_steps=prm800k_text,
        native=native,
        alternatives=_alternatives(alternatives_json) if native is not None else (),
    )


def iter_label_records(
    campaign: Campaign,
    *,
    generation: int | None = None,
    chunk_size: int = 2000,
    include_unresolved: bool = True,
    consensus_only: bool = False,
) -> Iterator[LabelRecord]:
    """A campaign's finished labels as LabelRecords, by label id.

    One query, whatever the number of labels: each label with its sample, problem, step
    ratings and rated alternatives (`per_label_rows`), streamed (`stream_rows`, `chunk_size`
    rows at a time); JSON columns are read as text and spliced into the line rather than
    decoded and re-encoded.
    """
    qs = finished_labels(
        campaign, generation, include_unresolved=include_unresolved, consensus_only=consensus_only
    ).annotate(
        prm800k_text=Cast("prm800k_steps", TextField()),
        extra_text=Cast("question_extra", TextField()),
        steps_text=Cast("sample__steps", TextField()),
        finished_text=UTCTimestamp("finished_at"),
        rating_rows=_of_native(
            per_label_rows(StepRating.objects.all(), "step", "rating", _FLAG, integers=True)
        ),
        alternatives_json=_of_native(
            per_label_rows(Alternative.objects.rated(), "index", "text", "rating")
        ),
    )
    for row in stream_rows(qs, _EXPORT_FIELDS, chunk_size):
        yield _label_record(row)


def iter_prm800k_lines(
    campaign: Campaign,
    *,
    generation: int | None = None,
    chunk_size: int = 2000,
    include_unresolved: bool = True,
    consensus_only: bool = False,
) -> Iterator[str]:
    """PRM800K JSONL lines (no trailing newline) of a campaign's finished labels, by label id."""
    for record in iter_label_records(
        campaign,
        generation=generation,
        chunk_size=chunk_size,
        include_unresolved=include_unresolved,
        consensus_only=consensus_only,
    ):
        yield record.line()


def iter_prm800k_records(
    campaign: Campaign, *, generation: int | None = None, chunk_size: int = 2000
) -> Iterator[dict[str, Any]]:
    """The same records as dicts (key order kept)."""
    for line in iter_prm800k_lines(campaign, generation=generation, chunk_size=chunk_size):
        yield json.loads(line)


def export_prm800k(
    out: IO[str],
    campaign: Campaign,
    *,
    generation: int | None = None,
    progress: ProgressCallback | None = None,
    **filters: bool,
) -> int:
    """Write PRM800K JSONL to `out` (`filters` as `iter_prm800k_lines`), a block of lines
    per write; `progress` gets the records of each block. Returns the number of records."""
    count = 0
    for block, lines in jsonl_blocks(
        iter_prm800k_lines(campaign, generation=generation, **filters)
    ):
        out.write(block)
        count += lines
        if progress is not None:
            progress(lines)
    return count


__all__ = [
    "LABELER_NAMESPACE",
    "LabelRecord",
    "export_prm800k",
    "finished_labels",
    "format_timestamp",
    "import_prm800k",
    "iter_label_records",
    "iter_prm800k_lines",
    "iter_prm800k_records",
    "labeler_uuid",
    "native_steps_json",
    "render_record",
]
