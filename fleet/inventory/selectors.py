"""Reads of the current state."""
from __future__ import annotations

from .models import Device, Group, Holder, Host, Mdev, PasidUser, Unit, VfioNode
from .rows import (
    DEVICE_FIELDS, GROUP_FIELDS, HOLDER_FIELDS, MDEV_FIELDS, NODE_FIELDS, PASID_FIELDS, TABLES, UNIT_FIELDS,
    host_section, sections_from_rows,
)

TABLE_MODELS = {
    "units": (Unit, UNIT_FIELDS),
    "groups": (Group, GROUP_FIELDS),
    "devices": (Device, DEVICE_FIELDS),
    "vfio_nodes": (VfioNode, NODE_FIELDS),
    "holders": (Holder, HOLDER_FIELDS),
    "mdevs": (Mdev, MDEV_FIELDS),
}


def host_rows(host: Host) -> dict[str, dict]:
    """table -> {key: row dict (with `id`)} of the host's current topology; `pasid_users` is a list."""
    rows: dict = {}
    for table, (model, fields) in TABLE_MODELS.items():
        key = TABLES[table][1]
        rows[table] = {row[key]: row for row in model.objects.filter(host=host).values("id", *fields)}
    rows["pasid_users"] = list(PasidUser.objects.filter(host=host).order_by("id").values("id", *PASID_FIELDS))
    return rows


def host_state_from_rows(host: Host, rows: dict[str, dict]) -> dict:
    sections = sections_from_rows(rows)
    return {
        "host": host_section(host),
        "iommu": {"enabled": host.iommu_enabled, "units": sections["units"]},
        "groups": sections["groups"],
        "devices": sections["devices"],
        "vfio": {
            "noiommu": host.vfio_noiommu, "iommufd": host.vfio_iommufd, "nodes": sections["nodes"],
            "parameters": host.vfio_parameters, "cdevs": host.vfio_cdevs,
        },
        "holders": sections["holders"],
        "mdevs": sections["mdevs"],
        "mdev_parents": host.mdev_parents,
        "pasid": {"idxd": host.pasid_idxd, "users": sections["pasid_users"]},
        "warnings": host.warnings,
    }


def host_state(host: Host) -> dict:
    """The host's current state as a snapshot-shaped dict (docs/snapshot.md), rebuilt from the tables."""
    return host_state_from_rows(host, host_rows(host))
