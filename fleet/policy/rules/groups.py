"""IOMMU groups as isolation units: mixed ownership, peer-to-peer exposure, split owners, changes since baseline."""
from __future__ import annotations

from agent.explain import and_list, group_reasons

from ..drift import GroupChange, group_drift
from ..facts import HostFacts
from ..findings import Finding


def _why(facts: HostFacts, gid, members: list[str]) -> str:
    """Why `members` share group `gid`, in the agent's words (the same sentences `fleet-agent show` prints)."""
    return f"why they share group {gid}: " + "; ".join(group_reasons(members, facts.devices))


def _who(holder: dict) -> str:
    return holder.get("vm") or holder.get("workload") or f"pid {holder['pid']}"


def _group_evidence(facts: HostFacts, gid, members: list[str]) -> dict:
    group = facts.groups.get(gid) or {}
    return {
        "group": gid,
        "type": group.get("type"),
        "members": [facts.member_evidence(b) for b in members],
        "explained_by": group_reasons(members, facts.devices),
    }


def group_mixed_ownership(facts: HostFacts) -> list[Finding]:
    out = []
    for gid in facts.assigned_groups():
        view = facts.group_view(gid)
        members, assigned, host_dma = view.members, view.assigned, view.host_dma
        if not host_dma:
            continue
        drivers = and_list([f"{b} on {facts.devices[b].get('driver')}" for b in host_dma])
        verb = lambda items: "is" if len(items) == 1 else "are"  # noqa: E731
        it = "it" if len(host_dma) == 1 else "them"
        # Held or not: a holder of the group's fd (or a member's cdev) is refused by the kernel, and owns nothing.
        refused = sorted({h["pid"]: h for b in members for h in facts.refused_by_device.get(b, ())}.values(), key=lambda h: h["pid"])
        held = (f"; {and_list([_who(h) for h in refused])} {verb(refused)} holding its fd, refused by the kernel (no device reachable)"
                if refused else "")
        out.append(Finding(
            "group-mixed-ownership", "group", str(gid),
            f"group {gid} is not viable: {and_list(assigned)} {verb(assigned)} assigned to userspace while {drivers} "
            f"{verb(host_dma)} driven by the host{held}.",
            evidence=_group_evidence(facts, gid, members) | {
                "assigned": assigned, "host_dma": host_dma, "viability": facts.model.groups[gid].as_dict() if gid in facts.model.groups else None,
                "refused_holders": [{"pid": h["pid"], "vm": h.get("vm"), "workload": h.get("workload")} for h in refused]},
            remediation=f"bind {and_list(host_dma)} to vfio-pci as well (or unbind {it}), or move the devices to slots behind "
                        f"root ports with ACS; {_why(facts, gid, members)}.",
        ))
    return out


def group_shared_p2p(facts: HostFacts) -> list[Finding]:
    out = []
    for gid in facts.assigned_groups():
        view = facts.group_view(gid)
        members, endpoints, assigned = view.members, view.endpoints, view.assigned
        # A mixed group cannot be claimed by userspace at all: group-mixed-ownership reports it instead.
        if len(endpoints) < 2 or view.host_dma:
            continue
        owners = sorted({o.vm or o.workload or f"pid {o.pid}" for b in assigned for o in facts.owners_of(b)})
        who = f"held by {', '.join(owners)}" if owners else "assigned to userspace"
        out.append(Finding(
            "group-shared-p2p", "group", str(gid),
            f"group {gid} has {len(endpoints)} endpoints ({and_list(endpoints)}) {who}: "
            f"{'each can reach the other' if len(endpoints) == 2 else 'each can reach the others'} by peer-to-peer DMA.",
            evidence=_group_evidence(facts, gid, members) | {"endpoints": endpoints, "assigned": assigned, "holders": owners},
            remediation=f"accept it (waive) only if one owner should have all of {and_list(endpoints)}; otherwise move the devices to "
                        f"slots behind ports with ACS so they get their own groups; {_why(facts, gid, members)}.",
        ))
    return out


def group_split_owners(facts: HostFacts) -> list[Finding]:
    out = []
    for gid in facts.assigned_groups():
        view = facts.group_view(gid)
        members = view.members
        owners = {b: facts.owners_of(b) for b in view.assigned}
        vms = sorted({o.vm or o.workload for os_ in owners.values() for o in os_ if o.vm or o.workload})
        tenants = sorted({o.tenant for os_ in owners.values() for o in os_ if o.tenant})
        labels = sorted({tuple(sorted(o.labels)) for os_ in owners.values() for o in os_ if o.tenant})
        split = [what for what, values in (("VMs/workloads", vms), ("tenants", tenants), ("security labels", labels)) if len(values) > 1]
        if not split:
            continue
        out.append(Finding(
            "group-split-owners", "group", str(gid),
            f"members of group {gid} belong to different {' and '.join(split)} ({', '.join(vms or tenants)}), which share one DMA domain.",
            evidence=_group_evidence(facts, gid, members) | {"vms": vms, "tenants": tenants, "labels": [list(x) for x in labels]},
            remediation=f"give the whole group {gid} to one owner (stop all but one of {', '.join(vms or tenants)}), or move devices "
                        f"so each owner gets its own group; {_why(facts, gid, members)}.",
        ))
    return out


def _named(members) -> str:
    return and_list([b for _, b in members])


def _change_message(change: GroupChange) -> str:
    before = "; ".join("{" + _named(g) + "}" for g in change.before)
    after = "; ".join(f"group {gid} {{{_named(m)}}}" for gid, m in change.after)
    groups = and_list([f"group {gid}" for gid, _ in change.after]) or "its devices"
    return {
        "split": f"{groups}: one accepted group {before} is split into {after}.",
        "merged": f"{groups}: accepted groups {before} are merged into one, {after}.",
        "replaced": f"{groups}: a member was replaced since the accepted group {before}; now {after}.",
        "gained": f"{groups} gained members since the accepted group {before}; now {after}.",
        "lost": f"{groups} lost members since the accepted group {before}; now {after}.",
        "regrouped": f"{groups}: accepted groups {before} are regrouped as {after}.",
        "appeared": f"{groups} appeared since the accepted baseline: {after}.",
        "gone": f"accepted group {before} is no longer in any IOMMU group.",
    }[change.kind]


def group_changed(facts: HostFacts) -> list[Finding]:
    baseline = facts.intent.baseline_for(facts.hostname)
    if baseline is None:
        return []
    out = []
    for change in group_drift(baseline, facts.devices, facts.groups):
        members = lambda m: [{"bdf": b, "identity": i} for i, b in m]  # noqa: E731
        # The first current group, so the drawing can show it; a vanished group by its first former member.
        kind, subject = ("group", str(change.after[0][0])) if change.after else ("device", change.before[0][0][1])
        out.append(Finding(
            "group-changed", kind, subject,
            _change_message(change),
            evidence={"change": change.kind, "baseline_groups": [members(g) for g in change.before],
                      "current_groups": [{"group": gid, "members": members(m)} for gid, m in change.after],
                      "baseline_accepted_at": baseline.accepted_at, "baseline_accepted_by": baseline.accepted_by,
                      "compared_on": "identity" if baseline.identities else "bdf"},
            remediation="check what changed (kernel, BIOS, firmware, slot) and re-validate the VMs and intent mappings of these devices "
                        "(the before-you-upgrade report lists them), then accept the new groups: the host page's button, "
                        f"POST /api/v1/hosts/{facts.hostname}/baseline or `manage.py policy baseline accept {facts.hostname}`.",
        ))
    return out


RULES = (group_mixed_ownership, group_shared_p2p, group_split_owners, group_changed)
