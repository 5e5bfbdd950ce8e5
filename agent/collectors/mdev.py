"""Mediated devices (mdev) and the parents that can create them.

An mdev's IOMMU group is synthetic: its isolation is the parent driver's job, so the parent and
its types are reported beside the mdevs for the policy to judge.
"""
from __future__ import annotations

from ..sysfs import Reader
from .bounds import bounded


def _mdev(rd: Reader, uuid: str) -> dict:
    base = f"/sys/bus/mdev/devices/{uuid}"
    real = rd.resolve(base)
    # The mdev lives below its parent: /sys/devices/pci0000:00/0000:00:02.0/<uuid>
    parent = rd.printable(base, real.parent.name) if real is not None else None
    return {
        "uuid": rd.printable(base, uuid),
        "parent": parent,
        "type": rd.link_name(f"{base}/mdev_type", missing_ok=False),
        "type_name": rd.text(f"{base}/mdev_type/name", missing_ok=True),
        "iommu_group": rd.integer(f"{base}/iommu_group", rd.link_name(f"{base}/iommu_group"),
                                  what="a group number at the end of the link"),
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
            "available_instances": rd.read_int(f"{tbase}/available_instances", what="a count"),
            "device_api": bounded(rd, f"{tbase}/device_api", rd.text(f"{tbase}/device_api")),
        })
    return {"device": rd.printable(base, device), "types": types}


def collect(rd: Reader) -> tuple[list[dict], list[dict]]:
    mdevs = [rd.isolated(f"/sys/bus/mdev/devices/{uuid}", "this mdev left out", None, _mdev, rd, uuid)
             for uuid in rd.listdir("/sys/bus/mdev/devices", missing_ok=True)]
    parents = [rd.isolated(f"/sys/class/mdev_bus/{dev}", "this parent left out", None, _parent, rd, dev)
               for dev in rd.listdir("/sys/class/mdev_bus", missing_ok=True)]
    return [m for m in mdevs if m is not None], [p for p in parents if p is not None]
