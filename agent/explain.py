"""Why devices share an IOMMU group, in words a person reads at the terminal (DOMAIN.md §3).

Pure functions over a snapshot's `devices[]`. Groups cannot be predicted from config space (the
kernel's quirk tables decide first), so this never claims to be the cause: it names the isolation
gaps config space shows on the members' paths — a PCIe-to-PCI bridge (requests from conventional
PCI carry the bridge's ID), a root or downstream port without the ACS bits the kernel requires
(SV, RR, CR, UF), a multi-function device without ACS — and says so when it cannot tell.

It is the one explanation: `fleet-agent show` prints it and the server's group rules import it (the
agent's package is installed with the server), so both say the same sentences and neither rewords them.
"""
from __future__ import annotations

from .bdf import short_bdf, slot_of
from .topology import upstream

ACS_REQUIRED = ("sv", "rr", "cr", "uf")
_PORTS = {"root_port": "root port", "downstream_port": "switch downstream port"}


def and_list(items: list[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return ", ".join(items[:-1]) + f" and {items[-1]}" if len(items) > 1 else "".join(items)


def _caps(device: dict) -> dict:
    return device.get("capabilities") or {}


def port_type(device: dict) -> str | None:
    return (_caps(device).get("pcie") or {}).get("port_type")


def is_conventional(device: dict) -> bool:
    """Known to have no PCIe capability (read from a config space of at least 256 bytes)."""
    pcie = _caps(device).get("pcie")
    return pcie is not None and pcie.get("present") is False


def acs_gap(device: dict) -> str | None:
    """What keeps this function's ACS from isolating, or None when SV/RR/CR/UF are all enabled."""
    acs = _caps(device).get("acs")
    if acs is None:
        return "ACS unknown (extended config space not readable: needs root)"
    if not acs.get("present"):
        return "no ACS"
    ctl = acs.get("ctl") or {}
    missing = [bit.upper() for bit in ACS_REQUIRED if not ctl.get(bit)]
    return f"ACS without {'/'.join(missing)} enabled" if missing else None


def _legacy_bridge(bdf: str, by_bdf: dict[str, dict]) -> str | None:
    """The nearest bridge above `bdf` that turns PCIe into conventional PCI, if `bdf` is conventional."""
    if not is_conventional(by_bdf.get(bdf) or {}):
        return None
    for up in upstream(bdf, by_bdf):
        device = by_bdf.get(up) or {}
        if port_type(device) == "pcie_to_pci_bridge" or (device.get("is_bridge") and is_conventional(device)):
            return up
    return None


def group_reasons(members: list[str], by_bdf: dict[str, dict]) -> list[str]:
    """Sentences saying why these members share a group, as far as config space tells; [] for one member."""
    if len(members) < 2:
        return []
    reasons: list[str] = []
    explained: set[str] = set()

    behind: dict[str, list[str]] = {}
    for bdf in members:
        bridge = _legacy_bridge(bdf, by_bdf)
        if bridge:
            behind.setdefault(bridge, []).append(bdf)
    for bridge, below in sorted(behind.items()):
        names = and_list([short_bdf(b) for b in below])
        itself = " (in this group too)" if bridge in members else ""
        reasons.append(f"{names} sit behind PCIe-to-PCI bridge {short_bdf(bridge)}{itself}: conventional PCI cannot "
                       "be isolated, its DMA carries the bridge's requester ID")
        explained.update(below + ([bridge] if bridge in members else []))

    slots: dict[str, list[str]] = {}
    for bdf in members:
        if bdf not in explained:
            slots.setdefault(slot_of(bdf), []).append(bdf)
    for slot, functions in sorted(slots.items()):
        gaps = {gap for b in functions if (gap := acs_gap(by_bdf.get(b) or {}))}
        if len(functions) > 1 and gaps:
            reasons.append(f"{and_list([short_bdf(b) for b in functions])} are functions of one multi-function device "
                           f"{short_bdf(slot)} with {' / '.join(sorted(gaps))}: the kernel cannot keep them apart")
            explained.update(functions)

    ports: dict[str, str] = {}
    for bdf in members:
        if bdf in explained:
            continue
        for up in upstream(bdf, by_bdf):
            device = by_bdf.get(up) or {}
            kind = _PORTS.get(port_type(device) or "")
            gap = acs_gap(device) if kind else None
            if gap:
                ports.setdefault(up, f"{kind} {short_bdf(up)} has {gap}: devices below it are not isolated from "
                                     "each other or from its peers")
                explained.add(bdf)
    reasons += [ports[p] for p in sorted(ports)]

    rest = [b for b in members if b not in explained]
    if rest and (len(rest) > 1 or not reasons):
        unknown = any(_caps(by_bdf.get(b) or {}).get("acs") is None for b in rest)
        reasons.append(f"config space does not show why {and_list([short_bdf(b) for b in rest])} are grouped"
                       + (" (some ACS state unknown: run as root)" if unknown else
                          ": a platform quirk or firmware decides"))
    return reasons
