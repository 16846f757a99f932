"""Extra PostgreSQL connections that read exactly what this transaction reads.

One PostgreSQL backend runs a query on one core (and PostgreSQL 15 does not parallelize the
aggregates the pool load uses), so a read split across connections finishes sooner on a
machine with cores to spare. Each extra connection imports this transaction's snapshot
(`pg_export_snapshot`, as `pg_dump --jobs` does), so together they see one consistent state
of the database — except this transaction's own uncommitted writes, which no other backend
can see: a transaction that has written anything gets no readers and reads alone. One that
has only locked rows shares where its caller says so (`open_generation`, which locks the
campaign row first and checks it came in with nothing written).
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


def has_written_nothing() -> bool:
    """PostgreSQL: this transaction has no transaction id yet, so has neither written nor
    locked rows. False elsewhere (no readers there anyway)."""
    if connection.vendor != "postgresql":
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid_current_if_assigned() IS NULL")
        return bool(cursor.fetchone()[0])


def _can_share(locked_only: bool) -> bool:
    """Inside a transaction (a snapshot to export), not in a savepoint (PostgreSQL exports
    none from a subtransaction), that has written nothing: no transaction id yet, or only row
    locks by the caller's word (`locked_only`; PostgreSQL 15 tells locks from writes apart
    nowhere exactly: pg_stat_xact_user_tables also counts earlier transactions' unflushed
    writes)."""
    if connection.vendor != "postgresql" or not connection.in_atomic_block:
        return False
    if any(sid is not None for sid in connection.savepoint_ids):
        return False
    return locked_only or has_written_nothing()


@contextmanager
def snapshot_readers(cursor: Any, wanted: int, *, locked_only: bool = False) -> Iterator[list[Any]]:
    """Up to `wanted` raw psycopg cursors on new connections sharing this transaction's
    snapshot (read only), or none where that is impossible or not worth it; closed after.
    `locked_only`: the caller vouches that its transaction has locked rows but written none."""
    import psycopg

    count = min(wanted, settings.STEPWISE_POOL_READERS)
    if count < 2 or not _can_share(locked_only):
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
