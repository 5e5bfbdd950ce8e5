"""Device nodes that grant DMA: /dev/vfio/<N>, /dev/vfio/devices/vfioX, /dev/iommu.

Only real exposures count (DOMAIN.md §6). A root-owned 0600 node is never one: only root can
open it, and on 6.6+ hosts a VM that uses its per-device cdev leaves the group node exactly so.
Likewise a holder running as root, or holding a root-owned node it was handed as an fd
(libvirt fd passing), is no owner mismatch. What is: a node its Unix group or the world can
open, a node owned by another non-root account than the process holding it, two non-root
accounts owning nodes of one group, and /dev/iommu looser than 0660.
"""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding

IOMMUFD_MAX_MODE = 0o660


def _node_group(facts: HostFacts, node: dict):
    if node.get("kind") == "group":
        return node.get("group")
    if node.get("kind") == "device" and node.get("device") in facts.devices:
        return facts.devices[node["device"]].get("iommu_group")
    return None


def _what_it_grants(facts: HostFacts, node: dict) -> str:
    if node.get("kind") == "iommufd":
        return "any process that opens it can create I/O address spaces for the devices it is handed"
    if node.get("kind") == "device" and node.get("device"):
        return f"whoever opens it drives {node['device']} by DMA"
    gid = _node_group(facts, node)
    return f"whoever opens it owns every device of group {gid}" if gid is not None else "whoever opens it owns every device of the group"


def device_node_permissions(facts: HostFacts) -> list[Finding]:
    nodes = (facts.state.get("vfio") or {}).get("nodes") or []
    holders_by_node: dict[str, list[dict]] = {}
    for holder in facts.state.get("holders") or []:
        # The node paths, and (schema 2) each fd's target: a cdev or /dev/iommu handed over by libvirt shows only there.
        targets = {f.get("target") for f in facts.fds_by_pid.get(holder["pid"], ())} | set(holder.get("nodes") or [])
        for path in sorted(t for t in targets if isinstance(t, str)):
            holders_by_node.setdefault(path, []).append(holder)
    owners_by_group: dict = {}
    for node in nodes:
        gid = _node_group(facts, node)
        if gid is not None:
            owners_by_group.setdefault(gid, {})[node["path"]] = node.get("uid")
    for gid, owners in list(owners_by_group.items()):
        # Root-owned nodes of the group are the kernel's default, not a second owner.
        owners_by_group[gid] = {p: u for p, u in owners.items() if u not in (0, None)}
    out = []
    for node in sorted(nodes, key=lambda n: n["path"]):
        kind = node.get("kind")
        if kind not in ("group", "device", "iommufd"):
            continue
        try:
            mode = int(node.get("mode") or "0", 8)
        except ValueError:
            continue
        problems = []
        if kind == "iommufd":
            if mode & ~IOMMUFD_MAX_MODE & 0o777:
                problems.append(f"mode {node.get('mode')} is looser than 0660")
        else:
            if mode & 0o077:
                problems.append(f"mode {node.get('mode')} lets group/other users open it")
            holder_uids = sorted({h.get("uid") for h in holders_by_node.get(node["path"], ()) if h.get("uid") is not None})
            owner = node.get("uid")
            wrong = [u for u in holder_uids if owner not in (0, None) and u not in (0, owner)]
            if wrong:
                problems.append(f"owner uid {node.get('uid')} differs from the holder's uid {', '.join(map(str, wrong))}")
            gid = _node_group(facts, node)
            peers = owners_by_group.get(gid, {})
            if owner not in (0, None) and len(set(peers.values())) > 1:
                problems.append(f"nodes of group {gid} have different owners ({', '.join(f'{p} uid {u}' for p, u in sorted(peers.items()))})")
        if not problems:
            continue
        out.append(Finding(
            "device-node-permissions", "node", node["path"],
            f"{node['path']}: {'; '.join(problems)} — {_what_it_grants(facts, node)}.",
            evidence={"node": node, "holders": [{"pid": h["pid"], "uid": h.get("uid"), "vm": h.get("vm")}
                                                for h in holders_by_node.get(node["path"], ())],
                      "group": _node_group(facts, node), "problems": problems},
            remediation=(f"chmod 0660 {node['path']}" if kind == "iommufd" else
                         f"chmod 0600 {node['path']} and chown it to the one user of its group (libvirt does this per VM)") + ".",
        ))
    return out


RULES = (device_node_permissions,)
