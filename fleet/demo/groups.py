"""IOMMU groups derived from a PCI tree the way Linux's `pci_device_group()` does.

Real groups come from the kernel (`/sys/kernel/iommu_groups` is the truth); this is
only for synthetic hosts built from hwloc trees, which have no groups. It follows
drivers/iommu/iommu.c and drivers/pci/pci.c (`pci_acs_enabled`,
`pci_acs_path_enabled`), without the vendor quirk tables:

- Walk up from a device: while the bridge above it does not have ACS enabled on
  the whole path to the root, the device joins that bridge's group.
- A conventional PCI bridge (PCIe-to-PCI) never counts as isolating, so a
  conventional device behind one shares the bridge's group (its requests alias
  to the bridge's requester id anyway).
- Root and downstream ports isolate when their ACS control has SV, RR, CR and UF
  set; upstream switch ports and single-function endpoints need no ACS.
- Functions of one multi-function slot without ACS share a group; SR-IOV VFs
  never count as multi-function.
- `pcie_acs_override=downstream,multifunction` (an out-of-tree patch some
  distributions carry) makes the kernel pretend those ACS checks pass.

Input and output are snapshot-shaped (docs/snapshot.md `devices[]`): the
function only reads `bdf`, `parent`, `multifunction`, `sriov.physfn` and
`capabilities.{pcie,acs}`.
"""
from __future__ import annotations

REQUIRED_ACS = ("sv", "rr", "cr", "uf")
_PORTS = {"root_port", "downstream_port"}


def _port_type(dev: dict) -> str | None:
    pcie = (dev.get("capabilities") or {}).get("pcie") or {}
    if not pcie.get("present"):
        return None
    return pcie.get("port_type")


def _acs_flags_enabled(dev: dict) -> bool:
    acs = (dev.get("capabilities") or {}).get("acs") or {}
    ctl = acs.get("ctl") or {}
    return bool(acs.get("present")) and all(ctl.get(flag) for flag in REQUIRED_ACS)


def _is_virtfn(dev: dict) -> bool:
    return bool((dev.get("sriov") or {}).get("physfn"))


def acs_enabled(dev: dict, *, override: frozenset[str] = frozenset()) -> bool:
    """`pci_acs_enabled(dev, SV|RR|CR|UF)` without quirks."""
    port = _port_type(dev)
    if port is None or port in ("pcie_to_pci_bridge", "pci_to_pcie_bridge", "rc_event_collector"):
        return False
    if port in _PORTS:
        return "downstream" in override or _acs_flags_enabled(dev)
    if dev.get("multifunction") and not _is_virtfn(dev):
        return "multifunction" in override or _acs_flags_enabled(dev)
    return True


def derive_groups(devices: list[dict], *, acs_override: str | None = None) -> dict[str, int]:
    """BDF -> group number for every device, numbered in BDF order of each group's first member."""
    override = frozenset(p.strip() for p in (acs_override or "").split(",") if p.strip())
    by_bdf = {d["bdf"]: d for d in devices}
    path_ok: dict[str, bool] = {}

    def acs_path_enabled(bdf: str) -> bool:
        # pci_acs_path_enabled(start, NULL): the bridge and every bridge above it.
        if bdf not in path_ok:
            dev = by_bdf[bdf]
            parent = dev.get("parent")
            ok = acs_enabled(dev, override=override)
            if ok and parent in by_bdf:
                ok = acs_path_enabled(parent)
            path_ok[bdf] = ok
        return path_ok[bdf]

    def depth(bdf: str) -> int:
        n = 0
        parent = by_bdf[bdf].get("parent")
        while parent in by_bdf:
            n += 1
            parent = by_bdf[parent].get("parent")
        return n

    # Parents before children (the kernel probes top-down), so an anchor is always grouped first.
    order = sorted(by_bdf, key=lambda b: (depth(b), b))
    slots: dict[str, list[str]] = {}
    for bdf in order:
        slots.setdefault(bdf[:10], []).append(bdf)
    group_of: dict[str, int] = {}
    next_key = 0
    for bdf in order:
        dev = by_bdf[bdf]
        anchor = bdf
        parent = dev.get("parent")
        while parent in by_bdf and not acs_path_enabled(parent):
            anchor = parent
            parent = by_bdf[parent].get("parent")
        if anchor != bdf:
            group_of[bdf] = group_of[anchor]
            continue
        sibling = _unisolated_sibling(dev, slots[bdf[:10]], by_bdf, group_of, override)
        if sibling is not None:
            group_of[bdf] = group_of[sibling]
            continue
        group_of[bdf] = next_key
        next_key += 1

    # Renumber in BDF order of first member, as a fresh boot's probe order would roughly give.
    first_member: dict[int, str] = {}
    for bdf in sorted(group_of):
        first_member.setdefault(group_of[bdf], bdf)
    number = {key: n for n, key in enumerate(sorted(first_member, key=first_member.get))}
    return {bdf: number[key] for bdf, key in group_of.items()}


def _unisolated_sibling(dev: dict, slot: list[str], by_bdf: dict, group_of: dict, override: frozenset[str]) -> str | None:
    """`get_pci_function_alias_group()`: another function of the same slot, also without ACS, already grouped."""
    if not dev.get("multifunction") or acs_enabled(dev, override=override):
        return None
    for other in slot:
        if other == dev["bdf"] or other not in group_of or acs_enabled(by_bdf[other], override=override):
            continue
        return other
    return None
