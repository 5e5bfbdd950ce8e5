"""The statements inventory sends as SQL rather than through the ORM, each kept for a measured reason.

- `rows_copy`: many new rows (a new host, a host whose every device changed, their ~500 change rows)
  with COPY, `bulk_create` beside it as the reference: a 480-device host's device rows took
  bulk_create ~110 ms of CPU and COPY ~7 ms, measured side by side in process.
- `stored_fingerprints`: (key, id, fingerprint) of every row of a host in one UNION ALL, one
  `values_list` per table (`services._stored_fingerprints_orm`) beside it as the reference.

tests/inventory/test_statements.py checks each against its reference.
"""
from __future__ import annotations

import json
from functools import lru_cache

import orjson
from django.db import connection, models

from .rows import DEVICES, KEYED_TABLES, PASID_USERS

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


@lru_cache(maxsize=1)
def _stored_sql() -> tuple[str, frozenset]:
    """The UNION ALL, and the tables whose key is an integer (it comes back as text)."""
    q = connection.ops.quote_name
    parts = []
    for table in KEYED_TABLES:
        meta = table.model._meta
        key = meta.get_field(table.key_column).column
        link = q("group_id") if table is DEVICES else "NULL"
        parts.append(f"SELECT '{table.name}', {q('id')}, CAST({q(key)} AS TEXT), {q('fingerprint')}, {link} "
                     f"FROM {q(meta.db_table)} WHERE {q('host_id')} = %s")
    # PASID users have no key or fingerprint: their three fields ride in the same three columns.
    meta = PASID_USERS.model._meta
    device, pid, source = (q(meta.get_field(f.name).column) for f in PASID_USERS.fields)
    parts.append(f"SELECT '{PASID_USERS.name}', {q('id')}, {device}, {source}, {pid} FROM {q(meta.db_table)} WHERE {q('host_id')} = %s")
    int_keyed = frozenset(t.name for t in KEYED_TABLES if isinstance(t.model._meta.get_field(t.key_column), models.IntegerField))
    return " UNION ALL ".join(parts), int_keyed


def stored_fingerprints(host_id: int) -> dict:
    """table name -> {key: (id, fingerprint, group_id)} of the host's rows (group_id: the devices' link to their
    group row, None elsewhere), and `pasid_users` -> its rows oldest first; one statement."""
    # Measured for a 480-device host: 3.2 ms (median) for this statement, 11.1 ms for the seven values_list.
    out: dict = {table.name: {} for table in KEYED_TABLES}
    pasid: list[tuple[int, dict]] = []
    sql, int_keyed = _stored_sql()
    with connection.cursor() as cursor:
        cursor.execute(sql, [host_id] * (len(KEYED_TABLES) + 1))
        for name, pk, key, fingerprint, link in cursor.fetchall():
            if name == PASID_USERS.name:
                pasid.append((pk, dict(zip(PASID_USERS.keys, (key, link, fingerprint)))))
            else:
                out[name][int(key) if name in int_keyed else key] = (pk, fingerprint, link)
    out[PASID_USERS.name] = [row for _, row in sorted(pasid, key=lambda item: item[0])]
    return out
