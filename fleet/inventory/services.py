"""Writes of the current state: applying a snapshot document to a host.

The apply reads back only (id, key, fingerprint) of the host's rows, rewrites the rows whose
fingerprint moved, and reads in full only those (for the before-values of the change facts):
a 480-device host whose snapshot changed in a few devices costs a few small statements.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime
from types import SimpleNamespace

import orjson
from django.db import transaction

from agent.snapshot import content_hash as document_hash

from .diff import snapshot_changes
from .models import Change, Device, Host, PasidUser
from .rows import PASID_FIELDS, TABLES, document_collected_at, host_columns_from_document, iommu_mode, rows_from_document
from .selectors import TABLE_MODELS, host_state_from_rows

# Up to this many changed rows are updated in place (one UPDATE each, ids kept); past it, deleting and
# re-inserting them is cheaper. (bulk_update's CASE statements cost more than either here.)
UPDATE_IN_PLACE_MAX = 16
# Groups first: devices point at group rows by id.
WRITE_ORDER = ("groups", "devices", "units", "vfio_nodes", "holders", "mdevs")


def row_fingerprint(row: dict) -> str:
    try:
        data = orjson.dumps(row, option=orjson.OPT_SORT_KEYS)
    except (TypeError, orjson.JSONEncodeError):  # integers past 64 bits: orjson refuses them, json does not
        data = json.dumps(row, sort_keys=True, default=str).encode()
    return hashlib.blake2b(data, digest_size=16).hexdigest()


class _TableWrite:
    """One table's rows brought from the stored state to `new`; keeps the before-rows the diff needs."""

    def __init__(self, host: Host, table: str, new: dict):
        self.model, self.fields = TABLE_MODELS[table]
        self.key = TABLES[table][1]
        self.host, self.new = host, new
        self.fingerprints = {k: row_fingerprint(row) for k, row in new.items()}
        stored = self.model.objects.filter(host=host).values_list("id", self.key, "fingerprint")
        self.stored = {k: (pk, fp) for pk, k, fp in stored}
        self.removed = [k for k in self.stored if k not in new]
        self.changed = [k for k, fp in self.fingerprints.items() if k in self.stored and self.stored[k][1] != fp]
        self.added = [k for k in new if k not in self.stored]
        self.ids = {k: pk for k, (pk, _) in self.stored.items() if k in new}
        touched = [self.stored[k][0] for k in self.removed + self.changed]
        self.before = {row[self.key]: row for row in self.model.objects.filter(id__in=touched).values(*self.fields)} if touched else {}

    def old_rows(self) -> dict:
        """The stored rows: untouched ones are equal to the new ones (same fingerprint), the rest were read."""
        rows = {k: self.new[k] for k in self.stored if k in self.new and k not in self.before}
        rows.update(self.before)
        return rows

    def _instance(self, k, pk=None):
        return self.model(id=pk, host_id=self.host.pk, fingerprint=self.fingerprints[k], **self.new[k])

    def write(self) -> None:
        replace = self.changed if len(self.changed) > UPDATE_IN_PLACE_MAX else []
        gone = [self.stored[k][0] for k in self.removed + replace]
        if gone:
            self.model.objects.filter(id__in=gone).delete()
        if not replace:
            for k in self.changed:
                values = {f: self.new[k][f] for f in self.fields if self.before[k].get(f) != self.new[k][f]}
                self.model.objects.filter(id=self.stored[k][0]).update(fingerprint=self.fingerprints[k], **values)
        inserts = [self._instance(k) for k in self.added + replace]
        if inserts:
            for obj in self.model.objects.bulk_create(inserts):
                self.ids[getattr(obj, self.key)] = obj.pk


def _write_pasid_users(host: Host, new: list[dict]) -> list[dict]:
    old = list(PasidUser.objects.filter(host=host).order_by("id").values(*PASID_FIELDS))
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


@transaction.atomic
def host_apply_snapshot(
    *, host: Host, document: dict, snapshot_id: int | None, seq: int | None, at: datetime, content_hash: str | None = None
) -> list[Change]:
    """Make `document` the host's current state and record what changed; returns the Change rows written.

    The host's first snapshot records one `host_enrolled` change instead of a change per device.
    `content_hash` is the document's `agent.snapshot.content_hash` when the caller has it already.
    """
    first = host.applied_at is None
    new_rows = rows_from_document(document)
    writes = {}
    for table in WRITE_ORDER:
        if table == "devices":
            group_ids = writes["groups"].ids
            for row in new_rows["devices"].values():
                row["group_id"] = group_ids.get(row["group_number"])
        writes[table] = _TableWrite(host, table, new_rows[table])
        writes[table].write()
    old_rows = {table: write.old_rows() for table, write in writes.items()}
    old_rows["pasid_users"] = _write_pasid_users(host, new_rows["pasid_users"])

    columns = _host_columns(host, document, new_rows, at=at, snapshot_id=snapshot_id, seq=seq, digest=content_hash or document_hash(document))
    if first:
        facts = [{"kind": Change.Kind.HOST_ENROLLED, "subject": host.hostname[:256], "before": None,
                  "after": {"devices": columns["device_count"], "groups": columns["group_count"]}}]
    else:
        # Both sides go through the same row mapping, so only real differences show.
        new_host = SimpleNamespace(**{**host.__dict__, **columns})
        facts = snapshot_changes(host_state_from_rows(host, old_rows), host_state_from_rows(new_host, new_rows))
    for name, value in columns.items():
        setattr(host, name, value)
    host.save(update_fields=list(columns))
    return Change.objects.bulk_create([Change(host=host, snapshot_id=snapshot_id, at=at, **fact) for fact in facts])
