"""Schema 1 documents in schema 2's shape: the one upgrade, used by the server on receive and on apply.

Schema 1 agents stay in the field for a while; the server keeps accepting them. What schema 2 adds is
either re-derived from what schema 1 carried (fd kinds from the held node paths, claims from the
holder's command line and its libvirt domain) or set to null, meaning unknown (never guessed):
fd numbers, VmLck, cdev support, module presence, package versions, work-queue clients.
A claim's backend comes from QEMU's own argv (`iommufd=` or not), which schema 1 carried.
Schema 1's holder `devices` also listed every member of a held group, so it is not taken as a claim.
"""
from __future__ import annotations

import copy

from .collectors.holders import config_claims, fd_entry
from .collectors.vfio import MODULES, node_devices

CURRENT = 2
SUPPORTED = (1, 2)


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def fds_from_nodes(nodes: list, cdev_devices: dict[str, str], uio_devices: dict[str, str]) -> list[dict]:
    """The fd entries a schema 1 holder's node paths stand for (one per path, fd number unknown)."""
    entries = (fd_entry(None, path, cdev_devices, uio_devices) for path in nodes if isinstance(path, str))
    return [e for e in entries if e is not None]


def claims_from_v1(holder: dict, domain: dict | None) -> list[dict]:
    argv = [a for a in _list(holder.get("cmdline")) if isinstance(a, str)]
    return config_claims(holder.get("kind"), argv, domain)


def upgrade(doc: dict) -> dict:
    """`doc` in the current schema's shape: a schema 2 document as it is, a schema 1 one converted (a copy)."""
    if doc.get("schema") == CURRENT:
        return doc
    out = copy.deepcopy(doc)
    out["schema"] = CURRENT
    vfio = out.setdefault("vfio", {})
    vfio.setdefault("cdev_support", None)
    vfio.setdefault("modules", {name: None for name in MODULES})
    _dict(out.get("host")).setdefault("software", {"qemu": None, "libvirt": None})
    for device in _list(_dict(out.get("pasid")).get("idxd")):
        for wq in _list(_dict(device).get("wqs")):
            if isinstance(wq, dict):
                wq.setdefault("clients", None)
    cdevs, uio = node_devices(vfio)
    domains = {d["pid"]: d for d in _list(_dict(out.get("libvirt")).get("domains"))
               if isinstance(d, dict) and isinstance(d.get("pid"), int)}
    for holder in _list(out.get("holders")):
        if not isinstance(holder, dict):
            continue
        holder["fds"] = fds_from_nodes(_list(holder.get("nodes")), cdevs, uio)
        holder["claims"] = claims_from_v1(holder, domains.get(holder.get("pid")))
        holder["devices"] = [c["device"] for c in holder["claims"]]
        holder.setdefault("vm_locked_kb", None)
    return out
