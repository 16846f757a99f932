"""Shared machinery for streaming JSONL imports: typed failures, summaries, line parsing,
batched inserts (COPY on PostgreSQL) and a bounded grading memo."""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from itertools import repeat
from typing import IO, Any

import orjson
from django.conf import settings
from django.db import connection, transaction

#: Lines validated, graded and written together; memory is bounded by one batch.
DEFAULT_BATCH_SIZE = 5000

ProgressCallback = Callable[[int], None]


class ImportFailed(Exception):
    """A line of an import could not be accepted; the whole import is rolled back."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line
        self.message = message


#: The brief's other spelling; both names refer to one class.
ImportError_ = ImportFailed


@dataclass
class ImportSummary:
    """What an import wrote: counts per kind of row, lines read, wall time."""

    kind: str
    lines: int = 0
    created: dict[str, int] = field(default_factory=dict)
    details: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.lines / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "lines": self.lines,
            "created": dict(self.created),
            "details": dict(self.details),
            "seconds": round(self.seconds, 3),
            "lines_per_second": round(self.rate, 1),
        }

    def __str__(self) -> str:
        made = ", ".join(f"{n} {what}" for what, n in self.created.items())
        extra = ", ".join(f"{n} {what}" for what, n in self.details.items())
        text = f"Imported {made or 'nothing'} from {self.lines} lines"
        if extra:
            text += f" ({extra})"
        return f"{text} in {self.seconds:.2f} s ({self.rate:,.0f} lines/s)."


class Timer:
    def __init__(self) -> None:
        self.start = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.start


#: JSON nesting deeper than this is refused (real records nest about 5 deep).
MAX_DEPTH = 64
#: A JSON escape of a UTF-16 surrogate: only these can leave a lone surrogate in a string.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_BOM = b"\xef\xbb\xbf"


def limits() -> tuple[int, int]:
    """(bytes per upload, bytes per line), from STEPWISE_MAX_UPLOAD_BYTES / _LINE_BYTES."""
    return settings.STEPWISE_MAX_UPLOAD_BYTES, settings.STEPWISE_MAX_LINE_BYTES


def read_lines(stream: Any) -> Iterator[str]:
    """The one reader of import input (API body, multipart file, file, stdin): UTF-8 lines.

    `stream` is binary with `readline(size)`. A leading BOM is dropped; bad UTF-8, a line
    over the line limit or input over the upload limit fail with the line's number, so the
    command line and the API report the same error for the same bytes.
    """
    max_upload, max_line = limits()
    total = 0
    number = 0
    while raw := stream.readline(max_line + 1):
        number += 1
        total += len(raw)
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise ImportFailed(number, f"line is longer than {max_line:,} bytes")
        if total > max_upload:
            raise ImportFailed(number, f"input is larger than {max_upload:,} bytes")
        if number == 1 and raw.startswith(_BOM):
            raw = raw[len(_BOM) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise ImportFailed(
                number, f"not valid UTF-8 (byte {exc.start + 1} of the line)"
            ) from None


def _too_deep(obj: Any) -> bool:
    """True when lists/objects nest deeper than MAX_DEPTH (iterative: no recursion limit)."""
    todo = [(obj, 1)]
    while todo:
        value, depth = todo.pop()
        if depth > MAX_DEPTH:
            return True
        if isinstance(value, dict):
            todo.extend((item, depth + 1) for item in value.values())
        elif isinstance(value, list):
            todo.extend((item, depth + 1) for item in value)
    return False


def load_json(text: str, **options: Any) -> Any:
    """json.loads that refuses, with a readable ValueError, what would fail later as a 500:
    NUL escapes, nesting deeper than MAX_DEPTH, lone surrogate escapes (PostgreSQL can store
    none of them, and deep nesting exhausts the stack).

    Without `options` it parses with orjson (4x faster) and keeps that result only where it
    must equal json.loads's; anything else goes through json.loads, which words the errors."""
    if "\\u0000" in text:
        raise ValueError("NUL character (\\u0000) is not allowed")
    if not options:
        obj = _load_fast(text)
        if obj is not _USE_REFERENCE:
            return obj
    try:
        obj = json.loads(text, **options)
    except RecursionError:
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        raise ValueError(f"invalid JSON: {getattr(exc, 'msg', exc)}") from None
    if text.count("[") + text.count("{") > MAX_DEPTH and _too_deep(obj):
        raise ValueError(f"JSON nested deeper than {MAX_DEPTH} levels")
    if _SURROGATE_ESCAPE.search(text):
        try:  # a paired escape decodes to one code point; a lone one cannot be stored
            json.dumps(obj, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError("lone UTF-16 surrogate escape (\\ud800-\\udfff)") from None
    return obj


_USE_REFERENCE = object()
#: orjson reads an integer outside [-2**63, 2**64) as a float, which is at least this large.
_ORJSON_BIG_INT = float(2**63)


def _load_fast(text: str) -> Any:
    """orjson's parse of `text`, or _USE_REFERENCE where json.loads could answer otherwise:
    what orjson refuses (NaN, numbers past a double, lone surrogates: json.loads accepts some
    and words the refusals), nesting past MAX_DEPTH, and floats that may be big integers."""
    try:
        obj = orjson.loads(text)
    except orjson.JSONDecodeError:
        return _USE_REFERENCE
    todo = [([obj], 0)]
    while todo:
        container, depth = todo.pop()
        values = container.values() if isinstance(container, dict) else container
        if depth >= MAX_DEPTH and values:
            return _USE_REFERENCE
        kinds = set(map(type, values))  # one C pass; most containers hold only scalars
        if float in kinds and max(abs(v) for v in values if type(v) is float) >= _ORJSON_BIG_INT:
            return _USE_REFERENCE
        if dict in kinds or list in kinds:
            todo.extend((v, depth + 1) for v in values if type(v) in (dict, list))
    return obj


def iter_json_lines(stream: IO[str] | Iterable[str]) -> Iterator[tuple[int, dict, str]]:
    """(line number, parsed object, raw line without its newline) for every non-blank line."""
    for number, raw in enumerate(stream, 1):
        if isinstance(raw, bytes):
            raw = raw.decode("utf-8")
        line = raw.rstrip("\r\n")
        if not line or line.isspace():  # no stripped copy of every ~3 kB line
            continue
        try:
            obj = load_json(line)
        except ValueError as exc:
            raise ImportFailed(number, str(exc)) from None
        if not isinstance(obj, dict):
            raise ImportFailed(number, f"expected a JSON object, got {_type_name(obj)}")
        yield number, obj, line


def batched(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def jsonl_blocks(lines: Iterable[str], block_chars: int = 64 * 1024) -> Iterator[tuple[str, int]]:
    """JSONL lines (without newlines) joined into blocks of about `block_chars` characters,
    every line ending in a newline, with the number of lines in each: a writer pays one
    write (or encode) per block, not two per line, and memory stays one block."""
    buffer: list[str] = []
    size = 0
    for line in lines:
        buffer.append(line)
        size += len(line)
        if size >= block_chars:
            yield "\n".join(buffer) + "\n", len(buffer)
            buffer, size = [], 0
    if buffer:
        yield "\n".join(buffer) + "\n", len(buffer)


# --- field validation -----------------------------------------------------------------------


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


_MISSING = object()


def require(obj: dict, key: str, kind: str, line: int, where: str = "") -> Any:
    """obj[key], which must be present and of `kind` (see `check_type`)."""
    value = obj.get(key, _MISSING)
    if value is _MISSING:
        raise ImportFailed(line, f'missing field "{where}{key}"')
    return check_type(value, kind, line, f"{where}{key}")


def optional(obj: dict, key: str, kind: str, line: int, where: str = "") -> Any:
    """obj[key] if present and not null (then of `kind`), else None."""
    value = obj.get(key)
    if value is None:
        return None
    return check_type(value, kind, line, f"{where}{key}")


def check_type(value: Any, kind: str, line: int, name: str) -> Any:
    """kind: str | int | number | bool | list | dict | str_list | str_or_int."""
    ok: bool
    if kind == "str":
        ok = isinstance(value, str)
    elif kind == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
        if ok:
            check_range(value, line, name, -(2**63), 2**63 - 1)  # PostgreSQL's bigint
    elif kind == "number":
        ok = isinstance(value, int | float) and not isinstance(value, bool)
        if ok and not math.isfinite(value):
            raise ImportFailed(line, f'field "{name}" must be a finite number')
    elif kind == "bool":
        ok = isinstance(value, bool)
    elif kind == "list":
        ok = isinstance(value, list)
    elif kind == "dict":
        ok = isinstance(value, dict)
    elif kind == "str_list":
        # map() keeps the per-item check in C: a sample has ~15 steps, an import millions.
        ok = isinstance(value, list) and all(map(isinstance, value, repeat(str)))
        if not ok:
            raise ImportFailed(line, f'field "{name}" must be a list of strings')
    elif kind == "str_or_int":
        ok = isinstance(value, str | int) and not isinstance(value, bool)
    else:  # pragma: no cover - programming error
        raise ValueError(kind)
    if not ok:
        want = {"str_or_int": "string", "number": "number", "int": "integer"}.get(kind, kind)
        want = {"str": "string", "bool": "boolean", "list": "array", "dict": "object"}.get(
            want, want
        )
        raise ImportFailed(line, f'field "{name}" must be a {want}, not {_type_name(value)}')
    return value


def check_range(value: int, line: int, name: str, low: int, high: int) -> int:
    """`value` if low <= value <= high (the column's range), else a line-numbered failure."""
    if not low <= value <= high:
        shown = str(value) if abs(value) < 10**30 else "a longer number"  # keep messages short
        raise ImportFailed(line, f'field "{name}" must be between {low} and {high}, got {shown}')
    return value


def check_steps(steps: list[str], line: int, name: str = "steps") -> list[str]:
    """Steps within STEPWISE_MAX_STEPS and STEPWISE_MAX_STEP_CHARS each (labelers read them)."""
    check_step_count(len(steps), line, name)
    check_text_lengths(steps, line, name, settings.STEPWISE_MAX_STEP_CHARS)
    return steps


def check_step_count(count: int, line: int, name: str) -> None:
    if count > (most := settings.STEPWISE_MAX_STEPS):
        raise ImportFailed(line, f'field "{name}" has {count} steps, more than {most}')


def check_text_lengths(texts: Sequence[str], line: int, name: str, longest: int) -> None:
    if max(map(len, texts), default=0) <= longest:  # the common case, without a Python loop
        return
    for index, text in enumerate(texts):
        if len(text) > longest:
            raise ImportFailed(
                line, f'field "{name}[{index}]" has {len(text):,} characters, more than {longest:,}'
            )


# --- grading with a bounded memo ------------------------------------------------------------


class GradingMemo:
    """Grades (given, ground truth) pairs in batches, each distinct pair once.

    Pools of ~1000 samples per problem repeat the same few answers, so a memo removes most
    grading work; it is cleared when it grows past `max_size` to keep memory flat.
    """

    def __init__(self, processes: int | None = None, max_size: int = 200_000) -> None:
        self.processes = processes
        self.max_size = max_size
        self.memo: dict[tuple[str, str], bool] = {}
        self.graded = 0

    def grade(self, pairs: Sequence[tuple[str, str]]) -> list[bool]:
        from selector.grading import grade_many

        memo = self.memo
        todo = list({pair for pair in pairs if pair not in memo})
        if todo:
            if len(memo) + len(todo) > self.max_size:
                memo.clear()
            results = grade_many(todo, processes=self.processes)
            memo.update(zip(todo, results, strict=True))
            self.graded += len(todo)
        return [memo[pair] for pair in pairs]


# --- writing rows -------------------------------------------------------------------------


def is_postgres() -> bool:
    return connection.vendor == "postgresql"


def analyze_on_commit(*models: Any) -> None:
    """VACUUM (ANALYZE) `models`' tables once the import commits: fresh planner statistics and
    a fresh visibility map.

    Right after a bulk load there are no statistics, and the planner picks a nested loop that
    rescans the campaign's samples once per problem: `select` over 10⁶ freshly imported
    samples took 48.8 s, and 2.0 s after one ANALYZE (measured in the performance issue). The
    visibility map lets the pool query read the covering index alone (an index-only scan):
    without it every row is fetched from the heap, about 3× slower at 12M samples. VACUUM
    skips pages already all-visible, so its cost follows the size of the import."""
    if not is_postgres():
        return
    tables = ", ".join(connection.ops.quote_name(m._meta.db_table) for m in models)

    def analyze() -> None:
        # VACUUM cannot run in a transaction: a caller's outer atomic block gets ANALYZE alone.
        command = "ANALYZE" if connection.in_atomic_block else "VACUUM (ANALYZE)"
        with connection.cursor() as cursor:
            cursor.execute(f"{command} {tables}")

    transaction.on_commit(analyze)


def _copy_text(value: str) -> bytes:
    data = value.encode("utf-8")
    if b"\\" in data or b"\t" in data or b"\n" in data or b"\r" in data:
        data = data.replace(b"\\", b"\\\\").replace(b"\t", b"\\t")
        data = data.replace(b"\n", b"\\n").replace(b"\r", b"\\r")
    return data


#: COPY text format of each Python type; bytes are taken as already escaped (`copy_json`).
_COPY_FIELD: dict[type, Callable[[Any], bytes]] = {
    type(None): lambda value: b"\\N",
    bool: lambda value: b"t" if value else b"f",
    int: lambda value: str(value).encode("ascii"),
    float: lambda value: repr(value).encode("ascii"),  # finite: the importers refuse the rest
    str: _copy_text,
    bytes: lambda value: value,
    datetime: lambda value: value.isoformat().encode("ascii"),
}


def copy_json(value: Any) -> bytes:
    """`value` as JSON, escaped for a COPY text field. orjson writes no raw tab, newline or
    carriage return (JSON escapes them), so doubling backslashes is the whole escape."""
    return orjson.dumps(value).replace(b"\\", b"\\\\")


class CopyPayload:
    """Rows in COPY's text format, gathered into one buffer for one write per batch (instead
    of a call into psycopg, and its type dispatch, for every row)."""

    def __init__(self) -> None:
        self.buffer = bytearray()
        self.rows = 0

    def add(self, row: Sequence[Any]) -> None:
        field = _COPY_FIELD
        self.buffer += b"\t".join([field[type(value)](value) for value in row])
        self.buffer += b"\n"
        self.rows += 1

    @staticmethod
    def encode(value: Any) -> bytes:
        """One value in COPY text, subclasses too (a TextChoices member is a str): what `add`
        writes as is. TypeError for a type COPY text cannot carry here (bytes are taken as
        escaped already, so they are no value to encode)."""
        encode = _COPY_FIELD.get(type(value))
        if encode is None or type(value) is bytes:
            kind = next(
                (k for k in (bool, int, float, str, datetime) if isinstance(value, k)), None
            )
            if kind is None:
                raise TypeError(f"COPY text cannot carry a {type(value).__name__}")
            encode = _COPY_FIELD[kind]
        return encode(value)


class BackgroundCopyWriter:
    """Writes batches with COPY on a helper thread, so PostgreSQL stores batch k while Python
    parses batch k+1 (the server and the parser then run on two cores at once).

    It drives the same psycopg connection, hence the same transaction, as the caller; the
    caller must not use the database between `submit` and `wait`. Before each COPY it checks
    the batch's ids against the table (earlier batches included) and raises ImportFailed for
    the first clash, so duplicates are named by line without holding every id in memory.
    """

    def __init__(self, table: str, columns: Sequence[str], key_sql: str, key_params: list) -> None:
        from concurrent.futures import ThreadPoolExecutor

        connection.ensure_connection()
        self.raw = connection.connection  # the psycopg Connection inside Django's transaction
        self.copy_sql = copy_statement(table, columns)
        self.key_sql = key_sql
        self.key_params = key_params
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="copy-writer")
        self.pending = None
        self.written = 0
        with self.raw.cursor() as cursor:
            use_lz4_toast(cursor)

    def _write(self, payload: CopyPayload, keys: dict[str, int]) -> int:
        with self.raw.cursor() as cursor:
            cursor.execute(self.key_sql, [*self.key_params, list(keys)])
            clash = [keys[row[0]] for row in cursor.fetchall()]
            if clash:
                line = min(clash)
                key = next(k for k, v in keys.items() if v == line)
                raise ImportFailed(line, f'duplicate id "{key}"')
            with cursor.copy(self.copy_sql) as copy:
                copy.write(payload.buffer)
        return payload.rows

    def submit(self, payload: CopyPayload, keys: dict[str, int]) -> None:
        """Queue one batch (`keys`: its ids → line numbers); waits for the previous one."""
        self.wait()
        self.pending = self.pool.submit(self._write, payload, keys)

    def wait(self) -> int:
        """Wait for the batch in flight; re-raise its failure. Returns rows written so far."""
        if self.pending is not None:
            pending, self.pending = self.pending, None
            self.written += pending.result()
        return self.written

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self.pool.shutdown(wait=True)


def copy_statement(table: str, columns: Sequence[str]) -> str:
    quote = connection.ops.quote_name
    return f"COPY {quote(table)} ({', '.join(quote(c) for c in columns)}) FROM STDIN"


def use_lz4_toast(cursor: Any) -> None:
    """TOAST new values with lz4 for the rest of the transaction, where the server has it:
    it compresses the steps several times faster than the default pglz."""
    cursor.execute(
        "SELECT 'lz4' = ANY(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'"
    )
    row = cursor.fetchone()
    if row and row[0]:
        cursor.execute("SET LOCAL default_toast_compression = 'lz4'")
