"""Processes holding VFIO/iommufd fds that map to no known VM, workload or tenant."""
from __future__ import annotations

from ..facts import HostFacts, holds_vfio_or_iommufd
from ..findings import Finding


def unknown_holder(facts: HostFacts) -> list[Finding]:
    out = []
    for holder in facts.state.get("holders") or []:
        if not holds_vfio_or_iommufd(holder):
            continue
        if facts.intent.tenants:
            known = facts.tenant_by_pid.get(holder["pid"]) is not None
            why = "matches no declared tenant's VM, cgroup or workload pattern"
        else:
            # Without declared tenants, a named VM or workload is as far as attribution goes.
            known = bool(holder.get("vm") or holder.get("workload"))
            why = "is neither a named VM nor a known workload"
        if known:
            continue
        out.append(Finding(
            "unknown-holder", "holder", str(holder["pid"]),
            f"process {holder['pid']} ({holder.get('name')}) holds {', '.join(holder.get('nodes') or ['VFIO device fds'])} but {why}.",
            evidence={k: holder.get(k) for k in ("pid", "name", "user", "uid", "cmdline", "nodes", "groups", "devices",
                                                 "device_fds", "kind", "vm", "workload", "cgroup")},
            remediation=f"identify process {holder['pid']} and either stop it or declare its VM/cgroup/workload pattern under a tenant in the intent.",
        ))
    return sorted(out, key=lambda f: int(f.subject_id))


RULES = (unknown_holder,)
