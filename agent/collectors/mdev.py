"""Mediated devices (mdev) and the parents that can create them.

An mdev's IOMMU group is synthetic: its isolation is the parent driver's job, so the parent and
its types are reported beside the mdevs for the policy to judge.
"""
from __future__ import annotations

from ..sysfs import Reader
from .bounds import bounded, decimal


def _mdev(rd: Reader, uuid: str) -> dict:
    base = f"/sys/bus/mdev/devices/{uuid}"
    real = rd.resolve(base)
    # The mdev lives below its parent: /sys/devices/pci0000:00/0000:00:02.0/<uuid>
    parent = rd.printable(base, real.parent.name) if real is not None else None
    group = rd.link_name(f"{base}/iommu_group")
    return {
        "uuid": rd.printable(base, uuid),
        "parent": parent,
        "type": rd.link_name(f"{base}/mdev_type", missing_ok=False),
        "type_name": rd.text(f"{base}/mdev_type/name", missing_ok=True),
        "iommu_group": decimal(group),
    }


def _parent(rd: Reader, device: str) -> dict:
    base = f"/sys/class/mdev_bus/{device}/mdev_supported_types"
    types = []
    for type_id in rd.listdir(base):
        tbase = f"{base}/{type_id}"
        types.append({
            "id": rd.printable(tbase, type_id),
            "name": rd.text(f"{tbase}/name", missing_ok=True),  # optional in the mdev ABI
            "description": rd.text(f"{tbase}/description", missing_ok=True),
            "available_instances": decimal(rd.text(f"{tbase}/available_instances")),
            "device_api": bounded(rd, f"{tbase}/device_api", rd.text(f"{tbase}/device_api")),
        })
    return {"device": rd.printable(base, device), "types": types}


def collect(rd: Reader) -> tuple[list[dict], list[dict]]:
    mdevs = [_mdev(rd, uuid) for uuid in rd.listdir("/sys/bus/mdev/devices", missing_ok=True)]
    parents = [_parent(rd, dev) for dev in rd.listdir("/sys/class/mdev_bus", missing_ok=True)]
    return mdevs, parents
