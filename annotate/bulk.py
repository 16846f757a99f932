"""Many rows that differ in a few columns, inserted without a model instance each.

Opening a generation at PRM800K scale writes ~10⁵ Selection and Assignment rows: through
`bulk_create` that took 12 s at 12M samples, most of it building model instances and their
INSERT SQL. Here the fixed columns are prepared once from a template instance and each row
sends only its own values, in one COPY on PostgreSQL (elsewhere `bulk_create`, same rows).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from django.db import connection, models

from annotate.io.base import CopyPayload, copy_statement


def insert_like(
    template: models.Model, varying: Sequence[str], rows: Iterable[Sequence[Any]]
) -> int:
    """Insert one row per item of `rows`: `template`'s values (defaults and `auto_now_add`
    as a save would set them), except the `varying` fields (attnames), taken from the item
    in that order. Returns the number of rows written."""
    model = type(template)
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    names = {f.attname for f in fields}
    if unknown := set(varying) - names:
        raise ValueError(f"not columns of {model.__name__}: {sorted(unknown)}")
    if connection.vendor != "postgresql":
        base = {f.attname: getattr(template, f.attname) for f in fields if f.attname not in varying}
        objects = [model(**base, **dict(zip(varying, row, strict=True))) for row in rows]
        return len(model.objects.bulk_create(objects, batch_size=2000))
    prepared = {
        f.attname: f.get_db_prep_save(f.pre_save(template, add=True), connection) for f in fields
    }
    sql = copy_statement(model._meta.db_table, [f.column for f in fields])
    by_name = {f.attname: f for f in fields}
    positions = [varying.index(f.attname) if f.attname in varying else None for f in fields]
    try:
        fixed = [CopyPayload.encode(prepared[f.attname]) for f in fields]
    except TypeError:
        fixed = None
    if fixed is None or not all(isinstance(by_name[name], _PLAIN_FIELDS) for name in varying):
        return _copy_rows(sql, fields, prepared, by_name, varying, positions, rows)
    # Rows built as COPY text here, a buffer per write: psycopg's per-row adaptation and
    # Django's get_db_prep_save per value were 2.3 s of 3.4 under cProfile for 156,800 rows
    # (timed without it: 2.1 s, now 1.1 s).
    encode = CopyPayload.encode
    written = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        payload = CopyPayload()
        for row in rows:
            values = [
                encode(
                    v if type(v) in _PLAIN_TYPES else by_name[name].get_db_prep_save(v, connection)
                )
                for name, v in zip(varying, row, strict=True)
            ]
            payload.add([fixed[i] if at is None else values[at] for i, at in enumerate(positions)])
            if payload.rows == _ROWS_PER_WRITE:
                written += _flush(copy, payload)
                payload = CopyPayload()
        written += _flush(copy, payload)
    return written


#: Fields whose db value is the Python value itself when it is of one of `_PLAIN_TYPES`.
_PLAIN_FIELDS = (
    models.IntegerField,
    models.FloatField,
    models.BooleanField,
    models.CharField,
    models.TextField,
    models.ForeignKey,
)
_PLAIN_TYPES = (int, float, bool, str)
_ROWS_PER_WRITE = 10_000


def _flush(copy: Any, payload: CopyPayload) -> int:
    copy.write(payload.buffer)
    return payload.rows


def _copy_rows(
    sql: str,
    fields: list,
    prepared: dict[str, Any],
    by_name: dict[str, Any],
    varying: Sequence[str],
    positions: list[int | None],
    rows: Iterable[Sequence[Any]],
) -> int:
    """The general path: psycopg adapts every value (a fixed value COPY text cannot carry)."""
    written = 0
    with connection.cursor() as cursor, cursor.cursor.copy(sql) as copy:
        for row in rows:
            values = [
                by_name[name].get_db_prep_save(v, connection)
                for name, v in zip(varying, row, strict=True)
            ]
            copy.write_row(
                [
                    prepared[f.attname] if at is None else values[at]
                    for f, at in zip(fields, positions, strict=True)
                ]
            )
            written += 1
    return written
