"""I/O address spaces (VFIO containers, iommufd contexts) shared across tenants."""
from __future__ import annotations

from agent.explain import and_list

from ..facts import HostFacts
from ..findings import Finding


def _owner_name(facts: HostFacts, holder: dict) -> str | None:
    """The tenant when tenants are declared, else the VM/workload (as group-split-owners attributes)."""
    if facts.intent.tenants:
        tenant = facts.tenant_by_pid.get(holder["pid"])
        return tenant.name if tenant else None
    return holder.get("vm") or holder.get("workload")


def address_space_multitenant(facts: HostFacts) -> list[Finding]:
    """One address space mapping devices that belong to different tenants (or VMs): every device in it can DMA into
    whatever any of them mapped, so the tenants share one DMA domain."""
    holders = {h["pid"]: h for h in facts.state.get("holders") or []}
    out = []
    for space in facts.model.address_spaces:
        holder = holders.get(space.pid)
        if holder is None:
            continue
        by_owner: dict[str, set] = {}
        own = _owner_name(facts, holder)
        if own:
            by_owner.setdefault(own, set())
        for bdf in space.devices:
            for other in facts.holders_by_device.get(bdf, ()):
                name = _owner_name(facts, other)
                if name:
                    by_owner.setdefault(name, set()).add(bdf)
        if len(by_owner) < 2:
            continue
        kind = "tenants" if facts.intent.tenants else "VMs/workloads"
        owners = sorted(by_owner)
        out.append(Finding(
            "address-space-multitenant", "address-space", space.key,
            f"{space.kind} {space.key} of {own or f'pid {space.pid}'} ({space.backend}) maps devices of different {kind} "
            f"({', '.join(owners)}): {and_list(sorted(space.devices))} share one I/O address space.",
            evidence={"address_space": space.as_dict(), "holder": {"pid": space.pid, "vm": holder.get("vm"), "workload": holder.get("workload")},
                      "owners": {name: sorted(devices) for name, devices in sorted(by_owner.items())}},
            remediation=f"give each of {', '.join(owners)} its own {'iommufd context' if space.backend == 'iommufd' else 'VFIO container'}: "
                        f"stop the process that shares {space.key}'s fd, or move the other owner's devices out of it.",
        ))
    return out


RULES = (address_space_multitenant,)
