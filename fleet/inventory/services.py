"""Writes of the current state: a snapshot document replaces a host's state and records what changed.

Every topology row carries a fingerprint of its values. The apply reads back only (key, id,
fingerprint) of the host's rows, rewrites the rows whose fingerprint moved, and reads in full only
those (for the before-values of the change facts): a 480-device host whose snapshot changed in a
few devices costs a few small statements.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime

import orjson
import xxhash
from django.db import connection, transaction

from agent.snapshot import content_hash as document_hash
from agent.upgrade import upgrade

from .diff import rows_changes
from .models import Change, Device, Host, PasidUser
from .rows import (
    DEVICES, KEYED_TABLES, PASID_USERS, Table, document_collected_at, host_columns, host_columns_from_document, iommu_mode,
    rows_from_document, state_from_rows,
)
from .selectors import table_rows
from .statements import rows_insert, stored_fingerprints

# Up to this many changed rows of a table are updated in place, one UPDATE each (ids kept); past it, deleting
# and re-inserting them is cheaper. One UPDATE per row, not bulk_update: 6 M instructions for a realistic
# 8-row change where bulk_update's CASE per column took 25 M (callgrind).
UPDATE_IN_PLACE_MAX = 16


def row_fingerprint(row: dict) -> str:
    # The row's JSON in its mapping's key order (not sorted: sorting cost 40% of the dump); an order that
    # ever differs only makes an unchanged row look changed and be rewritten once, never a wrong change fact.
    # xxh3-128, not a cryptographic digest: a fingerprint only compares a host's rows with the same host's
    # earlier ones, and an agent able to forge a collision could as well report false values outright.
    try:
        data = orjson.dumps(row)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits: orjson refuses them, json does not
        data = json.dumps(row, default=str).encode()
    return xxhash.xxh3_128_hexdigest(data)


def _stored_fingerprints_orm(host: Host) -> dict:
    """What `statements.stored_fingerprints` reads, one values_list per table: the reference, and the path on SQLite."""
    out: dict = {}
    for table in KEYED_TABLES:
        link = ("group_id",) if table is DEVICES else ()
        found = table.model.objects.filter(host=host).order_by().values_list(table.key_column, "id", "fingerprint", *link)
        out[table.name] = {key: (pk, fingerprint, group_id[0] if group_id else None) for key, pk, fingerprint, *group_id in found}
    out[PASID_USERS.name] = [row for _, row in table_rows(PASID_USERS, host=host)]
    return out


def _stored(host: Host) -> dict:
    """table name -> {key: (id, fingerprint, group_id)} of the host's rows; `pasid_users` -> its rows, oldest first."""
    if connection.vendor == "postgresql":
        return stored_fingerprints(host.pk)
    return _stored_fingerprints_orm(host)


class _TableWrite:
    """One table's rows brought from what is stored to `new`; keeps the before-rows the diff needs."""

    def __init__(self, table: Table, host: Host, new: dict, stored: dict, fingerprints: dict):
        self.table, self.host, self.new, self.stored, self.fingerprints = table, host, new, stored, fingerprints
        self.removed = [k for k in stored if k not in new]
        # A device whose group row was replaced keeps its fingerprint but must point at the new row.
        self.changed = [k for k, fp in fingerprints.items()
                        if k in stored and (stored[k][1] != fp or stored[k][2] != new[k].get("group_id"))]
        self.added = [k for k in new if k not in stored]
        self.ids = {k: stored_row[0] for k, stored_row in stored.items() if k in new}
        touched = [stored[k][0] for k in self.removed + self.changed]
        self.before = {row[table.key]: row for _, row in table_rows(table, id__in=touched)} if touched else {}

    def touched(self) -> tuple[dict, dict]:
        """(before, after) of the rows that differ; untouched rows are equal on both sides and change nothing."""
        return self.before, {k: self.new[k] for k in self.changed + self.added}

    def write(self) -> None:
        model, table = self.table.model, self.table
        replace = self.changed if len(self.changed) > UPDATE_IN_PLACE_MAX else []
        gone = [self.stored[k][0] for k in self.removed + replace]
        if gone:
            model.objects.filter(id__in=gone).delete()
        if not replace:
            for k in self.changed:
                before, after = self.before[k], self.new[k]
                moved = {column: after[key] for column, key in zip(table.columns, table.keys) if before.get(key) != after[key]}
                model.objects.filter(pk=self.stored[k][0]).update(**moved, fingerprint=self.fingerprints[k])
        keys = self.added + replace
        if keys:
            host_id = self.host.pk
            ids = rows_insert(model, [{**table.values(self.new[k]), "host_id": host_id, "fingerprint": self.fingerprints[k]} for k in keys])
            self.ids.update(zip(keys, ids))


def _pasid_users_write(host: Host, new: list[dict], old: list[dict]) -> None:
    ordered = lambda rows: sorted((r["device"] or "", r["pid"] or 0, r["source"]) for r in rows)  # noqa: E731
    if ordered(old) != ordered(new):
        PasidUser.objects.filter(host=host).delete()
        PasidUser.objects.bulk_create([PASID_USERS.instance(row, host=host) for row in new])


def _host_columns(host: Host, document: dict, rows: dict, *, at: datetime, snapshot_id, seq, digest: str) -> dict:
    columns = host_columns_from_document(document)
    groups = list(rows["groups"].values())
    columns.update(
        device_count=len(rows["devices"]),
        group_count=len(groups),
        assigned_count=sum(1 for row in rows["devices"].values() if row["owner_kind"] == Device.OwnerKind.USERSPACE),
        iommu_mode=iommu_mode(groups, columns["iommu_enabled"]),
        applied_at=at,
        applied_snapshot_id=snapshot_id,
        content_hash=digest,
        collected_at=document_collected_at(document),
        stale=False,
    )
    if seq:
        columns["applied_seq"] = seq
    machine_id = (document.get("host") or {}).get("machine_id")
    if not host.machine_id and machine_id:
        columns["machine_id"] = machine_id
    if host.last_seen is None or host.last_seen < at:
        columns["last_seen"] = at
    return columns


@dataclass(frozen=True)
class StateReplaced:
    """What `host_state_replace` wrote: its Change rows, and the host's new rows (`rows.rows_from_document`)."""

    changes: list[Change]
    rows: dict

    def state(self, host: Host) -> dict:
        """The host's state as `selectors.host_state` would read it back, without reading it."""
        return state_from_rows(host, self.rows)


@transaction.atomic(savepoint=False)
def host_state_replace(
    *, host: Host, document: dict, snapshot_id: int | None, seq: int | None, at: datetime, content_hash: str | None = None
) -> StateReplaced:
    """Make `document` the host's current state and record what changed.

    The host's first snapshot records one `host_enrolled` change instead of a change per device.
    `content_hash` is the document's `agent.snapshot.content_hash` when the caller has it already.
    """
    first = host.applied_at is None
    digest = content_hash or document_hash(document)  # of the document as the agent sent it (its heartbeats quote that)
    document = upgrade(document)
    rows = rows_from_document(document)
    # Device rows are fingerprinted with group_id still None: the group rows' ids are known only
    # once they are written, and the link is compared on its own (_TableWrite).
    fingerprints = {t.name: {k: row_fingerprint(row) for k, row in rows[t.name].items()} for t in KEYED_TABLES}
    stored = _stored(host)
    old: dict = {"host": host_columns(host)}
    new: dict = {}
    writes: dict[str, _TableWrite] = {}
    for table in KEYED_TABLES:
        if table is DEVICES:
            group_ids = writes["groups"].ids
            for row in rows["devices"].values():
                row["group_id"] = group_ids.get(row["iommu_group"])
        write = writes[table.name] = _TableWrite(table, host, rows[table.name], stored[table.name], fingerprints[table.name])
        write.write()
        old[table.name], new[table.name] = write.touched()
    old["pasid_users"] = stored["pasid_users"]
    new["pasid_users"] = rows["pasid_users"]
    _pasid_users_write(host, new["pasid_users"], old["pasid_users"])

    columns = _host_columns(host, document, rows, at=at, snapshot_id=snapshot_id, seq=seq, digest=digest)
    new["host"] = columns
    if first:
        facts = [{"kind": Change.Kind.HOST_ENROLLED, "subject": host.hostname[:256], "before": None,
                  "after": {"devices": columns["device_count"], "groups": columns["group_count"]}}]
    else:
        facts = rows_changes(old, new)
    # Only the columns that moved (usually the applied_* bookkeeping): a smaller UPDATE to build and to log.
    moved = {name: value for name, value in columns.items() if getattr(host, name) != value}
    Host.objects.filter(pk=host.pk).update(**moved)
    for name, value in moved.items():
        setattr(host, name, value)
    rows_of_changes = [{"host_id": host.pk, "snapshot_id": snapshot_id, "at": at, **fact} for fact in facts]
    changes = [Change(id=pk, **row) for pk, row in zip(rows_insert(Change, rows_of_changes), rows_of_changes)]
    return StateReplaced(changes=changes, rows=rows)
