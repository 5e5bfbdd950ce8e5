"""Many new rows at once: `bulk_create` (the reference), or COPY on PostgreSQL from COPY_MIN_ROWS rows on.

Kept for the big inserts (a new host, a host whose every device changed, its ~500 change rows):
a 480-device host's device rows took bulk_create ~110 ms of CPU and COPY ~7 ms, measured side by side
in process; tests/inventory/test_copy_rows.py checks both write the same rows.
"""
from __future__ import annotations

import json

import orjson
from django.db import connection, models

# Below this, bulk_create's per-row cost is smaller than COPY's extra statement for the ids.
COPY_MIN_ROWS = 32


def rows_insert(model: type[models.Model], rows: list[dict]) -> list[int]:
    """Insert `rows` (field attname -> value, the same names in every row) into `model`'s table; their ids, in order."""
    if connection.vendor == "postgresql" and len(rows) >= COPY_MIN_ROWS:
        return rows_copy(model, rows)
    return [obj.pk for obj in model.objects.bulk_create([model(**row) for row in rows])]


def _json_text(value) -> str | None:
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits, which json writes and jsonb reads
        return json.dumps(value)


def rows_copy(model: type[models.Model], rows: list[dict]) -> list[int]:
    """What `bulk_create` writes, through COPY (PostgreSQL): ids drawn from the table's sequence first, so callers
    know them in order (devices point at groups by id), JSON columns sent as their text."""
    if not rows:
        return []
    meta, qn = model._meta, connection.ops.quote_name
    names = list(rows[0])
    is_json = [isinstance(meta.get_field(name), models.JSONField) for name in names]
    columns = ", ".join(qn(column) for column in ["id", *(meta.get_field(name).column for name in names)])
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [meta.db_table, len(rows)])
        ids = [pk for (pk,) in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for pk, row in zip(ids, rows):
                copy.write_row([pk, *(_json_text(row[name]) if j else row[name] for name, j in zip(names, is_json))])
    return ids
