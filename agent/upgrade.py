"""Schema 1 documents in schema 2's shape: the one upgrade, used by the server on receive and on apply.

Schema 1 agents stay in the field for a while; the server keeps accepting them. What schema 2 adds is
either re-derived from what schema 1 carried (fd kinds from the held node paths, claims from the
holder's command line and its libvirt domain) or set to null, meaning unknown (never guessed):
fd numbers, VmLck, cdev support, module presence, package versions, work-queue clients.
Schema 1's holder `devices` also listed every member of a held group, so it is not taken as a claim.
"""
from __future__ import annotations

import re

from .collectors.holders import dpdk_allowed, qemu_vfio_hosts

CURRENT = 2
SUPPORTED = (1, 2)

_GROUP_NODE = re.compile(r"^/dev/vfio/(noiommu-)?([0-9]{1,10})$")
MODULES = ("vfio", "vfio_iommu_type1", "vfio_pci", "iommufd")


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def fds_from_nodes(nodes: list, cdev_devices: dict[str, str], uio_devices: dict[str, str]) -> list[dict]:
    """The fd entries a schema 1 holder's node paths stand for (one per path, fd number unknown)."""
    out = []
    for path in nodes:
        if not isinstance(path, str):
            continue
        entry = {"fd": None, "target": path, "kind": None, "group": None, "device": None, "device_source": None}
        if m := _GROUP_NODE.match(path):
            entry.update(kind="noiommu_group" if m.group(1) else "group", group=int(m.group(2)))
        elif path == "/dev/vfio/vfio":
            entry["kind"] = "container"
        elif path == "/dev/iommu":
            entry["kind"] = "iommufd"
        elif path.startswith("/dev/vfio/devices/"):
            device = cdev_devices.get(path)
            entry.update(kind="cdev", device=device, device_source="cdev" if device else None)
        elif path.startswith("/dev/uio"):
            device = uio_devices.get(path)
            entry.update(kind="uio", device=device, device_source="uio-node" if device else None)
        else:
            continue
        out.append(entry)
    return out


def node_devices(vfio: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(cdev path -> BDF, uio node path -> BDF) from a document's `vfio` section."""
    cdevs = {f"/dev/vfio/devices/{c['name']}": c["device"] for c in _list(vfio.get("cdevs"))
             if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("device"), str)}
    uio = {n["path"]: n["device"] for n in _list(vfio.get("nodes"))
           if isinstance(n, dict) and n.get("kind") == "uio" and isinstance(n.get("path"), str) and isinstance(n.get("device"), str)}
    return cdevs, uio


def claims_from_v1(holder: dict, domain: dict | None) -> list[dict]:
    argv = [a for a in _list(holder.get("cmdline")) if isinstance(a, str)]
    claims: dict[str, dict] = {}
    if holder.get("kind") == "qemu":
        for bdf in qemu_vfio_hosts(argv):
            claims[bdf] = {"device": bdf, "source": "qemu-argv", "backend": None}
    if holder.get("kind") == "dpdk":
        for bdf in dpdk_allowed(argv):
            claims.setdefault(bdf, {"device": bdf, "source": "dpdk-argv", "backend": None})
    for bdf in _list((domain or {}).get("hostdevs")):
        if isinstance(bdf, str):
            claims.setdefault(bdf, {"device": bdf, "source": "libvirt", "backend": None})
    return [claims[b] for b in sorted(claims)]


def upgrade(doc: dict) -> dict:
    """`doc` in the current schema's shape: a schema 2 document as it is, a schema 1 one converted.

    The conversion copies only the dicts and lists it adds to (the caller's document is left as it
    was); the rest is shared with `doc`. A deep copy of a 480-device document took 17 ms of a ~20 ms apply.
    """
    if doc.get("schema") == CURRENT:
        return doc
    out = dict(doc, schema=CURRENT)
    vfio = out["vfio"] = dict(_dict(out.get("vfio")))
    vfio.setdefault("cdev_support", None)
    vfio.setdefault("modules", {name: None for name in MODULES})
    if isinstance(out.get("host"), dict):
        out["host"] = {"software": {"qemu": None, "libvirt": None}, **out["host"]}
    pasid = out.get("pasid")
    if isinstance(pasid, dict) and isinstance(pasid.get("idxd"), list):
        out["pasid"] = dict(pasid, idxd=[_idxd_upgraded(device) for device in pasid["idxd"]])
    cdevs, uio = node_devices(vfio)
    domains = {d["pid"]: d for d in _list(_dict(out.get("libvirt")).get("domains"))
               if isinstance(d, dict) and isinstance(d.get("pid"), int)}
    if isinstance(out.get("holders"), list):
        out["holders"] = [_holder_upgraded(h, cdevs, uio, domains) if isinstance(h, dict) else h for h in out["holders"]]
    return out


def _idxd_upgraded(device):
    if not isinstance(device, dict) or not isinstance(device.get("wqs"), list):
        return device
    return dict(device, wqs=[{"clients": None, **wq} if isinstance(wq, dict) else wq for wq in device["wqs"]])


def _holder_upgraded(holder: dict, cdevs: dict, uio: dict, domains: dict) -> dict:
    out = {"vm_locked_kb": None, **holder}
    out["fds"] = fds_from_nodes(_list(holder.get("nodes")), cdevs, uio)
    out["claims"] = claims_from_v1(holder, domains.get(holder.get("pid")))
    out["devices"] = [c["device"] for c in out["claims"]]
    return out
