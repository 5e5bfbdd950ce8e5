"""Hostile host states for the engine's caps (tests/policy/test_limits.py and bench/policy.py).

Each stands for a compromised host whose agent reports whatever makes evaluation expensive.
"""
from __future__ import annotations

from .states import device, holder, node, root_port, state


def bdf(i: int) -> str:
    bus, rest = divmod(i, 32 * 8)
    slot, function = divmod(rest, 8)
    return f"0000:{bus + 1:02x}:{slot:02x}.{function}"


def holders_naming_every_group(n_holders: int = 5_000, n_groups: int = 2_000, hostname: str = "hostile") -> dict:
    """`n_holders` processes each holding every one of `n_groups` single-device VFIO groups and their nodes."""
    devices = [root_port("0000:00:01.0", 0)] + [device(bdf(g), driver="vfio-pci", group=g, parent="0000:00:01.0")
                                                 for g in range(1, n_groups + 1)]
    groups = list(range(1, n_groups + 1))
    nodes = [f"/dev/vfio/{g}" for g in groups] + ["/dev/vfio/vfio"]
    holders = []
    for i in range(n_holders):
        h = holder(10_000 + i, vm=None, groups=(), uid=2_000 + i)
        h["groups"], h["nodes"] = groups, nodes  # shared lists: the engine never writes to its input
        holders.append(h)
    return state(hostname=hostname, devices=devices, holders=holders)


def world_writable_nodes(n: int = 10_000, hostname: str = "hostile") -> dict:
    """`n` VFIO group nodes anyone may open: one would-be device-node-permissions finding each."""
    return state(hostname=hostname, nodes=[node(f"/dev/vfio/{g}", group=g, mode="0666") for g in range(n)])


def one_huge_group(n: int = 3_000, hostname: str = "hostile") -> dict:
    """One IOMMU group of `n` endpoints, all on vfio-pci and held by one VM."""
    members = [device(bdf(i), driver="vfio-pci", group=7, parent="0000:00:01.0") for i in range(n)]
    return state(hostname=hostname, devices=[root_port("0000:00:01.0", 0)] + members, holders=[holder(4242, vm="vm-big", groups=[7])])
