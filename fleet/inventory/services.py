"""Writes of the current state: applying a snapshot document to a host."""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.db.models import OuterRef, Subquery

from agent.snapshot import content_hash as document_hash

from .diff import snapshot_changes
from .models import Change, Device, Group, Host, PasidUser
from .rows import TABLES, document_collected_at, host_columns_from_document, iommu_mode, rows_from_document
from .selectors import TABLE_MODELS, host_rows, host_state_from_rows

HOST_COUNT_COLUMNS = ("device_count", "group_count", "assigned_count", "iommu_mode")


def _write_table(host: Host, table: str, old: dict, new: dict) -> bool:
    """Make the table hold `new` with the fewest statements; True when anything was written.

    Rows that changed are updated in place (their ids stay, so whatever points at them stays valid).
    """
    model, fields = TABLE_MODELS[table]
    key = TABLES[table][1]
    gone = [old[k]["id"] for k in old.keys() - new.keys()]
    added = [model(host=host, **new[k]) for k in new.keys() - old.keys()]
    changed, changed_fields = [], set()
    for k in old.keys() & new.keys():
        before, after = old[k], new[k]
        differing = [f for f in fields if before[f] != after[f]]
        if differing:
            changed.append(model(id=before["id"], host=host, **after))
            changed_fields.update(differing)
    if gone:
        model.objects.filter(id__in=gone).delete()
    if added:
        model.objects.bulk_create(added)
    if changed:
        model.objects.bulk_update(changed, sorted(changed_fields - {key}))
    return bool(gone or added or changed)


def _write_pasid_users(host: Host, old: list[dict], new: list[dict]) -> None:
    strip = lambda rows: sorted((r["device_bdf"] or "", r["pid"] or 0, r["source"]) for r in rows)  # noqa: E731
    if strip(old) == strip(new):
        return
    PasidUser.objects.filter(host=host).delete()
    PasidUser.objects.bulk_create([PasidUser(host=host, **row) for row in new])


@transaction.atomic
def host_apply_snapshot(
    *, host: Host, document: dict, snapshot_id: int | None, seq: int | None, at: datetime, content_hash: str | None = None
) -> list[Change]:
    """Make `document` the host's current state and record what changed; returns the Change rows written.

    The host's first snapshot records one `host_enrolled` change instead of a change per device.
    """
    old_rows = host_rows(host)
    first = host.applied_at is None
    facts = [] if first else snapshot_changes(host_state_from_rows(host, old_rows), document)
    new_rows = rows_from_document(document)

    groups_written = _write_table(host, "groups", old_rows["groups"], new_rows["groups"])
    devices_written = _write_table(host, "devices", old_rows["devices"], new_rows["devices"])
    for table in ("units", "vfio_nodes", "holders", "mdevs"):
        _write_table(host, table, old_rows[table], new_rows[table])
    _write_pasid_users(host, old_rows["pasid_users"], new_rows["pasid_users"])
    if groups_written or devices_written:
        # Point each device at its group row (rows of groups that were re-created have new ids).
        Device.objects.filter(host=host).update(
            group_id=Subquery(Group.objects.filter(host=host, number=OuterRef("group_number")).values("id")[:1])
        )

    columns = host_columns_from_document(document)
    groups = list(new_rows["groups"].values())
    columns.update(
        device_count=len(new_rows["devices"]),
        group_count=len(groups),
        assigned_count=sum(1 for row in new_rows["devices"].values() if row["owner_kind"] == Device.OwnerKind.USERSPACE),
        iommu_mode=iommu_mode([{"name": g["name"], "type": g["type"]} for g in groups], columns["iommu_enabled"]),
        applied_at=at,
        applied_snapshot_id=snapshot_id,
        content_hash=content_hash or document_hash(document),
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
    for name, value in columns.items():
        setattr(host, name, value)
    host.save(update_fields=list(columns))

    if first:
        facts = [{"kind": Change.Kind.HOST_ENROLLED, "subject": host.hostname[:256], "before": None,
                  "after": {"devices": columns["device_count"], "groups": columns["group_count"]}}]
    changes = [Change(host=host, snapshot_id=snapshot_id, at=at, **fact) for fact in facts]
    return Change.objects.bulk_create(changes)

