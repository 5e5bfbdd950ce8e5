"""Mediated devices: isolation relies on the parent, so the parent must be isolated and serve one tenant."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def _mdev_owners(facts: HostFacts, mdev: dict) -> list[str]:
    owners = set()
    for holder in facts.holders_by_group.get(mdev.get("iommu_group"), ()):
        tenant = facts.tenant_by_pid.get(holder["pid"])
        owners.add(tenant.name if tenant else (holder.get("vm") or holder.get("workload") or f"pid {holder['pid']}"))
    return sorted(owners)


def mdev_parent_not_isolated(facts: HostFacts) -> list[Finding]:
    by_parent: dict[str, list[dict]] = {}
    for mdev in facts.state.get("mdevs") or []:
        by_parent.setdefault(mdev.get("parent"), []).append(mdev)
    for parent in facts.state.get("mdev_parents") or []:
        by_parent.setdefault(parent.get("device"), [])
    out = []
    for parent in sorted(p for p in by_parent if p in facts.devices):
        gid = facts.devices[parent].get("iommu_group")
        group = facts.groups.get(gid) or {}
        members = facts.members(gid) if gid is not None else []
        owners = {m["uuid"]: _mdev_owners(facts, m) for m in by_parent[parent]}
        distinct = sorted({o for os_ in owners.values() for o in os_})
        problems = []
        if len(members) > 1:
            problems.append(f"it shares group {gid} with {', '.join(b for b in members if b != parent)}")
        if group.get("type") == "identity":
            problems.append(f"its group {gid} has an identity (pass-through) domain")
        if len(distinct) > 1:
            problems.append(f"its mdevs go to different owners ({', '.join(distinct)})")
        if not problems:
            continue
        out.append(Finding(
            "mdev-parent-not-isolated", "device", parent,
            f"mdev parent {parent} is not isolated: {'; '.join(problems)}.",
            evidence={"parent": facts.member_evidence(parent), "group": gid, "group_type": group.get("type"), "group_members": members,
                      "mdevs": [{"uuid": m["uuid"], "type": m.get("type"), "iommu_group": m.get("iommu_group"),
                                 "owners": owners[m["uuid"]]} for m in by_parent[parent]], "problems": problems},
            remediation=f"give the mdevs of {parent} to a single tenant, and put {parent} in its own translated IOMMU group "
                        "(own slot behind an ACS port, no iommu=pt).",
        ))
    return out


RULES = (mdev_parent_not_isolated,)
