"""Writes of the current state: applying a snapshot document to a host.

The apply reads back only (id, key, fingerprint) of the host's rows (on PostgreSQL while it builds
the new rows: one pipelined statement), rewrites the rows whose fingerprint moved, and reads in full
only those (for the before-values of the change facts): a 480-device host whose snapshot changed in
a few devices costs a few small statements.
"""
from __future__ import annotations

import json
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from types import SimpleNamespace

import orjson
import xxhash
from django.db import connection, models, transaction

from agent.snapshot import content_hash as document_hash
from fleet.accounts.receivers import AUDITED_FIELDS

from .diff import snapshot_changes
from .models import Change, Device, Host, PasidUser
from .rows import PASID_FIELDS, TABLES, document_collected_at, host_columns_from_document, iommu_mode, rows_from_document
from .selectors import TABLE_MODELS, host_state_from_rows, rows_by_id

# Up to this many changed rows are updated in place (one UPDATE … FROM VALUES, ids kept); past it,
# deleting and re-inserting them is cheaper. (bulk_update's CASE statements cost more than either.)
UPDATE_IN_PLACE_MAX = 64
# From this many new rows on, COPY beats INSERT … VALUES (PostgreSQL only).
COPY_MIN_ROWS = 32
# Groups first: devices point at group rows by id.
WRITE_ORDER = ("groups", "devices", "units", "vfio_nodes", "holders", "mdevs")
INT_KEYED = frozenset({"groups", "holders"})


def row_fingerprint(row: dict) -> str:
    # Keys in the row builders' order (rows.py; nested dicts in the agent's), not sorted: sorting was 40% of
    # the dump. An order that ever differs only makes an unchanged row look changed and be rewritten once,
    # never a wrong change fact (the diff compares values).
    # xxh3-128, not a cryptographic digest: hashing a 480-device host's ~730 KB of rows took blake2b ~1 ms
    # and takes it ~0.07 ms. Agents are not trusted for other hosts, but a fingerprint only ever compares a
    # host's rows with the same host's earlier ones: an agent able to forge a collision could as well
    # report false values outright.
    try:
        data = orjson.dumps(row)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits: orjson refuses them, json does not
        data = json.dumps(row, default=str).encode()
    return xxhash.xxh3_128_hexdigest(data)


def _pasid_row_sql() -> str:
    """The host's PASID users as one JSON array text per row (they have no key or fingerprint of their own)."""
    qn = connection.ops.quote_name
    build = "json_build_array({})::text" if connection.vendor == "postgresql" else "json_array({})"
    columns = build.format(", ".join(qn(PasidUser._meta.get_field(f).column) for f in PASID_FIELDS))
    return f"SELECT %s, id, {columns}, '', NULL FROM {qn(PasidUser._meta.db_table)} WHERE host_id = %s"


@lru_cache(maxsize=4)
def _stored_sql(vendor: str) -> str:
    parts = []
    qn = connection.ops.quote_name
    for table in WRITE_ORDER:
        model, _ = TABLE_MODELS[table]
        key_column = model._meta.get_field(TABLES[table][1]).column
        link = "group_id" if table == "devices" else "NULL"
        parts.append(f"SELECT %s, id, CAST({qn(key_column)} AS TEXT), fingerprint, {link} "
                     f"FROM {qn(model._meta.db_table)} WHERE host_id = %s")
    parts.append(_pasid_row_sql())
    return " UNION ALL ".join(parts)


def _stored_params(host: Host) -> list:
    return [value for table in (*WRITE_ORDER, "pasid_users") for value in (table, host.pk)]


def _stored_from_rows(rows) -> dict[str, dict]:
    out: dict = {table: {} for table in WRITE_ORDER}
    pasid: list[tuple[int, dict]] = []
    for table, pk, key, fingerprint, link in rows:
        if table == "pasid_users":
            pasid.append((pk, dict(zip(PASID_FIELDS, orjson.loads(key)))))
        else:
            out[table][int(key) if table in INT_KEYED else key] = (pk, fingerprint, link)
    out["pasid_users"] = [row for _, row in sorted(pasid, key=lambda item: item[0])]
    return out


def stored_fingerprints(host: Host) -> dict[str, dict]:
    """table -> {key: (id, fingerprint, group_id)} of the host's rows, in one round trip (UNION ALL of the tables).

    group_id is the device rows' link to their group row (None for the other tables): it is not part
    of a device's fingerprint, which is computed before the groups are written and their ids known.
    `pasid_users` comes along as the list of its rows (PASID_FIELDS), oldest first.
    """
    with connection.cursor() as cursor:
        cursor.execute(_stored_sql(connection.vendor), _stored_params(host))
        return _stored_from_rows(cursor.fetchall())


def _pipeline_supported() -> bool:
    # Pipeline mode needs libpq 14+: psycopg[binary] bundles one, a psycopg built on an older system libpq has none.
    import psycopg

    return psycopg.Pipeline.is_supported()


@contextmanager
def _stored_fingerprints_later(host: Host):
    """Yields a function returning `stored_fingerprints(host)`, read after the lines inside the block.

    On PostgreSQL the statement is sent at once through a psycopg pipeline and its rows are fetched
    when asked for: the server reads the host's ~1,150 rows while the caller builds and fingerprints
    the new ones (in a changed 480-device apply that read took ~1.5 ms of waiting).
    """
    if connection.vendor != "postgresql" or not _pipeline_supported():
        yield lambda: stored_fingerprints(host)
        return
    connection.ensure_connection()
    with connection.wrap_database_errors, connection.connection.pipeline(), connection.cursor() as cursor:
        cursor.execute(_stored_sql(connection.vendor), _stored_params(host))
        yield lambda: _stored_from_rows(cursor.fetchall())


def _update_rows(model, rows: list[tuple[int, dict]], fields: list[str]) -> None:
    """UPDATE several rows, each with its own values, in one statement (PostgreSQL); one UPDATE per row elsewhere."""
    if connection.vendor != "postgresql" or len(rows) == 1:
        for pk, values in rows:
            model.objects.filter(id=pk).update(**{f: values[f] for f in fields})
        return
    meta, qn = model._meta, connection.ops.quote_name
    columns = [meta.get_field(f) for f in fields]
    row_sql = "(" + ", ".join(["%s::bigint"] + [f"%s::{c.db_type(connection)}" for c in columns]) + ")"
    params = []
    for pk, values in rows:
        params.append(pk)
        params.extend(c.get_db_prep_save(values[f], connection) for c, f in zip(columns, fields))
    assignments = ", ".join(f"{qn(c.column)} = v.{qn(c.column)}" for c in columns)
    names = ", ".join(["id"] + [qn(c.column) for c in columns])
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {qn(meta.db_table)} AS t SET {assignments} FROM (VALUES {', '.join([row_sql] * len(rows))}) AS v({names}) WHERE t.id = v.id",
            params,
        )


def _json_text(value):
    if value is None:
        return None
    try:
        return orjson.dumps(value).decode()
    except (TypeError, orjson.JSONEncodeError):
        return json.dumps(value)


def _copy_insert(model, fields: list[str], rows: list[list]) -> list[int]:
    """Insert `rows` (values of `fields`, JSON columns as Python values) with COPY (PostgreSQL); returns their ids.

    Ids are drawn from the table's sequence first, so devices can point at groups and callers know them.
    """
    meta, qn = model._meta, connection.ops.quote_name
    is_json = [isinstance(meta.get_field(f), models.JSONField) for f in fields]
    names = ", ".join(qn(n) for n in ["id", *[meta.get_field(f).column for f in fields]])
    with connection.cursor() as cursor:
        cursor.execute("SELECT nextval(pg_get_serial_sequence(%s, 'id')) FROM generate_series(1, %s)", [meta.db_table, len(rows)])
        ids = [pk for (pk,) in cursor.fetchall()]
        with cursor.cursor.copy(f"COPY {qn(meta.db_table)} ({names}) FROM STDIN") as copy:
            for pk, values in zip(ids, rows):
                copy.write_row([pk, *[_json_text(v) if j else v for v, j in zip(values, is_json)]])
    return ids


def _values_insert(model, fields: list[str], rows: list[list]) -> list[int]:
    """Insert a few `rows` with one INSERT ... VALUES ... RETURNING id (PostgreSQL); returns their ids in row order.

    What bulk_create sends, without its per-call query building (~0.35 ms for a realistic change's 8 rows).
    """
    meta, qn = model._meta, connection.ops.quote_name
    is_json = [isinstance(meta.get_field(f), models.JSONField) for f in fields]
    names = ", ".join(qn(meta.get_field(f).column) for f in fields)
    row = "(" + ", ".join("%s::jsonb" if j else "%s" for j in is_json) + ")"
    params = [_json_text(v) if j else v for values in rows for v, j in zip(values, is_json)]
    with connection.cursor() as cursor:
        cursor.execute(f"INSERT INTO {qn(meta.db_table)} ({names}) VALUES {', '.join([row] * len(rows))} RETURNING {qn('id')}", params)
        return [pk for (pk,) in cursor.fetchall()]


def _copy_rows(model, host: Host, rows: list[dict], fields, fingerprints: list[str]) -> list[int]:
    """Insert many topology rows of `host` with COPY (PostgreSQL)."""
    return _copy_insert(model, ["host", "fingerprint", *fields],
                        [[host.pk, fingerprint, *[row[f] for f in fields]] for row, fingerprint in zip(rows, fingerprints)])


def _delete_rows(model, ids: list[int]) -> None:
    """DELETE by id in one statement. `QuerySet.delete()` would first load every row as a model instance
    (a post_delete receiver exists, fleet.accounts' audit log, though topology rows are not audited):
    34 ms for 480 devices. Device.group is SET_NULL in Django only; the apply rewrites the group_id of
    every device whose group left before it commits (FK constraints are deferred)."""
    qn = connection.ops.quote_name
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 500):  # SQLite's bound-parameter limit
            chunk = ids[start:start + 500]
            cursor.execute(f"DELETE FROM {qn(model._meta.db_table)} WHERE id IN ({', '.join(['%s'] * len(chunk))})", chunk)


def _insert_changes(changes: list[Change]) -> list[Change]:
    """Write the Change rows (COPY when many: an every-device change writes ~500 rows; bulk_create took ~33 ms)."""
    if connection.vendor != "postgresql" or not changes:
        return Change.objects.bulk_create(changes)
    fields = ["host", "snapshot_id", "at", "kind", "subject", "before", "after"]
    rows = [[c.host_id, c.snapshot_id, c.at, c.kind, c.subject, c.before, c.after] for c in changes]
    ids = _copy_insert(Change, fields, rows) if len(changes) >= COPY_MIN_ROWS else _values_insert(Change, fields, rows)
    for change, pk in zip(changes, ids):
        change.pk = pk
        change._state.adding, change._state.db = False, connection.alias
    return changes


class _TableWrite:
    """One table's rows brought from the stored state to `new`; keeps the before-rows the diff needs."""

    def __init__(self, host: Host, table: str, new: dict, stored: dict, fingerprints: dict):
        self.model, self.fields = TABLE_MODELS[table]
        self.key = TABLES[table][1]
        self.host, self.new, self.stored, self.fingerprints = host, new, stored, fingerprints
        self.removed = [k for k in stored if k not in new]
        # A device whose group row was replaced keeps its fingerprint but must point at the new row.
        self.changed = [k for k, fp in fingerprints.items()
                        if k in stored and (stored[k][1] != fp or stored[k][2] != new[k].get("group_id"))]
        self.added = [k for k in new if k not in stored]
        self.ids = {k: stored_row[0] for k, stored_row in stored.items() if k in new}
        touched = [stored[k][0] for k in self.removed + self.changed]
        self.before = {row[self.key]: row for row in rows_by_id(self.model, self.fields, touched)} if touched else {}

    def touched_rows(self) -> tuple[dict, dict]:
        """(before, after) of the rows that differ; untouched rows are equal on both sides and change nothing."""
        return self.before, {k: self.new[k] for k in self.changed + self.added}

    def _instance(self, k, pk=None):
        return self.model(id=pk, host_id=self.host.pk, fingerprint=self.fingerprints[k], **self.new[k])

    def write(self) -> None:
        replace = self.changed if len(self.changed) > UPDATE_IN_PLACE_MAX else []
        gone = [self.stored[k][0] for k in self.removed + replace]
        if gone:
            _delete_rows(self.model, gone)
        if self.changed and not replace:
            differing = sorted({f for k in self.changed for f in self.fields if self.before[k].get(f) != self.new[k][f]} - {self.key})
            rows = [(self.stored[k][0], {**self.new[k], "fingerprint": self.fingerprints[k]}) for k in self.changed]
            _update_rows(self.model, rows, [*differing, "fingerprint"])
        keys = self.added + replace
        if keys:
            if connection.vendor == "postgresql" and len(keys) >= COPY_MIN_ROWS:
                ids = _copy_rows(self.model, self.host, [self.new[k] for k in keys], self.fields, [self.fingerprints[k] for k in keys])
            else:
                ids = [obj.pk for obj in self.model.objects.bulk_create([self._instance(k) for k in keys])]
            self.ids.update(zip(keys, ids))


def _write_pasid_users(host: Host, new: list[dict], old: list[dict]) -> list[dict]:
    ordered = lambda rows: sorted((r["device_bdf"] or "", r["pid"] or 0, r["source"]) for r in rows)  # noqa: E731
    if ordered(old) != ordered(new):
        PasidUser.objects.filter(host=host).delete()
        PasidUser.objects.bulk_create([PasidUser(host=host, **row) for row in new])
    return old


def _host_columns(host: Host, document: dict, new_rows: dict, *, at: datetime, snapshot_id, seq, digest: str) -> dict:
    columns = host_columns_from_document(document)
    groups = list(new_rows["groups"].values())
    columns.update(
        device_count=len(new_rows["devices"]),
        group_count=len(groups),
        assigned_count=sum(1 for row in new_rows["devices"].values() if row["owner_kind"] == Device.OwnerKind.USERSPACE),
        iommu_mode=iommu_mode(groups, columns["iommu_enabled"]),
        applied_at=at,
        applied_snapshot_id=snapshot_id,
        content_hash=digest,
        collected_at=document_collected_at(document),
        stale=False,
    )
    if seq:
        columns["applied_seq"] = seq
    if host.enrollment == Host.Enrollment.PENDING:
        columns["enrollment"] = Host.Enrollment.ACTIVE
    machine_id = (document.get("host") or {}).get("machine_id")
    if not host.machine_id and machine_id:
        columns["machine_id"] = machine_id
    if host.last_seen is None or host.last_seen < at:
        columns["last_seen"] = at
    return columns


# Host columns whose change the audit log records (its receivers listen to save()).
AUDITED_HOST_COLUMNS = frozenset(AUDITED_FIELDS["inventory.host"])


@lru_cache(maxsize=64)
def _host_update_sql(vendor: str, names: tuple[str, ...]) -> str:
    qn = connection.ops.quote_name
    assignments = ", ".join(f"{qn(Host._meta.get_field(name).column)} = %s" for name in names)
    return f"UPDATE {qn(Host._meta.db_table)} SET {assignments} WHERE {qn('id')} = %s"


def _host_update(host: Host, columns: dict) -> None:
    """Write `columns` to the host row and the instance: `save(update_fields=…)`'s statement and values.

    Built once per set of columns instead of by the ORM on every apply (~0.5 ms of a changed
    480-device one); save() itself still runs when an audited column moves (enrollment on the
    first snapshot), so its signal reaches the audit log.
    """
    for name, value in columns.items():
        setattr(host, name, value)
    names = tuple(columns)
    if AUDITED_HOST_COLUMNS & columns.keys():
        host.save(update_fields=list(names))
        return
    params = [Host._meta.get_field(name).get_db_prep_save(columns[name], connection) for name in names]
    with connection.cursor() as cursor:
        cursor.execute(_host_update_sql(connection.vendor, names), [*params, host.pk])


@dataclass(frozen=True)
class AppliedDocument:
    """What an apply wrote: its Change rows, and the host's new current-state rows (`rows_from_document`)."""

    changes: list[Change]
    rows: dict

    def state(self, host: Host) -> dict:
        """The host's state as `selectors.host_state` would read it back, without reading it (read-only)."""
        return host_state_from_rows(host, self.rows)


def host_apply_snapshot(
    *, host: Host, document: dict, snapshot_id: int | None, seq: int | None, at: datetime, content_hash: str | None = None
) -> list[Change]:
    """Make `document` the host's current state and record what changed; returns the Change rows written."""
    return host_apply_document(host=host, document=document, snapshot_id=snapshot_id, seq=seq, at=at, content_hash=content_hash).changes


@transaction.atomic(savepoint=False)
def host_apply_document(
    *, host: Host, document: dict, snapshot_id: int | None, seq: int | None, at: datetime, content_hash: str | None = None
) -> AppliedDocument:
    """Make `document` the host's current state and record what changed.

    The host's first snapshot records one `host_enrolled` change instead of a change per device.
    `content_hash` is the document's `agent.snapshot.content_hash` when the caller has it already.
    """
    first = host.applied_at is None
    with _stored_fingerprints_later(host) as stored_now:
        new_rows = rows_from_document(document)
        # Device rows are fingerprinted with group_id still None: the group rows' ids are known only
        # once they are written, and the link is compared on its own (_TableWrite).
        fingerprints = {table: {k: row_fingerprint(row) for k, row in new_rows[table].items()} for table in WRITE_ORDER}
        stored = stored_now()
    writes = {}
    for table in WRITE_ORDER:
        if table == "devices":
            group_ids = writes["groups"].ids
            for row in new_rows["devices"].values():
                row["group_id"] = group_ids.get(row["group_number"])
        writes[table] = _TableWrite(host, table, new_rows[table], stored[table], fingerprints[table])
        writes[table].write()
    old_rows = {table: write.touched_rows()[0] for table, write in writes.items()}
    new_touched = {table: write.touched_rows()[1] for table, write in writes.items()}
    old_rows["pasid_users"] = _write_pasid_users(host, new_rows["pasid_users"], stored["pasid_users"])
    new_touched["pasid_users"] = new_rows["pasid_users"]

    columns = _host_columns(host, document, new_rows, at=at, snapshot_id=snapshot_id, seq=seq, digest=content_hash or document_hash(document))
    if first:
        facts = [{"kind": Change.Kind.HOST_ENROLLED, "subject": host.hostname[:256], "before": None,
                  "after": {"devices": columns["device_count"], "groups": columns["group_count"]}}]
    else:
        # Both sides go through the same row mapping, so only real differences show; and only the rows whose
        # fingerprint moved are compared (the others are equal on both sides).
        new_host = SimpleNamespace(**{**host.__dict__, **columns})
        facts = snapshot_changes(host_state_from_rows(host, old_rows), host_state_from_rows(new_host, new_touched))
    _host_update(host, columns)
    changes = _insert_changes([Change(host=host, snapshot_id=snapshot_id, at=at, **fact) for fact in facts]) if facts else []
    return AppliedDocument(changes=changes, rows=new_rows)
