"""Extra PostgreSQL connections that read exactly what this transaction reads.

One PostgreSQL backend runs a query on one core (and PostgreSQL 15 does not parallelize the
aggregates the pool load uses), so a read split across connections finishes sooner on a
machine with cores to spare. Each extra connection imports this transaction's snapshot
(`pg_export_snapshot`, as `pg_dump --jobs` does), so together they see one consistent state
of the database — except this transaction's own uncommitted writes, which no other backend
can see: a transaction that has written anything gets no readers and reads alone (so does
`open_generation`, which locks its campaign row first: `select --dry-run` shares).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection

T = TypeVar("T")
R = TypeVar("R")
SNAPSHOT_ID = re.compile(r"[0-9A-F]+-[0-9A-F]+(-[0-9A-F]+)?")


def _can_share(cursor: Any) -> bool:
    """Inside a transaction (a snapshot to export) that has no transaction id yet, so has
    written nothing. A row lock takes an id too, and PostgreSQL 15 tells neither apart
    exactly (pg_stat_xact_user_tables also counts writes not yet flushed from earlier
    transactions): a transaction that has locked rows reads alone as well."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return False
    cursor.execute("SELECT txid_current_if_assigned() IS NULL")
    return bool(cursor.fetchone()[0])


@contextmanager
def snapshot_readers(cursor: Any, wanted: int) -> Iterator[list[Any]]:
    """Up to `wanted` raw psycopg cursors on new connections sharing this transaction's
    snapshot (read only), or none where that is impossible or not worth it; closed after."""
    import psycopg

    count = min(wanted, settings.STEPWISE_POOL_READERS)
    if count < 2 or not _can_share(cursor):
        yield []
        return
    cursor.execute("SELECT pg_export_snapshot()")
    snapshot = cursor.fetchone()[0]
    if not SNAPSHOT_ID.fullmatch(snapshot):
        raise ValueError(f"unexpected snapshot id {snapshot!r}")
    params = connection.get_connection_params()
    opened: list[Any] = []
    try:
        for _ in range(count):
            reader = psycopg.connect(**params, autocommit=True)
            opened.append(reader)
            reader.execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            reader.execute(f"SET TRANSACTION SNAPSHOT '{snapshot}'")  # id checked above
        yield [reader.cursor() for reader in opened]
    finally:
        for reader in opened:
            reader.close()


def map_in_order(
    cursors: Sequence[Any], work: Callable[[Any, T], R], items: Sequence[T]
) -> list[R]:
    """`work(cursor, item)` for every item, the items dealt round-robin to the cursors (one
    thread each), results in the items' order."""
    if len(cursors) == 1:
        return [work(cursors[0], item) for item in items]

    def run(lane: int) -> list[R]:
        return [work(cursors[lane], item) for item in items[lane :: len(cursors)]]

    with ThreadPoolExecutor(max_workers=len(cursors), thread_name_prefix="pool-reader") as ex:
        lanes = list(ex.map(run, range(len(cursors))))
    results: list[R] = [None] * len(items)  # type: ignore[list-item]
    for lane, values in enumerate(lanes):
        results[lane :: len(cursors)] = values
    return results
