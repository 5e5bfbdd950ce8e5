"""The demo host whose second snapshot changes its IOMMU groups, so history, diff, group-changed and the
before-you-upgrade report have something to show.

It stands for a BIOS update that turned ACS off on a PCIe switch's downstream ports: the first GPU a VM
holds and a sibling endpoint under the same switch that no VM holds now share one group (the VM keeps
running; the sibling's own group, and its /dev/vfio node, are gone).
"""
from __future__ import annotations

import copy

from agent.topology import upstream

REGROUPED_HOST = "gpu-a01-r01"


def _singleton_endpoints(doc: dict) -> dict[str, int]:
    devices = {d["bdf"]: d for d in doc["devices"]}
    return {g["devices"][0]: g["id"] for g in doc["groups"]
            if len(g["devices"]) == 1 and not devices.get(g["devices"][0], {}).get("is_bridge")}


def merged_groups(doc: dict) -> dict | None:
    """A copy of `doc`, one seq later, with the first held GPU's group merged with its sibling's; None when it has no such pair."""
    devices = {d["bdf"]: d for d in doc["devices"]}
    singles = _singleton_endpoints(doc)
    held = sorted({b for h in doc.get("holders") or [] for b in h.get("devices") or [] if b in singles})
    for bdf in held:
        switch = upstream(bdf, devices)[1:2]
        siblings = sorted(b for b in singles if b not in held and switch and upstream(b, devices)[1:2] == switch)
        if siblings:
            break
    else:
        return None
    out = copy.deepcopy(doc)
    keep, drop = singles[bdf], singles[siblings[0]]
    out["seq"] = doc.get("seq", 1) + 1
    out["groups"] = [g for g in out["groups"] if g["id"] != drop]
    target = next(g for g in out["groups"] if g["id"] == keep)
    target["devices"] = sorted([bdf, siblings[0]])
    next(d for d in out["devices"] if d["bdf"] == siblings[0])["iommu_group"] = keep
    vfio = out.get("vfio") or {}
    vfio["nodes"] = [n for n in vfio.get("nodes") or [] if n.get("group") != drop]
    return out
