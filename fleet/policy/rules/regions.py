"""Reserved regions: firmware-owned direct mappings inside groups handed to userspace."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def reserved_region_direct(facts: HostFacts) -> list[Finding]:
    out = []
    for gid in facts.assigned_groups():
        group = facts.groups[gid]
        direct = [r for r in group.get("reserved_regions") or [] if r.get("type") == "direct"]
        if not direct:
            continue
        members = facts.members(gid)
        assigned = [b for b in members if b in facts.assigned]
        if not assigned:
            continue
        ranges = ", ".join(f"{r.get('start')}-{r.get('end')}" for r in direct)
        out.append(Finding(
            "reserved-region-direct", "group", str(gid),
            f"group {gid} is assigned to userspace but firmware keeps direct DMA mappings ({ranges}) into it (RMRR/IVMD).",
            evidence={"group": gid, "direct_regions": direct, "assigned": assigned,
                      "members": [facts.member_evidence(b) for b in members]},
            remediation=f"do not assign {', '.join(assigned)} (the firmware's RMRR/IVMD DMA can hit the user's memory); "
                        "update firmware or move the workload to a device without direct reserved regions.",
        ))
    return out


RULES = (reserved_region_direct,)
