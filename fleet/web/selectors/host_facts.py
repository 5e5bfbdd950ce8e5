"""What the host page says beside the drawing: each group's viability and why its members share it,
each holder's tenant, and what the header's device / group / assigned counts are made of.

The words come from the agent's own functions (agent.ownership.group_viability, agent.explain.group_reasons)
over the host's state as inventory rebuilds it, so the page, `fleet-agent show` and the policy agree.
"""
from __future__ import annotations

from agent.explain import group_reasons
from agent.ownership import ownership
from fleet.inventory.models import Host, Mdev
from fleet.inventory.selectors import host_state
from fleet.policy.selectors import intent_current

MDEV_GROUP_NAME = "vfio-noiommu"  # VFIO names its synthetic groups so (DOMAIN.md §1); mdev groups are among them


def group_explanations(state: dict, mdev_groups: set[int]) -> dict[int, dict]:
    """group id -> {kind, viable, blockers, viability, why_shared} for every group of `state`."""
    model = ownership(state)
    devices = {d["bdf"]: d for d in state.get("devices") or []}
    out = {}
    for g in state.get("groups") or []:
        gid = g["id"]
        members = [b for b in g.get("devices") or [] if b in devices]
        if not members:
            kind = "mdev" if gid in mdev_groups else "no-pci"
            why = ("VFIO's own group for a mediated device: isolation is the parent device's driver's job, not the IOMMU's"
                   if kind == "mdev" else "no PCI function in this group (the kernel lists only non-PCI devices)")
            out[gid] = {"kind": kind, "viable": None, "blockers": {}, "viability": why, "why_shared": []}
            continue
        viability = model.groups.get(gid)
        reasons = group_reasons(members, devices)
        if len(members) == 1:
            reasons = ["one function alone: the IOMMU isolates it from every other device"]
        out[gid] = {
            "kind": "pci", "viable": viability.viable if viability else None,
            "blockers": viability.blockers if viability else {},
            "viability": viability.reason if viability else "unknown",
            "why_shared": reasons,
        }
    return out


def holder_tenants(holders) -> dict[int, str | None]:
    """pid -> the declared tenant whose patterns match the holder (as the policy attributes it), or None."""
    intent = intent_current()
    out = {}
    for h in holders:
        tenant = intent.tenant_for_holder({"vm": h.vm, "cgroup": h.cgroup, "workload": h.workload})
        out[h.pid] = tenant.name if tenant else None
    return out


def host_ownership_facts(host: Host) -> dict[int, dict]:
    """group id -> explanation, for `host`'s current state."""
    state = host_state(host)
    mdev_groups = {m.get("iommu_group") for m in state.get("mdevs") or []}
    return group_explanations(state, mdev_groups)


def host_counts(host: Host) -> dict:
    """What the header's "N devices / M groups / K assigned" counts, in parts a person can check."""
    groups = list(host.groups.values_list("number", "name", "member_bdfs"))
    with_pci = set(host.devices.filter(group_number__isnull=False).values_list("group_number", flat=True).distinct())
    mdev_groups = set(Mdev.objects.filter(host=host, group_number__isnull=False).values_list("group_number", flat=True))
    mdev_only = sum(1 for number, _name, _m in groups if number not in with_pci and number in mdev_groups)
    return {
        "devices": host.device_count,
        "groups": host.group_count,
        "assigned": host.assigned_count,
        "groups_with_pci": sum(1 for number, _n, _m in groups if number in with_pci),
        "groups_mdev": mdev_only,
        "groups_other": sum(1 for number, _n, _m in groups if number not in with_pci and number not in mdev_groups),
        "mdevs": Mdev.objects.filter(host=host).count(),
        "devices_without_group": host.devices.filter(group_number__isnull=True).count(),
    }
