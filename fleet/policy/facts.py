"""One host's state indexed once for the rules: devices by BDF, groups by id, holders by device, owners.

Built from a snapshot-shaped dict (docs/snapshot.md) plus the declared intent and the
host's context; every rule reads these indexes instead of scanning lists again, which is
what keeps a 480-device host within the engine's time budget.

Who owns what is the ownership model's answer (`agent.ownership`), never the holder's own lists: a
device is assigned when it is bound to VFIO/UIO, and a holder owns it only where the kernel lets the
holder reach it — a group fd held on a non-viable group is *refused* (`refused_by_device`), not ownership.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from agent.drivers import is_host_dma_driver, is_userspace_driver
from agent.ownership import Ownership, holder_fds, ownership
from agent.topology import upstream
from agent.upgrade import CURRENT, node_devices

from .intent import EMPTY, Intent, Role, Tenant

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
    holders_by_device: dict = field(default_factory=dict)  # bdf -> [holder] that can reach it, best reach first
    refused_by_device: dict = field(default_factory=dict)  # bdf -> [holder] holding its group/cdev, refused by the kernel
    holders_by_group: dict = field(default_factory=dict)  # group id -> [holder] holding a fd of the group
    fds_by_pid: dict = field(default_factory=dict)  # pid -> the holder's DMA-relevant fds (schema 2 `fds`)
    model: Ownership | None = None
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
        # As given, not upgraded: a schema 1 document's holders get their fds from their node paths (what the upgrade
        # would give), and a hostile one (any value null) is evaluated as far as it goes instead of failing to upgrade.
        facts.model = ownership({**state, "schema": CURRENT})
        cdevs, uio = node_devices(state.get("vfio") or {})
        by_pid = {}
        for holder in state.get("holders") or []:
            by_pid[holder["pid"]] = holder
            facts.tenant_by_pid[holder["pid"]] = intent.tenant_for_holder(holder) if intent.tenants else None
            facts.fds_by_pid[holder["pid"]] = fds = holder_fds(holder, cdevs, uio)
            for gid in sorted({f["group"] for f in fds if f.get("kind") in ("group", "noiommu_group") and f.get("group") is not None}):
                facts.holders_by_group.setdefault(gid, []).append(holder)
        for bdf, owned in facts.model.devices.items():
            if owned.reach:
                facts.holders_by_device[bdf] = [by_pid[r.pid] for r in owned.reach if r.pid in by_pid]
            if owned.refused:
                facts.refused_by_device[bdf] = [by_pid[r.pid] for r in owned.refused if r.pid in by_pid]
        facts.assigned = {bdf for bdf, d in facts.devices.items() if is_userspace_driver(d.get("driver"))}
        facts.roles = intent.roles_for(facts.hostname, context.role, context.labels) if intent.roles else []
        return facts

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
            "reach": [r.as_dict() for r in self.model.devices[bdf].reach] if bdf in self.model.devices else [],
        }

    def upstream(self, bdf: str) -> list[str]:
        """The bridge chain above `bdf`, nearest first (from the `parent` fields)."""
        return upstream(bdf, self.devices)

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


# The fd kinds that give a process a VFIO or iommufd handle (a container, a group, a cdev, a device fd, an iommufd context).
VFIO_FD_KINDS = frozenset({"container", "group", "noiommu_group", "cdev", "device", "iommufd"})


def holds_vfio_or_iommufd(facts: "HostFacts", holder: dict) -> bool:
    return bool(holder.get("device_fds")) or any(f.get("kind") in VFIO_FD_KINDS for f in facts.fds_by_pid.get(holder["pid"], ()))
