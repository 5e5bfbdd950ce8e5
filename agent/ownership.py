"""Who can actually reach each device's DMA, and through which I/O address space: the one ownership model.

A pure function of a snapshot-shaped document, used by `fleet-agent show`, the server's inventory
(owner columns, address-space rows) and the policy rules, so that no layer claims an ownership the
kernel did not grant. What the kernel enforces (DOMAIN.md §2):

- A device bound to a host DMA driver (or to none, pci-stub, pcieport) gives userspace nothing: VFIO
  hands out device fds only for devices bound to vfio-pci (or a variant); UIO only through `/dev/uioN`.
- VFIO never exposes a bridge (vfio-pci refuses any header type but normal).
- A group fd gives access only when the group is viable (every member on VFIO, pci-stub, pcieport
  or no driver; before 5.19 bridges were exempt too). Held on a non-viable group, the kernel answers
  GET_STATUS without VIABLE and SET_CONTAINER with EPERM: the holder is recorded as *refused*.
- A VFIO cdev fd names its device by a kernel link (`/sys/class/vfio-dev/vfioX/device`); binding it to
  an iommufd claims the group's DMA ownership and fails the same way on a non-viable group.

How certain each reach is:
- `kernel`: a kernel link or fdinfo proves it (cdev link, `/dev/uioN` link, 6.18+ `vfio-device-syspath`).
- `argv`: a held fd on the device's group or cdev, and the holder's own configuration names the device
  (QEMU `-device vfio-pci,host=`, libvirt hostdev, DPDK `-a`).
- `inferred`: only the held group fd says so (any VFIO endpoint of a viable held group may be opened).

Address spaces: every `/dev/vfio/vfio` fd is a legacy type1 container, every `/dev/iommu` fd an iommufd
context. Which groups or devices are attached to which is not visible from /proc on kernels before
6.18 (fdinfo has only pos/flags/mnt_id/ino): when a holder has one context of a kind, its reachable
groups/devices of that path are attributed to it (`inferred`, or `argv` when QEMU names the device with
`iommufd=`); with several contexts of one kind the attachment is reported unknown, never guessed.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from .drivers import DriverClass, driver_class
from .kernel import DMA_OWNERSHIP_SINCE, kernel_tuple
from .collectors.vfio import node_devices
from .upgrade import CURRENT, fds_from_nodes, upgrade

KERNEL, ARGV, INFERRED = "kernel", "argv", "inferred"
CERTAINTY_RANK = {KERNEL: 0, ARGV: 1, INFERRED: 2}

# How a holder reaches a device.
VIA_DEVICE_FD = "device-fd"       # an fd from VFIO_GROUP_GET_DEVICE_FD whose fdinfo names the device (6.18+)
VIA_CDEV = "cdev"                 # /dev/vfio/devices/vfioX (iommufd path)
VIA_GROUP = "group"               # /dev/vfio/N of a viable group
VIA_UIO = "uio"                   # /dev/uioN
VIA_GROUP_REFUSED = "group-refused"  # /dev/vfio/N held, but the group is not viable
VIA_CDEV_REFUSED = "cdev-refused"    # cdev held, but its group is not viable (bind fails)
REFUSED = frozenset({VIA_GROUP_REFUSED, VIA_CDEV_REFUSED})



@dataclass(frozen=True)
class Reach:
    """One holder's way to one device."""

    pid: int
    via: str
    certainty: str

    @property
    def refused(self) -> bool:
        return self.via in REFUSED

    def as_dict(self) -> dict:
        return {"pid": self.pid, "via": self.via, "certainty": self.certainty}


@dataclass(frozen=True)
class GroupViability:
    viable: bool
    # Members whose driver keeps userspace from claiming the group: {bdf: driver}.
    blockers: dict
    reason: str

    def as_dict(self) -> dict:
        return {"viable": self.viable, "blockers": dict(self.blockers), "reason": self.reason}


@dataclass
class DeviceOwnership:
    bdf: str
    binding: DriverClass
    reach: list = field(default_factory=list)    # [Reach] that grant access, best first
    refused: list = field(default_factory=list)  # [Reach] held but refused by the kernel

    @property
    def owner(self) -> Reach | None:
        return self.reach[0] if self.reach else None

    @property
    def owner_kind(self) -> str:
        """`userspace` (bound to VFIO/UIO, or reached by a holder), `host` (a host driver), `unbound`."""
        if self.binding in (DriverClass.VFIO, DriverClass.UIO) or self.reach:
            return "userspace"
        return "unbound" if self.binding is DriverClass.NONE else "host"

    def as_dict(self) -> dict:
        return {"bdf": self.bdf, "binding": self.binding.value, "owner_kind": self.owner_kind,
                "owner_pid": self.owner.pid if self.owner else None,
                "reach": [r.as_dict() for r in self.reach], "refused": [r.as_dict() for r in self.refused]}


@dataclass
class AddressSpace:
    """A VFIO type1 container or an iommufd context: one fd of one holder."""

    pid: int
    fd: int | None
    kind: str                      # "vfio-container" | "iommufd"
    backend: str                   # "legacy" | "iommufd"
    groups: dict = field(default_factory=dict)   # group id -> certainty
    devices: dict = field(default_factory=dict)  # bdf -> certainty
    attachment_known: bool = True  # False: the holder has several contexts of this kind, attachments not visible
    pinned_kb: int | None = None   # the holder's VmPin when this is its only address space, else None
    locked_kb: int | None = None

    @property
    def key(self) -> str:
        return f"{self.pid}:{self.fd if self.fd is not None else self.kind}"

    def as_dict(self) -> dict:
        return {"key": self.key, "pid": self.pid, "fd": self.fd, "kind": self.kind, "backend": self.backend,
                "groups": [{"group": g, "certainty": c} for g, c in sorted(self.groups.items())],
                "devices": [{"device": b, "certainty": c} for b, c in sorted(self.devices.items())],
                "attachment_known": self.attachment_known, "pinned_kb": self.pinned_kb, "locked_kb": self.locked_kb}


@dataclass
class Ownership:
    devices: dict      # bdf -> DeviceOwnership
    groups: dict       # group id -> GroupViability
    address_spaces: list  # [AddressSpace], by (pid, fd)

    def owner_of(self, bdf: str) -> Reach | None:
        d = self.devices.get(bdf)
        return d.owner if d else None

    def reached_by(self, pid: int) -> list[str]:
        """BDFs the holder can actually reach."""
        return sorted(b for b, d in self.devices.items() if any(r.pid == pid for r in d.reach))

    def as_dict(self) -> dict:
        return {"devices": [d.as_dict() for _, d in sorted(self.devices.items())],
                "groups": [{"group": g, **v.as_dict()} for g, v in sorted(self.groups.items())],
                "address_spaces": [a.as_dict() for a in self.address_spaces]}


# ---- pieces ---------------------------------------------------------------------------------

def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def group_viability(members: list[dict], kernel: tuple[int, int] | None) -> GroupViability:
    """Whether userspace can claim a group with these member devices, and which members stop it."""
    bridges_exempt = kernel is not None and kernel < DMA_OWNERSHIP_SINCE
    blockers = {}
    for d in members:
        cls = driver_class(d.get("driver"))
        if cls in (DriverClass.VFIO, DriverClass.NON_DMA, DriverClass.NONE):
            continue
        if bridges_exempt and d.get("is_bridge"):
            continue
        blockers[d.get("bdf")] = d.get("driver")
    if not blockers:
        return GroupViability(True, {}, "every member is on vfio-pci, pci-stub, pcieport or no driver")
    listed = ", ".join(f"{b} on {drv}" for b, drv in sorted(blockers.items()))
    return GroupViability(False, blockers, f"not viable: {listed} (a host DMA driver) keeps userspace from claiming the group")


def holder_fds(holder: dict, cdev_devices: dict[str, str], uio_devices: dict[str, str]) -> list[dict]:
    """The holder's DMA-relevant fds (`{fd, kind, group, device, device_source}`); a document without
    `fds` (hand-made, or schema 1 not upgraded) gets them from its node paths."""
    fds = holder.get("fds")
    if isinstance(fds, list):
        return [f for f in fds if isinstance(f, dict)]
    return fds_from_nodes(_list(holder.get("nodes")), cdev_devices, uio_devices)


def holder_claims(holder: dict) -> dict[str, str | None]:
    """BDF -> the backend the holder's own configuration names the device with (`iommufd`, `legacy`, None unknown).

    Schema 2 sends `claims[]` (`{device, source, backend}`: QEMU `-device vfio-pci,host=`, libvirt
    hostdevs, DPDK `-a`). Schema 1's `devices` also listed every member of a held group, so it proves
    no claim: without `claims` there are none (reaches stay `inferred`, never overstated).
    """
    claims = holder.get("claims")
    if not isinstance(claims, list):
        return {}
    return {c["device"]: c.get("backend") for c in claims if isinstance(c, dict) and isinstance(c.get("device"), str)}


def _better(a: Reach, b: Reach) -> bool:
    return (CERTAINTY_RANK[a.certainty], a.pid) < (CERTAINTY_RANK[b.certainty], b.pid)


# ---- the model ------------------------------------------------------------------------------

def ownership(doc: dict) -> Ownership:
    """The ownership model of one snapshot document (schema 1 or 2)."""
    if doc.get("schema", CURRENT) != CURRENT:
        doc = upgrade(doc)
    devices = {d["bdf"]: d for d in _list(doc.get("devices")) if isinstance(d, dict) and isinstance(d.get("bdf"), str)}
    kernel = kernel_tuple(_dict(doc.get("host")).get("kernel"))
    groups_members: dict[int, list[str]] = {}
    for g in _list(doc.get("groups")):
        if isinstance(g, dict) and isinstance(g.get("id"), int):
            groups_members[g["id"]] = [b for b in _list(g.get("devices")) if b in devices]
    viability = {gid: group_viability([devices[b] for b in members], kernel) for gid, members in groups_members.items()}
    group_of = {b: gid for gid, members in groups_members.items() for b in members}

    cdev_devices, uio_devices = node_devices(_dict(doc.get("vfio")))

    result = {b: DeviceOwnership(b, driver_class(d.get("driver"))) for b, d in devices.items()}
    spaces: list[AddressSpace] = []
    holders = sorted((h for h in _list(doc.get("holders")) if isinstance(h, dict) and isinstance(h.get("pid"), int)),
                     key=lambda h: h["pid"])
    for holder in holders:
        pid = holder["pid"]
        fds = holder_fds(holder, cdev_devices, uio_devices)
        claims = holder_claims(holder)
        proven = {f["device"] for f in fds if f.get("kind") == "device" and f.get("device")}
        reached: dict[str, Reach] = {}
        refused: dict[str, Reach] = {}

        def offer(bdf: str, via: str, certainty: str) -> None:
            d = devices.get(bdf)
            if d is None or d.get("is_bridge"):
                return  # VFIO never exposes a bridge
            binding = driver_class(d.get("driver"))
            if via == VIA_UIO:
                if binding is not DriverClass.UIO:
                    return
            elif binding is not DriverClass.VFIO:
                return  # a host-driven, stubbed or unbound device gives this fd nothing
            candidate = Reach(pid, via, certainty)
            if via in REFUSED:
                refused.setdefault(bdf, candidate)
            elif bdf not in reached or _better(candidate, reached[bdf]):
                reached[bdf] = candidate

        for f in fds:
            kind = f.get("kind")
            if kind in ("group", "noiommu_group") and isinstance(f.get("group"), int):
                gid = f["group"]
                viable = viability.get(gid)
                for bdf in groups_members.get(gid, []):
                    if viable is not None and not viable.viable:
                        offer(bdf, VIA_GROUP_REFUSED, KERNEL)
                    elif bdf in proven:
                        offer(bdf, VIA_DEVICE_FD, KERNEL)
                    else:
                        offer(bdf, VIA_GROUP, ARGV if bdf in claims else INFERRED)
            elif kind == "cdev" and f.get("device"):
                bdf = f["device"]
                gid = group_of.get(bdf)
                if gid is not None and not viability[gid].viable:
                    offer(bdf, VIA_CDEV_REFUSED, KERNEL)
                else:
                    offer(bdf, VIA_CDEV, KERNEL)
            elif kind == "uio" and f.get("device"):
                offer(f["device"], VIA_UIO, KERNEL)
            elif kind == "device" and f.get("device"):
                bdf = f["device"]
                gid = group_of.get(bdf)
                if gid is None or viability[gid].viable:
                    offer(bdf, VIA_DEVICE_FD, KERNEL)
        for bdf, reach in reached.items():
            result[bdf].reach.append(reach)
        for bdf, reach in refused.items():
            if bdf not in reached:
                result[bdf].refused.append(reach)
        spaces.extend(_address_spaces(holder, fds, claims, reached, group_of))

    for d in result.values():
        d.reach.sort(key=lambda r: (CERTAINTY_RANK[r.certainty], r.pid))
        d.refused.sort(key=lambda r: r.pid)
    return Ownership(devices=result, groups=viability, address_spaces=spaces)


def _address_spaces(holder: dict, fds: list[dict], claims: dict, reached: dict[str, Reach],
                    group_of: dict[str, int]) -> list[AddressSpace]:
    pid = holder["pid"]
    containers = [f for f in fds if f.get("kind") == "container"]
    contexts = [f for f in fds if f.get("kind") == "iommufd"]
    spaces = [AddressSpace(pid, f.get("fd"), "vfio-container", "legacy", attachment_known=len(containers) == 1)
              for f in containers]
    spaces += [AddressSpace(pid, f.get("fd"), "iommufd", "iommufd", attachment_known=len(contexts) == 1)
               for f in contexts]
    by_group = [r for r in reached.items() if r[1].via in (VIA_GROUP, VIA_DEVICE_FD)]
    by_cdev = [r for r in reached.items() if r[1].via == VIA_CDEV]
    if len(containers) == 1:
        space = spaces[0]
        for bdf, reach in by_group:
            gid = group_of.get(bdf)
            # Only a viable group can be attached (SET_CONTAINER); the attachment itself is not visible.
            if gid is not None:
                space.groups[gid] = INFERRED
            space.devices[bdf] = reach.certainty if reach.certainty != KERNEL else INFERRED
    if len(contexts) == 1:
        space = spaces[len(containers)]
        for bdf, _reach in by_cdev:
            space.devices[bdf] = ARGV if claims.get(bdf) == "iommufd" else INFERRED
            gid = group_of.get(bdf)
            if gid is not None:
                space.groups.setdefault(gid, space.devices[bdf])
    if len(spaces) == 1:
        spaces[0].pinned_kb = holder.get("vm_pinned_kb") if isinstance(holder.get("vm_pinned_kb"), int) else None
        spaces[0].locked_kb = holder.get("vm_locked_kb") if isinstance(holder.get("vm_locked_kb"), int) else None
    return spaces
