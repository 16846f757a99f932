"""Starting and opening a generation: the selection pool from the database,
`selector.selection.select` over it, and the Generation, Selection and Assignment rows it
leads to.

`start_generation` creates the generation pending and queues its scoring on the workers
(`annotate.dispatch`); they call `open_generation(..., generation=...)` once it is scored.
`preview_selection` is the dry run; `open_generation` writes, in one transaction holding the
campaign row lock, so two concurrent calls never pick the same samples. On imported scores
it runs the same lifecycle at once: pending → scoring → selecting (no chunk to score) → open.
`resume_generation` queues again what a generation whose worker died waits for (the lead's
admin action; beat's `requeue_stale_chunks` does it for chunks whose heartbeat stopped).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from django.conf import settings
from django.db import connection, transaction
from django.db.models import (
    BooleanField,
    Count,
    Exists,
    ExpressionWrapper,
    Max,
    Min,
    OuterRef,
    Q,
    QuerySet,
)
from django.db.models.expressions import RawSQL
from django.utils import timezone

from annotate import dispatch
from annotate.bulk import insert_like
from annotate.ground_truth import flag_disagreeing
from annotate.models import (
    Assignment,
    Campaign,
    Checkpoint,
    Generation,
    Problem,
    Sample,
    Score,
    Selection,
)
from annotate.models.problem import GroundTruthStatus, counts_as_wrong
from annotate.snapshot_readers import has_written_nothing, map_in_order, snapshot_readers

#: Rows fetched per round trip when loading a pool (server-side cursor on PostgreSQL).
POOL_CHUNK = 50_000

ScoreSourceArg = str | int | Checkpoint


class SelectionError(ValueError):
    """The request cannot be served: unknown score source, no active checkpoint, bad params."""


class PipelineError(RuntimeError):
    """A generation cannot be started or continued (told to the lead as is)."""


def pool_samples(campaign: Campaign, *, unscored_by: Checkpoint | None = None) -> QuerySet:
    """Samples selection may pick: train split, with an answer, never selected before; with
    `unscored_by`, only those that checkpoint has not scored yet."""
    qs = (
        Sample.objects.for_campaign(campaign)
        .train()
        .answered()
        .exclude(Exists(Selection.objects.filter(sample=OuterRef("pk"))))
    )
    if unscored_by is not None:
        scored = Score.objects.filter(sample=OuterRef("pk"), checkpoint=unscored_by)
        qs = qs.exclude(Exists(scored))
    return qs


@dataclass
class Pool:
    """One row per eligible sample, as numpy arrays (import order = sample id)."""

    sample: np.ndarray  # int64 sample ids, ascending
    problem: np.ndarray  # int64 problem ids
    score: np.ndarray  # float64
    wrong: np.ndarray  # bool
    fingerprint: np.ndarray  # S16 digests
    excluded_problems: np.ndarray  # int64, problems of samples selected before
    excluded_fingerprints: np.ndarray  # S16, their digests
    # (graded, correct) per problem id over the campaign's answered samples, where the loader
    # read them anyway (PostgreSQL's packed path): `flag_disagreeing` counts no more.
    verdicts: dict[int, tuple[int, int]] | None = None

    def __len__(self) -> int:
        return len(self.sample)

    def distrust(self, problems: np.ndarray) -> None:
        """Wrong answers of these problems no longer count (their ground truth is suspect)."""
        self.wrong &= ~np.isin(self.problem, problems)


@dataclass
class Preview:
    """A selection not yet written: picks in selection order and the parameters used."""

    campaign: Campaign
    params: dict[str, Any]
    score_source: str
    checkpoint: Checkpoint | None
    sample: np.ndarray
    problem: np.ndarray
    score: np.ndarray
    wrong: np.ndarray
    pool_size: int
    extras: dict[str, Any] = field(default_factory=dict)
    uniform: np.ndarray | None = None  # bool, the control arm's picks (None: all active)

    def __len__(self) -> int:
        return len(self.sample)

    def as_json(self) -> dict[str, Any]:
        """DESIGN's `select --dry-run --json`: picks in order, the pool, params, score source."""
        # Picks come from the pool: the `sample_pool` index names them without the heap.
        pool = Sample.objects.for_campaign(self.campaign).answered()
        samples = _field_by_pk(pool, self.sample, "external_id")
        names = _field_by_pk(Problem.objects.all(), np.unique(self.problem), "unique_id")
        return {
            "selected": [
                {
                    "sample": int(s),
                    "id": samples[int(s)],
                    "problem": names[int(p)],
                    "score": float(sc),
                    "wrong": bool(w),
                }
                for s, p, sc, w in zip(
                    self.sample, self.problem, self.score, self.wrong, strict=True
                )
            ],
            "pool": self.pool_size,
            "params": self.params,
            "scores": "imported" if self.checkpoint is None else self.checkpoint.pk,
        }


def _field_by_pk(rows: QuerySet, pks: np.ndarray, name: str) -> dict[int, Any]:
    """{pk: field} for many pks. PostgreSQL gets them as one array parameter: an IN list of
    10⁵ placeholders took 4.7 s to build and plan at 12M samples, the array 1.5 s."""
    ids = np.unique(pks).tolist()  # each id once
    if connection.vendor == "postgresql":
        wanted: Any = RawSQL("SELECT unnest(%s::bigint[])", [ids])
    else:
        wanted = ids
    return dict(rows.filter(pk__in=wanted).values_list("pk", name))


def resolve_scores(campaign: Campaign, scores: ScoreSourceArg) -> Checkpoint | None:
    """None for imported verifier scores, else the checkpoint whose Score rows to use."""
    if isinstance(scores, Checkpoint):
        return scores
    if scores == "imported":
        return None
    if scores == "active":
        if campaign.active_checkpoint_id is None:
            raise SelectionError(f"campaign {campaign.slug} has no active checkpoint")
        return Checkpoint.objects.get(pk=campaign.active_checkpoint_id)
    try:
        pk = int(scores)
    except (TypeError, ValueError):
        raise SelectionError(
            f"scores must be 'imported', 'active' or a checkpoint id, not {scores!r}"
        ) from None
    checkpoint = Checkpoint.objects.filter(pk=pk).first()
    if checkpoint is None:
        raise SelectionError(f"no checkpoint with id {pk}")
    if problem := campaign.ownership_error(checkpoint):
        raise SelectionError(problem)
    return checkpoint


def _digest(steps_hash: str) -> bytes:
    """The 16-byte fingerprint behind a steps_hash; one that is not 32 hex digits (written by
    some other path) gets a stable stand-in, so equal hashes still dedup."""
    if len(steps_hash) == 32:
        try:
            return bytes.fromhex(steps_hash)
        except ValueError:
            pass
    return hashlib.md5(steps_hash.encode("utf-8")).digest()


def _digests(hexes: list[str]) -> np.ndarray:
    from selector.selection import FINGERPRINT_DTYPE

    if not hexes:
        return np.zeros(0, dtype=FINGERPRINT_DTYPE)
    data = b"".join(_digest(h) for h in hexes)
    return np.frombuffer(data, dtype=FINGERPRINT_DTYPE).copy()


#: Sample ids per pool query when loading from PostgreSQL (one packed row each).
POOL_ID_SPAN = 1_000_000

# One id range of the campaign's answered samples, each column folded into one bytea of
# big-endian values (no row messages). Only columns of the `sample_pool` covering index and
# no join, so PostgreSQL reads the index alone: the rest of the pool rule (train split,
# suspect ground truth, selected before) is applied in numpy from small tables. At 12M samples
# the joined query took 1.4 s per 10⁶ ids, this one 0.7 s and the scores' 0.3 s. Each column
# costs the server ~0.1 s per 10⁶, so the imported score is read only when it is the source
# (NaN where there is none, as the selector wants it).
_SAMPLES_SQL = (
    "COPY (SELECT count(*), string_agg(int8send(id), ''), string_agg(int8send(problem_id), ''), "
    "{score}string_agg(CASE WHEN is_correct THEN '\\x02'::bytea "
    "WHEN NOT is_correct THEN '\\x01'::bytea ELSE '\\x00'::bytea END, ''), "
    "string_agg(decode(steps_hash, 'hex'), '') "
    "FROM {table} WHERE campaign_id = %s AND answer IS NOT NULL AND id BETWEEN %s AND %s) "
    "TO STDOUT (FORMAT BINARY)"
)
_IMPORTED_SCORE = "string_agg(float8send(coalesce(verifier_score, 'NaN')::float8), ''), "
_SAMPLE_COLUMNS = tuple(np.dtype(t) for t in (">i8", ">i8", "u1", "S16"))
_IMPORTED_COLUMNS = (*_SAMPLE_COLUMNS[:2], np.dtype(">f8"), *_SAMPLE_COLUMNS[2:])
_WRONG, _CORRECT = 1, 2  # the verdict byte; 0: not graded
_SCORES_SQL = (
    "COPY (SELECT count(*), string_agg(int8send(sample_id), ''), "
    "string_agg(float8send(score::float8), '') FROM {table} "
    "WHERE checkpoint_id = %s AND sample_id BETWEEN %s AND %s) TO STDOUT (FORMAT BINARY)"
)
_SCORE_COLUMNS = (np.dtype(">i8"), np.dtype(">f8"))


class _OddRows(Exception):
    """The packed path cannot read this pool exactly (a steps_hash that is not 32 hex digits,
    a sample of another campaign's problem): use the general path."""


def _packed_fields(row: memoryview) -> list[memoryview]:
    """The fields of one binary COPY row (int16 count, then int32 length + bytes each;
    -1: NULL, an empty range's aggregates), as views: no copy of ~40 MB a range."""
    fields, at = [], 2
    for _ in range(int.from_bytes(row[:2], "big")):
        length = int.from_bytes(row[at : at + 4], "big", signed=True)
        at += 4
        fields.append(row[at:at] if length < 0 else row[at : at + length])
        at += max(length, 0)
    return fields


def _packed_range(raw: Any, sql: str, params: list, dtypes: tuple) -> list[np.ndarray]:
    """One packed COPY row as native numpy columns in id order (a range's rows come in any
    order); `raw`: a psycopg cursor."""
    with raw.copy(sql, params) as copy:
        blocks = list(copy)
    # libpq hands over a row per block: the header and our one row, then the trailer.
    data = blocks[0] if len(blocks) == 2 else memoryview(b"".join(blocks))
    count, *packed = _packed_fields(data[19:])  # past the COPY header
    n = int.from_bytes(count, "big")
    if any(len(c) != n * t.itemsize for c, t in zip(packed, dtypes, strict=True)):
        raise _OddRows  # a decoded steps_hash not 16 bytes long
    columns = [
        np.frombuffer(c, dtype=t).astype(t.newbyteorder("="))
        for c, t in zip(packed, dtypes, strict=True)
    ]
    if len(columns[0]) < 2 or (columns[0][1:] > columns[0][:-1]).all():
        return columns  # an index scan's id order: nothing to gather
    order = np.argsort(columns[0], kind="stable")
    return [column[order] for column in columns]


def _problem_rules(campaign: Campaign) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The campaign's problem ids (sorted), whether each one's samples may be picked (train
    split) and whether a wrong verdict counts (ground truth not suspect): the parts of
    `pool_samples` and `counts_as_wrong` that read the problem."""
    rows = list(
        Problem.objects.filter(campaign=campaign)
        .order_by("id")
        .values_list("id", "split", "ground_truth_status")
    )
    ids = np.array([r[0] for r in rows], dtype=np.int64)
    train = np.array([r[1] == "train" for r in rows], dtype=np.bool_)
    trusted = np.array([r[2] != GroundTruthStatus.SUSPECT for r in rows], dtype=np.bool_)
    return ids, train, trusted


def _positions(sorted_ids: np.ndarray, wanted: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of `wanted` sits in `sorted_ids`, and whether it is there at all."""
    if not len(sorted_ids):
        return np.zeros(len(wanted), np.intp), np.zeros(len(wanted), np.bool_)
    at = np.minimum(np.searchsorted(sorted_ids, wanted), len(sorted_ids) - 1)
    return at, sorted_ids[at] == wanted


def _load_pool_copy(
    campaign: Campaign, checkpoint: Checkpoint | None, selected: np.ndarray, *, locked_only: bool
) -> Pool:
    """PostgreSQL: the pool one id range at a time, each column of a range packed into one
    bytea by the server and read by numpy as is, so Python does no work per sample (one
    per-row COPY of 10⁶ samples spent ~1 s yielding row messages). The ranges are shared
    among connections reading this transaction's snapshot where it allows (one core each).
    `selected`: sorted ids of the campaign's samples selected before (left out; their keys
    are read from the same ranges)."""
    from selector.selection import FINGERPRINT_DTYPE

    ids = Sample.objects.for_campaign(campaign).aggregate(low=Min("id"), high=Max("id"))
    low, high = ids["low"], ids["high"]
    spans = range(low or 0, (high or -1) + 1, POOL_ID_SPAN)
    ranges = [(start, start + POOL_ID_SPAN - 1) for start in spans]
    problem_ids, train, trusted = _problem_rules(campaign)
    table = Sample._meta.db_table
    samples_sql = _SAMPLES_SQL.format(
        table=table, score=_IMPORTED_SCORE if checkpoint is None else ""
    )
    scores_sql = _SCORES_SQL.format(table=Score._meta.db_table)

    def read(raw: Any, bounds: tuple[int, int]) -> list[np.ndarray | None]:
        params = [campaign.pk, *bounds]
        if checkpoint is None:
            sample, problem, score, verdict, fp = _packed_range(
                raw, samples_sql, params, _IMPORTED_COLUMNS
            )
            keep = ~np.isnan(score)
        else:
            sample, problem, verdict, fp = _packed_range(raw, samples_sql, params, _SAMPLE_COLUMNS)
            scored, score = _packed_range(raw, scores_sql, [checkpoint.pk, *bounds], _SCORE_COLUMNS)
            if not np.array_equal(scored, sample):  # some samples are not scored (yet)
                at_score, keep = _positions(scored, sample)
                score = score[at_score] if len(score) else np.zeros(len(sample))
            else:
                keep = np.ones(len(sample), np.bool_)
        at, known = _positions(problem_ids, problem)
        if not known.all():
            raise _OddRows  # a sample of another campaign's problem: the general path
        graded = np.bincount(at[verdict > 0], minlength=len(problem_ids))
        correct = np.bincount(at[verdict == _CORRECT], minlength=len(problem_ids))
        chosen = _positions(selected, sample)[1]  # selected before: out, its key kept
        keep &= train[at] & ~chosen
        wrong = (verdict == _WRONG) & trusted[at]
        pool = [column[keep] for column in (sample, problem, score, wrong, fp)]
        return [*pool, sample[chosen], problem[chosen], fp[chosen], graded, correct]

    chunks = _read_ranges(read, ranges, locked_only=locked_only)
    if chunks is None:
        raise _OddRows
    correct = sum((chunk.pop() for chunk in chunks), np.zeros(len(problem_ids), np.int64))
    graded = sum((chunk.pop() for chunk in chunks), np.zeros(len(problem_ids), np.int64))
    native = (np.int64, np.int64, np.float64, np.bool_, FINGERPRINT_DTYPE)
    native += (np.int64, np.int64, FINGERPRINT_DTYPE)
    arrays = []
    for column, dtype in enumerate(native):
        parts = [chunk[column] for chunk in chunks]
        # Native already: np.concatenate(…, dtype=) would cast, 15x slower than copying.
        arrays.append(np.concatenate(parts) if parts else np.zeros(0, dtype))
        for chunk in chunks:  # one column at a time held twice, not the whole pool
            chunk[column] = None
    *pool, found, x_problem, x_fp = arrays
    missing = np.setdiff1d(selected, found)  # selected samples that lost their answer
    if len(missing):
        rows = Sample.objects.filter(pk__in=missing.tolist()).values_list(
            "problem_id", "steps_hash"
        )
        x_problem = np.concatenate([x_problem, np.array([p for p, _ in rows], np.int64)])
        x_fp = np.concatenate([x_fp, _digests([h for _, h in rows])])
    pairs = zip(graded.tolist(), correct.tolist(), strict=True)
    verdicts = dict(zip(problem_ids.tolist(), pairs, strict=True))
    return Pool(*pool, excluded_problems=x_problem, excluded_fingerprints=x_fp, verdicts=verdicts)


def _read_ranges(read: Any, ranges: list, *, locked_only: bool) -> list | None:
    """`read(cursor, range)` for every range, on connections sharing this transaction's
    snapshot where it allows, else on its own; None where the packed path cannot read them.
    Nothing raises through the outer block, which would mark the caller's transaction for
    rollback; on this connection a savepoint keeps a failed decode() from aborting it."""
    import psycopg

    with transaction.atomic(savepoint=False), connection.cursor() as cursor:
        with snapshot_readers(cursor, len(ranges), locked_only=locked_only) as readers:
            if readers:
                try:
                    return map_in_order(readers, read, ranges)
                except (psycopg.Error, _OddRows):
                    return None  # the readers' own transactions: ours is untouched
        try:
            with transaction.atomic():
                return map_in_order([cursor.cursor], read, ranges)
        except (psycopg.Error, _OddRows):
            return None  # decode() refused a malformed steps_hash, or rows of another campaign


def load_pool(
    campaign: Campaign, checkpoint: Checkpoint | None, *, locked_only: bool = False
) -> Pool:
    """The campaign's train-split samples with an answer and a score, not selected before.

    No model instances: on PostgreSQL packed id ranges decoded by numpy (`_load_pool_copy`);
    elsewhere a lean values_list over a chunked cursor, converted chunk by chunk.
    `locked_only`: this transaction has locked rows but written none, so connections sharing
    its snapshot see what it sees (`open_generation`).
    """
    from selector.selection import FINGERPRINT_DTYPE

    # From the selections' side (a generation's selections are its campaign's samples): a
    # join from the samples' side walked all 10⁷ of them.
    picked = Selection.objects.filter(generation__campaign=campaign).values("sample_id")
    selected = Sample.objects.for_campaign(campaign).filter(pk__in=picked)
    if connection.vendor == "postgresql":
        try:
            ids = np.unique(np.array(picked.values_list("sample_id", flat=True), np.int64))
            return _load_pool_copy(campaign, checkpoint, ids, locked_only=locked_only)
        except _OddRows:
            pass
    ex = list(selected.values_list("problem_id", "steps_hash"))
    excluded = {
        "excluded_problems": np.array([p for p, _ in ex], dtype=np.int64),
        "excluded_fingerprints": _digests([h for _, h in ex]),
    }
    pool = pool_samples(campaign)
    if checkpoint is None:
        qs = (
            pool.filter(verifier_score__isnull=False)
            .annotate(wrong=ExpressionWrapper(counts_as_wrong(), output_field=BooleanField()))
            .order_by("id")
            .values_list("id", "problem_id", "verifier_score", "wrong", "steps_hash")
        )
    else:
        wrong = ExpressionWrapper(counts_as_wrong("sample__"), output_field=BooleanField())
        qs = (
            Score.objects.filter(checkpoint=checkpoint, sample__in=pool)
            .annotate(wrong=wrong)
            .order_by("sample_id")
            .values_list(
                "sample_id",
                "sample__problem_id",
                "score",
                "wrong",
                "sample__steps_hash",
            )
        )
    parts: list[tuple[np.ndarray, ...]] = []
    chunk: list[tuple] = []

    def flush() -> None:
        if not chunk:
            return
        ids, problems, scores, wrong, hashes = zip(*chunk, strict=True)
        parts.append(
            (
                np.fromiter(ids, dtype=np.int64, count=len(ids)),
                np.fromiter(problems, dtype=np.int64, count=len(ids)),
                np.fromiter(scores, dtype=np.float64, count=len(ids)),
                np.fromiter((w is True for w in wrong), dtype=np.bool_, count=len(ids)),
                _digests(list(hashes)),
            )
        )
        chunk.clear()

    for row in qs.iterator(chunk_size=POOL_CHUNK):
        chunk.append(row)
        if len(chunk) >= POOL_CHUNK:
            flush()
    flush()
    if parts:
        arrays = [np.concatenate(column) for column in zip(*parts, strict=True)]
    else:
        arrays = [
            np.zeros(0, np.int64),
            np.zeros(0, np.int64),
            np.zeros(0, np.float64),
            np.zeros(0, np.bool_),
            np.zeros(0, FINGERPRINT_DTYPE),
        ]
    return Pool(*arrays, **excluded)


def selection_params(campaign: Campaign, **overrides: Any) -> dict[str, Any]:
    """The campaign's settings with this generation's overrides (None = keep), validated."""
    from selector.selection import SelectionParams

    params = campaign.selection_params()
    for key, value in overrides.items():
        if key not in params:
            raise SelectionError(f"unknown selection parameter {key!r}")
        if value is not None:
            params[key] = value
    try:
        return SelectionParams.from_dict(params).to_dict()
    except (TypeError, ValueError) as exc:
        raise SelectionError(str(exc)) from None


def pick_from_pool(
    campaign: Campaign, pool: Pool, params: dict[str, Any], generation_number: int
) -> tuple[np.ndarray, np.ndarray | None]:
    """`selector.select_arms` over a loaded pool: positions picked, and which of them are the
    control arm's (seeded by the campaign and the generation number)."""
    from selector.selection import select_arms

    return select_arms(
        pool.problem,
        pool.sample,
        pool.score,
        pool.wrong,
        pool.fingerprint,
        excluded_problems=pool.excluded_problems,
        excluded_fingerprints=pool.excluded_fingerprints,
        uniform_fraction=campaign.uniform_fraction,
        seed=uniform_seed(campaign, generation_number),
        **params,
    )


def preview_selection(
    campaign: Campaign,
    *,
    scores: ScoreSourceArg = "imported",
    strategy: str | None = None,
    k: int | None = None,
    wrong_fraction: float | None = None,
    max_per_problem: int | None = None,
    generation_number: int | None = None,
) -> Preview:
    """What `open_generation` would select now, without writing anything; the control arm's
    draw is seeded by the campaign and `generation_number` (default: the next one)."""
    overrides = {
        "strategy": strategy,
        "k": k,
        "wrong_fraction": wrong_fraction,
        "max_per_problem": max_per_problem,
    }
    return _select(campaign, scores, overrides, generation_number, opening=False)


def _select(
    campaign: Campaign,
    scores: ScoreSourceArg,
    overrides: dict[str, Any],
    generation_number: int | None,
    *,
    opening: bool,
    locked_only: bool = False,
) -> Preview:
    """Load the pool and pick from it. `opening`: `open_generation`, which holds the campaign
    row, so broken ground truths are flagged first (from the verdicts the pool load counted);
    `locked_only`: see `load_pool`."""
    params = selection_params(campaign, **overrides)
    checkpoint = resolve_scores(campaign, scores)
    pool = load_pool(campaign, checkpoint, locked_only=locked_only)
    # Samples generated or graded since the last check: broken ground truths out of the
    # wrong-answer phase before anything is picked.
    if opening and flag_disagreeing(campaign, pool.verdicts):
        pool.distrust(np.array(campaign.problems.suspect().values_list("pk", flat=True)))
    if not len(pool) and checkpoint is None and pool_samples(campaign).exists():
        raise SelectionError(
            "no imported scores: no sample in the pool has a verifier_score; "
            "try --scores active (or a checkpoint id)"
        )
    if generation_number is None:
        generation_number = campaign.next_generation_number()
    picked, uniform = pick_from_pool(campaign, pool, params, generation_number)
    return Preview(
        campaign=campaign,
        params=params,
        score_source=(
            Generation.ScoreSource.IMPORTED
            if checkpoint is None
            else Generation.ScoreSource.CHECKPOINT
        ),
        checkpoint=checkpoint,
        sample=pool.sample[picked],
        problem=pool.problem[picked],
        score=pool.score[picked],
        wrong=pool.wrong[picked],
        pool_size=len(pool),
        uniform=uniform,
    )


def uniform_seed(campaign: Campaign, number: int) -> int:
    """The control arm's seed for one generation: the same draw for its preview and opening."""
    digest = hashlib.blake2b(f"{campaign.pk}/{number}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


@transaction.atomic
def open_generation(
    campaign: Campaign,
    *,
    scores: ScoreSourceArg = "imported",
    strategy: str | None = None,
    k: int | None = None,
    wrong_fraction: float | None = None,
    max_per_problem: int | None = None,
    allow_empty: bool = False,
    generation: Generation | None = None,
) -> tuple[Generation, Preview]:
    """Select and open the campaign's next generation: Generation (status open, frozen
    params), its Selection rows (rank from 0 in selection order) and `overlap` unclaimed
    regular Assignment slots per selected sample, all in one transaction.

    The campaign row is locked first (SELECT … FOR UPDATE), so a concurrent call waits and
    then sees this one's selections. Raises SelectionError when nothing is selectable, unless
    `allow_empty`.

    `generation`: an existing row of this campaign in status `selecting` (the scoring
    pipeline's) is filled and opened instead of creating a new one; its frozen params are the
    base the keyword overrides apply to. Raises SelectionError when it is no longer selecting.
    """
    nothing_written = has_written_nothing()  # then after the row locks below, still nothing
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if generation is not None:
        generation = Generation.objects.select_for_update().get(pk=generation.pk)
        if problem := locked.ownership_error(generation):
            raise SelectionError(problem)
        if generation.status != Generation.Status.SELECTING:
            raise SelectionError(
                f"generation {generation.number} is {generation.status}, not selecting"
            )
        # In memory only (never saved): selection_params() then starts from the frozen params.
        for key, value in generation.params.items():
            setattr(locked, key, value)
    overrides = {
        "strategy": strategy,
        "k": k,
        "wrong_fraction": wrong_fraction,
        "max_per_problem": max_per_problem,
    }
    number = None if generation is None else generation.number
    preview = _select(locked, scores, overrides, number, opening=True, locked_only=nothing_written)
    if len(preview) == 0 and not allow_empty:
        raise SelectionError(f"nothing to select in campaign {locked.slug}")
    if generation is None:
        # Scores already stored: no chunk to score, so straight through to selecting.
        generation = Generation.objects.create(
            campaign=locked,
            number=locked.next_generation_number(),
            checkpoint=preview.checkpoint,
            score_source=preview.score_source,
            params=preview.params,
        )
        generation.start_scoring(progress_total=0)
        generation.mark_scored()
    if not generation.open(
        checkpoint=preview.checkpoint, score_source=preview.score_source, params=preview.params
    ):
        raise SelectionError(f"generation {generation.number} is no longer selecting")
    # Rows in sample id order, so the deferred foreign-key checks at commit read the sample
    # table forwards (at 10⁷ samples the commit took 3-4.5 s either way: the checks' own cost).
    by_sample = np.argsort(preview.sample, kind="stable")
    samples = preview.sample[by_sample].tolist()
    insert_like(
        Selection(generation=generation, sample_id=0, rank=0, score=0.0, is_wrong=False),
        ("sample_id", "rank", "score", "is_wrong"),
        zip(
            samples,
            by_sample.tolist(),
            preview.score[by_sample].tolist(),
            preview.wrong[by_sample].tolist(),
            strict=True,
        ),
    )
    uniform = np.zeros(len(preview), bool) if preview.uniform is None else preview.uniform
    arms = [
        Assignment.Arm.UNIFORM if u else Assignment.Arm.ACTIVE for u in uniform[by_sample].tolist()
    ]
    insert_like(
        Assignment(
            generation=generation,
            sample_id=0,
            kind=Assignment.Kind.REGULAR,
            state=Assignment.State.OPEN,
        ),
        ("sample_id", "arm"),
        (
            (sample, arm)
            for sample, arm in zip(samples, arms, strict=True)
            for _ in range(locked.overlap)
        ),
    )
    return generation, preview


@transaction.atomic
def begin_generation(
    campaign: Campaign, *, checkpoint: Checkpoint | None = None, **overrides: Any
) -> Generation:
    """The campaign's next generation in `pending`, to be scored with a checkpoint.

    Raises PipelineError while another generation of the campaign is running, and
    SelectionError for invalid selection overrides.

    One generation runs through the pipeline at a time per campaign. When the last one
    failed, it is reset and run again under the same number (its finished chunks and Scores
    are kept); otherwise a new one is created. The checkpoint defaults to the active one;
    none means "bootstrap one" at preparation.
    """
    locked = Campaign.objects.select_for_update().get(pk=campaign.pk)
    running = locked.generations.running().first()
    if running is not None:
        raise PipelineError(f"generation {running.number} is still {running.status}")
    if checkpoint is not None and (problem := locked.ownership_error(checkpoint)):
        raise PipelineError(problem)
    params = selection_params(locked, **overrides)  # SelectionError on bad overrides
    try:
        generator = locked.generator_settings()
    except (TypeError, ValueError) as exc:
        raise PipelineError(f"generator settings: {exc}") from None
    checkpoint_id = checkpoint.pk if checkpoint else locked.active_checkpoint_id
    last = locked.generations.newest()
    if last is not None and last.status == Generation.Status.FAILED:
        fields: dict[str, Any] = {}
        if last.checkpoint_id != checkpoint_id and checkpoint_id is not None:
            # Chunks and progress belong to the old checkpoint's scoring.
            last.scoring_chunks.all().delete()
            fields = {"checkpoint_id": checkpoint_id, "progress_done": 0, "progress_total": 0}
        last.scoring_chunks.update(attempts=0, heartbeat_at=None)
        source = Generation.ScoreSource.CHECKPOINT
        # The lead may have fixed the generator (a server down, a wrong URL): the new
        # snapshot applies; the samples already generated are kept and not asked for again.
        fields["generator"] = generator
        if not last.restart(params=params, score_source=source, **fields):
            raise PipelineError(f"generation {last.number} is no longer failed")
        return last
    return Generation.objects.create(
        campaign=locked,
        number=locked.next_generation_number(),
        checkpoint_id=checkpoint_id,
        score_source=Generation.ScoreSource.CHECKPOINT,
        params=params,
        generator=generator,
        status=Generation.Status.PENDING,
    )


def start_generation(
    campaign: Campaign, checkpoint: Checkpoint | None = None, **overrides: Any
) -> Generation:
    """Create (or, after a failure, reset) the campaign's next generation and queue its
    pipeline (generating first when the campaign's N > 0) once the row is committed. Raises
    PipelineError when one is running."""
    with transaction.atomic():
        generation = begin_generation(campaign, checkpoint=checkpoint, **overrides)
        dispatch.start_pipeline(generation)
    return generation


@dataclass
class OpenWork:
    """An open generation's work not yet submitted: unclaimed slots and claimed tasks."""

    generation: Generation
    open: int
    in_progress: int

    @property
    def total(self) -> int:
        return self.open + self.in_progress


@dataclass
class StartPlan:
    """What "start next generation" would do now, read without writing, for the lead to
    confirm: the open work it would leave behind and the selection over today's pool."""

    campaign: Campaign
    checkpoint: Checkpoint | None  # None: the pipeline bootstraps one first
    params: dict[str, Any]
    open_work: list[OpenWork]
    pool: int
    preview: Preview | None
    problem: str = ""  # why there is no preview

    @property
    def has_open_work(self) -> bool:  # the same rule as `has_open_work`, on rows read already
        return any(work.total for work in self.open_work)

    @property
    def wrong(self) -> int:
        return 0 if self.preview is None else int(self.preview.wrong.sum())

    @property
    def uniform(self) -> int:
        preview = self.preview
        return 0 if preview is None or preview.uniform is None else int(preview.uniform.sum())

    def first_picks(self, limit: int = 20) -> list[dict[str, Any]]:
        """The preview's first picks in selection order, named: sample, problem, score, arm."""
        if self.preview is None:
            return []
        preview = self.preview
        ids = [int(pk) for pk in preview.sample[:limit]]
        names = {
            pk: (external_id, problem)
            for pk, external_id, problem in Sample.objects.filter(pk__in=ids).values_list(
                "pk", "external_id", "problem__unique_id"
            )
        }
        uniform = preview.uniform if preview.uniform is not None else np.zeros(len(ids), bool)
        return [
            {
                "sample": pk,
                "id": names[pk][0],
                "problem": names[pk][1],
                "score": float(preview.score[i]),
                "wrong": bool(preview.wrong[i]),
                "arm": "uniform" if uniform[i] else "active",
            }
            for i, pk in enumerate(ids)
        ]


def has_open_work(campaign: Campaign) -> bool:
    """Whether an open generation of the campaign still has a slot not submitted."""
    return any(work.total for work in open_work(campaign))


def open_work(campaign: Campaign) -> list[OpenWork]:
    """The campaign's open generations with their unsubmitted regular and QC slots."""
    rows = (
        campaign.generations.open()
        .annotate(
            n_open=Count("assignments", filter=Q(assignments__state=Assignment.State.OPEN)),
            n_busy=Count("assignments", filter=Q(assignments__state=Assignment.State.IN_PROGRESS)),
        )
        .order_by("number")
    )
    return [OpenWork(g, g.n_open, g.n_busy) for g in rows]


def plan_next_generation(campaign: Campaign) -> StartPlan:
    """`start_generation`'s choices now: the active checkpoint (or a bootstrap), the campaign's
    selection parameters, and what they would pick from the samples already scored."""
    checkpoint = campaign.active_checkpoint
    preview, problem = None, ""
    try:
        preview = preview_selection(campaign, scores=checkpoint or "imported")
    except SelectionError as exc:
        problem = str(exc)
    return StartPlan(
        campaign=campaign,
        checkpoint=checkpoint,
        params=selection_params(campaign),
        open_work=open_work(campaign),
        pool=pool_samples(campaign).count(),
        preview=preview,
        problem=problem,
    )


def start_next_generation(campaign: Campaign, *, close_open: bool) -> Generation:
    """`start_generation`, after closing the campaign's open generations when the lead chose
    so (their unclaimed slots leave the queue; tasks already claimed can still be finished)."""
    with transaction.atomic():
        if close_open:
            for generation in campaign.generations.open().select_for_update():
                if not generation.complete():
                    raise PipelineError(f"generation {generation.number} is no longer open")
        return start_generation(campaign)


def chunk_stale_after() -> timedelta:
    """How long a started scoring chunk may go without a heartbeat before it counts as lost."""
    return timedelta(seconds=max(1, int(settings.STEPWISE_CHUNK_STALE_SECONDS)))


def resume_generation(generation: Generation, *, stale_before: datetime | None = None) -> int:
    """Queue again what a running generation waits for after its worker died; returns how
    many tasks were queued.

    With `stale_before` (beat's sweep): only the scoring chunks started and silent since then.
    Without (the lead's admin action): the task of whatever stage it is in (pending or
    generating from its first stage, every unfinished chunk, the selection). Every task is
    idempotent, so resuming a generation that was not stuck costs time, never data.
    """
    with transaction.atomic():
        # The generation row lock: two sweeps never both re-queue the same chunk.
        generation = Generation.objects.select_for_update().get(pk=generation.pk)
        status = generation.status
        if status == Generation.Status.SCORING:
            chunks = generation.scoring_chunks.filter(done=False)
            if stale_before is not None:
                chunks = chunks.filter(heartbeat_at__lt=stale_before)
            ids = list(chunks.values_list("pk", flat=True))
            # Waiting in the queue again: no sweep re-sends them until a worker starts them.
            generation.scoring_chunks.filter(pk__in=ids).update(heartbeat_at=None)
            for chunk_id in ids:
                dispatch.score_chunk(generation.pk, chunk_id)
            if ids or stale_before is not None or not generation.mark_scored():
                return len(ids)
            status = Generation.Status.SELECTING  # every chunk done: the finisher died
        if stale_before is not None:
            return 0
        if status == Generation.Status.SELECTING:
            dispatch.select_generation(generation.pk)
            return 1
        if status in (Generation.Status.PENDING, Generation.Status.GENERATING):
            dispatch.start_pipeline(generation)
            return 1
    return 0


def requeue_stale_chunks(now: datetime | None = None) -> int:
    """Beat's sweep: scoring chunks whose worker stopped beating are queued again, within
    minutes rather than after the broker's visibility timeout; returns how many."""
    cutoff = (now or timezone.now()) - chunk_stale_after()
    stuck = Generation.objects.filter(
        status=Generation.Status.SCORING,
        scoring_chunks__done=False,
        scoring_chunks__heartbeat_at__lt=cutoff,
    ).distinct()
    return sum(resume_generation(g, stale_before=cutoff) for g in stuck)
