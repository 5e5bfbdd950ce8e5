"""Host-wide IOMMU state: disabled, VFIO no-IOMMU mode, nested (emulated) IOMMU, identity domains."""
from __future__ import annotations

from agent.explain import and_list

from ..facts import HostFacts
from ..findings import Finding

TAINT_USER = 1 << 6  # 'U': set when VFIO creates a no-IOMMU group
OFF_FLAGS = ("intel_iommu", "amd_iommu", "iommu")


def _truthy(value) -> bool:
    return str(value).strip().lower() in {"y", "1", "on", "true", "yes"}


def iommu_disabled(facts: HostFacts) -> list[Finding]:
    host = facts.state.get("host") or {}
    flags = host.get("cmdline_flags") or {}
    off = {k: flags.get(k) for k in OFF_FLAGS if str(flags.get(k) or "").lower() == "off"}
    iommu = facts.state.get("iommu") or {}
    absent = not iommu.get("enabled")
    if not (off or absent):
        return []
    if not (facts.assigned or facts.expects_assignment):
        return []
    why = "the kernel command line turns the IOMMU off" if off else "the host has no IOMMU units or groups"
    expecting = [r.name for r in facts.roles if r.expects_assignment]
    return [Finding(
        "iommu-disabled", "host", facts.hostname,
        f"{why}, yet {'devices are assigned to userspace' if facts.assigned else 'its role expects device assignment'}: nothing isolates their DMA.",
        evidence={"iommu_enabled": iommu.get("enabled"), "units": len(iommu.get("units") or []), "groups": len(facts.groups),
                  "cmdline_off_flags": off, "cmdline": host.get("cmdline"), "assigned": sorted(facts.assigned),
                  "roles_expecting_assignment": expecting},
        remediation="enable the IOMMU (VT-d/AMD-Vi in firmware; intel_iommu=on or amd_iommu=on, no iommu=off on the kernel "
                    "command line) and reboot before assigning devices" + _until_then(facts) + ".",
    )]


def _until_then(facts: HostFacts) -> str:
    """'; until then stop pid 249 (tenant-f), which holds 0000:02:00.0' — who to stop, by name when known."""
    if not facts.assigned:
        return ""
    users = []
    for bdf in sorted(facts.assigned):
        owners = facts.owners_of(bdf)
        names = sorted({f"pid {o.pid}" + (f" ({o.vm or o.workload})" if o.vm or o.workload else "") for o in owners})
        users.append(f"{', '.join(names)}, which holds {bdf}" if names else f"whatever uses {bdf}")
    return "; until then stop " + "; ".join(users)


def noiommu_mode(facts: HostFacts) -> list[Finding]:
    vfio = facts.state.get("vfio") or {}
    param = (vfio.get("parameters") or {}).get("enable_unsafe_noiommu_mode")
    nodes = [n["path"] for n in vfio.get("nodes") or [] if n.get("kind") == "noiommu_group"]
    tainted = (facts.state.get("host") or {}).get("tainted")
    noiommu_groups = [g["id"] for g in facts.groups.values()
                      if g.get("name") == "vfio-noiommu" and any(b in facts.devices for b in g.get("devices") or [])]
    taint_u = bool(tainted is not None and tainted & TAINT_USER and noiommu_groups)
    if not (_truthy(param) or nodes or taint_u):
        return []
    return [Finding(
        "noiommu-mode", "host", facts.hostname,
        "VFIO no-IOMMU mode is on: userspace drives devices by DMA with no isolation at all.",
        evidence={"enable_unsafe_noiommu_mode": param, "noiommu_nodes": nodes, "noiommu_groups": noiommu_groups,
                  "tainted": tainted, "taint_U": bool(tainted is not None and tainted & TAINT_USER)},
        remediation="set vfio.enable_unsafe_noiommu_mode=0, stop the users of " + (", ".join(nodes) or "no-IOMMU groups")
                    + " and enable a real IOMMU; reboot to clear the taint.",
    )]


def nested_host(facts: HostFacts) -> list[Finding]:
    cm_units = sorted(n for n, u in facts.units.items() if (u.get("features") or {}).get("caching_mode") is True)
    # A virtio-iommu exists only inside a VM, like an emulated VT-d with CM=1.
    virtio_units = sorted(n for n, u in facts.units.items() if u.get("vendor") == "virtio")
    if not (cm_units or virtio_units):
        return []
    what = "the IOMMU reports caching mode (CM=1), which only emulated IOMMUs set" if cm_units else "the IOMMU is a virtio-iommu"
    return [Finding(
        "nested-host", "host", facts.hostname,
        f"{what}: this host is a VM and its isolation depends on the outer host.",
        evidence={"units": {n: {"vendor": facts.units[n].get("vendor"), "cap": (facts.units[n].get("registers") or {}).get("cap"),
                                "caching_mode": (facts.units[n].get("features") or {}).get("caching_mode")}
                            for n in cm_units + virtio_units},
                  "dmi": (facts.state.get("host") or {}).get("dmi") or {}},
        remediation="review the isolation policy of the outer host as well; treat devices here as only as isolated as the outer VM's.",
    )]


def identity_domain_multitenant(facts: HostFacts) -> list[Finding]:
    identity = sorted(g for g, grp in facts.groups.items() if grp.get("type") == "identity")
    if not identity or not facts.assigned:
        return []
    assigned = {b: [o.as_dict() for o in facts.owners_of(b)] for b in sorted(facts.assigned)}
    host_driven = sorted(b for g in identity for b in facts.members(g) if facts.is_host_dma(b))
    given = []
    for bdf in sorted(facts.assigned):
        holders = sorted({o.vm or o.workload or f"pid {o.pid}" for o in facts.owners_of(bdf)})
        given.append(f"{bdf} (held by {', '.join(holders)})" if holders else bdf)
    driven = f" ({and_list(host_driven[:4])}{' …' if len(host_driven) > 4 else ''})" if host_driven else ""
    return [Finding(
        "identity-domain-multitenant", "host", facts.hostname,
        f"{len(identity)} of {len(facts.groups)} groups use identity (pass-through) default domains while "
        f"{and_list(given)} {'is' if len(given) == 1 else 'are'} assigned: host-driven devices{driven} can DMA anywhere, "
        "guest RAM included.",
        evidence={"identity_groups": identity, "host_dma_devices_in_identity_groups": host_driven, "assigned": assigned,
                  "cmdline_flags": {k: v for k, v in ((facts.state.get("host") or {}).get("cmdline_flags") or {}).items()
                                    if k in ("iommu", "iommu_passthrough", "intel_iommu", "amd_iommu") and v is not None}},
        remediation="drop iommu=pt / iommu.passthrough=1 from the kernel command line (translated DMA domains) on hosts "
                    "that assign devices to tenants, or move those tenants to hosts without pass-through.",
    )]


RULES = (iommu_disabled, noiommu_mode, nested_host, identity_domain_multitenant)
