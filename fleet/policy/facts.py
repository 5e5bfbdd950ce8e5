"""One host's state indexed once for the rules: devices by BDF, groups by id, holders by device, owners.

Built from a snapshot-shaped dict (docs/snapshot.md) plus the declared intent and the
host's context; every rule reads these indexes instead of scanning lists again, which is
what keeps a 480-device host within the engine's time budget.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agent.drivers import is_host_dma_driver, is_userspace_driver

from .intent import EMPTY, Intent, Role, Tenant

VFIO_NODE_KINDS = frozenset({"container", "group", "noiommu_group", "device", "iommufd"})


@dataclass(frozen=True)
class GroupView:
    members: list
    endpoints: list
    assigned: list
    host_dma: list


@dataclass(frozen=True)
class HostContext:
    """What the engine needs besides the state: the host's identity in intent and the clock."""

    hostname: str = ""
    role: str = ""
    labels: tuple[str, ...] = ()
    now: datetime | None = None
    last_seen: datetime | None = None
    default_stale_after_seconds: int = 180
    # The fleet around this host: PASIDs each tenant uses on the *other* hosts (tenant quotas are fleet-wide).
    tenant_pasids_elsewhere: dict = field(default_factory=dict)


@dataclass
class Owner:
    """Who a device belongs to: a holder (VM/workload) and the tenant its patterns map to."""

    pid: int | None
    vm: str | None
    workload: str | None
    tenant: str | None
    labels: tuple[str, ...]

    def as_dict(self) -> dict:
        return {"pid": self.pid, "vm": self.vm, "workload": self.workload, "tenant": self.tenant, "labels": list(self.labels)}


@dataclass
class HostFacts:
    state: dict
    intent: Intent
    context: HostContext
    hostname: str = ""
    devices: dict = field(default_factory=dict)  # bdf -> device
    groups: dict = field(default_factory=dict)  # id -> group
    units: dict = field(default_factory=dict)  # name -> unit
    holders_by_device: dict = field(default_factory=dict)  # bdf -> [holder]
    holders_by_group: dict = field(default_factory=dict)  # group id -> [holder]
    tenant_by_pid: dict = field(default_factory=dict)  # pid -> Tenant | None
    assigned: set = field(default_factory=set)  # BDFs assigned to userspace
    roles: list = field(default_factory=list)
    _group_views: dict = field(default_factory=dict)

    @classmethod
    def build(cls, state: dict, intent: Intent = EMPTY, context: HostContext | None = None) -> "HostFacts":
        context = context or HostContext()
        host = state.get("host") or {}
        facts = cls(state=state, intent=intent, context=context, hostname=context.hostname or host.get("hostname") or "")
        facts.devices = {d["bdf"]: d for d in state.get("devices") or []}
        facts.groups = {g["id"]: g for g in state.get("groups") or []}
        facts.units = {u["name"]: u for u in (state.get("iommu") or {}).get("units") or []}
        for holder in state.get("holders") or []:
            facts.tenant_by_pid[holder["pid"]] = intent.tenant_for_holder(holder) if intent.tenants else None
            held = set(holder.get("devices") or [])
            for gid in holder.get("groups") or []:
                facts.holders_by_group.setdefault(gid, []).append(holder)
                held.update((facts.groups.get(gid) or {}).get("devices") or [])
            for bdf in held:
                facts.holders_by_device.setdefault(bdf, []).append(holder)
        facts.assigned = {bdf for bdf, d in facts.devices.items() if is_userspace_driver(d.get("driver"))}
        # Bridges in a held group are not handed to userspace (VFIO never exposes them), only the endpoints.
        facts.assigned.update(bdf for bdf in facts.holders_by_device
                              if bdf in facts.devices and not facts.devices[bdf].get("is_bridge") and facts._holds_dma_fd(bdf))
        facts.roles = intent.roles_for(facts.hostname, context.role, context.labels) if intent.roles else []
        return facts

    def _holds_dma_fd(self, bdf: str) -> bool:
        return any(_is_dma_holder(h) for h in self.holders_by_device.get(bdf, ()))

    # --- questions rules ask -------------------------------------------------------------

    def is_host_dma(self, bdf: str) -> bool:
        """Bound to a driver that makes the kernel a DMA owner (not VFIO/UIO, pcieport, pci-stub)."""
        return bdf not in self.assigned and is_host_dma_driver(self.devices[bdf].get("driver"))

    def is_endpoint(self, bdf: str) -> bool:
        return not self.devices[bdf].get("is_bridge")

    def members(self, group_id) -> list[str]:
        return self.group_view(group_id).members

    def group_view(self, group_id) -> "GroupView":
        """Members split by ownership, computed once per group for all group rules."""
        view = self._group_views.get(group_id)
        if view is None:
            members = [b for b in (self.groups.get(group_id) or {}).get("devices") or [] if b in self.devices]
            view = GroupView(
                members=members,
                endpoints=[b for b in members if self.is_endpoint(b)],
                assigned=[b for b in members if b in self.assigned],
                host_dma=[b for b in members if self.is_host_dma(b)],
            )
            self._group_views[group_id] = view
        return view

    def assigned_groups(self) -> list:
        """Ids of groups with at least one assigned member, sorted."""
        return sorted(g for g in {self.devices[b].get("iommu_group") for b in self.assigned} if g in self.groups)

    def owners_of(self, bdf: str) -> list[Owner]:
        out = []
        for holder in self.holders_by_device.get(bdf, ()):
            tenant: Tenant | None = self.tenant_by_pid.get(holder["pid"])
            out.append(Owner(pid=holder["pid"], vm=holder.get("vm"), workload=holder.get("workload"),
                             tenant=tenant.name if tenant else None, labels=tenant.labels if tenant else ()))
        return out

    def member_evidence(self, bdf: str) -> dict:
        d = self.devices[bdf]
        return {
            "bdf": bdf,
            "driver": d.get("driver"),
            "class": d.get("class"),
            "vendor_device": f"{d.get('vendor_id')}:{d.get('device_id')}",
            "assigned": bdf in self.assigned,
            "owners": [o.as_dict() for o in self.owners_of(bdf)],
        }

    def upstream(self, bdf: str) -> list[str]:
        """The bridge chain above `bdf`, nearest first (from the `parent` fields)."""
        chain, seen = [], {bdf}
        parent = self.devices.get(bdf, {}).get("parent")
        while parent and parent not in seen:
            chain.append(parent)
            seen.add(parent)
            parent = self.devices.get(parent, {}).get("parent")
        return chain

    def unit_of(self, bdf: str) -> dict | None:
        d = self.devices.get(bdf) or {}
        name = d.get("iommu_unit") or (self.groups.get(d.get("iommu_group")) or {}).get("unit")
        return self.units.get(name) if name else None

    @property
    def expects_assignment(self) -> bool:
        return any(r.expects_assignment for r in self.roles)

    @property
    def roles_list(self) -> list[Role]:
        return self.roles


def _is_dma_holder(holder: dict) -> bool:
    """Holds a VFIO group/device fd, iommufd or UIO node (the container alone grants no device)."""
    nodes = holder.get("nodes") or []
    return bool(holder.get("groups") or holder.get("device_fds") or any(n != "/dev/vfio/vfio" for n in nodes))


def holds_vfio_or_iommufd(holder: dict) -> bool:
    nodes = holder.get("nodes") or []
    return bool(holder.get("device_fds")) or any(n.startswith("/dev/vfio/") or n == "/dev/iommu" for n in nodes)
