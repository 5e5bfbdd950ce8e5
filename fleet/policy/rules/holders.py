"""Processes holding VFIO/iommufd fds (group, container, cdev, device fd, iommufd context) that map to no known
VM, workload or tenant."""
from __future__ import annotations

from ..facts import HostFacts, holds_vfio_or_iommufd
from ..findings import Finding


def _held(facts: HostFacts, holder: dict) -> list[str]:
    targets = sorted({f["target"] for f in facts.fds_by_pid.get(holder["pid"], ()) if isinstance(f.get("target"), str)})
    return targets or holder.get("nodes") or ["VFIO device fds"]


def unknown_holder(facts: HostFacts) -> list[Finding]:
    out = []
    for holder in facts.state.get("holders") or []:
        if not holds_vfio_or_iommufd(facts, holder):
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
        pid = holder["pid"]
        reaches = facts.model.reached_by(pid)
        spaces = [s.as_dict() for s in facts.model.address_spaces if s.pid == pid]
        what = f"; it can reach {', '.join(reaches)}" if reaches else ""
        out.append(Finding(
            "unknown-holder", "holder", str(pid),
            f"process {pid} ({holder.get('name')}) holds {', '.join(_held(facts, holder))} but {why}{what}.",
            evidence={**{k: holder.get(k) for k in ("pid", "name", "user", "uid", "cmdline", "nodes", "groups", "devices",
                                                    "device_fds", "kind", "vm", "workload", "cgroup")},
                      "reaches": reaches, "address_spaces": spaces},
            remediation=f"identify process {pid} and either stop it or declare its VM/cgroup/workload pattern under a tenant in the intent.",
        ))
    return sorted(out, key=lambda f: int(f.subject_id))


RULES = (unknown_holder,)
