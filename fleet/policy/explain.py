"""Why devices share an IOMMU group, as far as config space says (DOMAIN.md §3).

Groups cannot be predicted from config space (quirks decide first), so this never claims
to be the cause, only names the isolation gaps on the members' bridge chains: a
PCIe-to-PCI bridge, a switch/root port without ACS (or with SV/RR/CR/UF not all enabled),
a multi-function device without ACS. Unknown (config space unreadable) is said as such.
"""
from __future__ import annotations

from agent.explain import acs_gap as _agent_acs_gap
from agent.explain import and_list

from .facts import HostFacts

PORT_NAMES = {"root_port": "root port", "downstream_port": "switch downstream port", "upstream_port": "switch upstream port"}


def _port_type(device: dict) -> str | None:
    pcie = (device.get("capabilities") or {}).get("pcie") or {}
    return pcie.get("port_type")


def acs_gap(device: dict) -> str | None:
    """'has no ACS' / 'has ACS without …' / 'ACS unknown …' for a port, None when ACS isolates.

    The agent's reading of the ACS bits (the same DOMAIN.md §3 rule), worded to follow a port's name.
    """
    gap = _agent_acs_gap(device)
    if gap is None or gap.startswith("ACS unknown"):
        return gap and "ACS unknown (extended config space not readable)"
    return f"has {gap}"


def group_reasons(facts: HostFacts, members: list[str]) -> list[str]:
    """Sentences naming the bridges and functions that explain why `members` share a group."""
    reasons: list[str] = []
    seen: set[str] = set()

    def add(text: str) -> None:
        if text not in seen:
            seen.add(text)
            reasons.append(text)

    endpoints = [b for b in members if facts.is_endpoint(b)]
    for bdf in endpoints:
        for up in facts.upstream(bdf):
            device = facts.devices.get(up) or {}
            ptype = _port_type(device)
            conventional_bridge = device.get("is_bridge") and ((device.get("capabilities") or {}).get("pcie") or {}).get("present") is False
            if ptype == "pcie_to_pci_bridge" or conventional_bridge:
                add(f"PCIe-to-PCI bridge {up}: conventional PCI devices behind it cannot be isolated")
                break
            if ptype in ("root_port", "downstream_port"):
                gap = acs_gap(device)
                if gap:
                    add(f"{PORT_NAMES[ptype]} {up} {gap}")
    slots: dict[str, list[str]] = {}
    for bdf in endpoints:
        slots.setdefault(bdf.rsplit(".", 1)[0], []).append(bdf)
    for slot, functions in sorted(slots.items()):
        if len(functions) < 2:
            continue
        without = [b for b in functions if facts.devices[b].get("multifunction") and acs_gap(facts.devices[b])]
        if without:
            add(f"multi-function device {slot} without ACS ({', '.join(without)})")
    return reasons


def because(facts: HostFacts, group_id, members: list[str]) -> str:
    """'A and B share group N because …' for remediations (the bridges appear in the reasons)."""
    reasons = group_reasons(facts, members)
    endpoints = [b for b in members if facts.is_endpoint(b)]
    shared = and_list(endpoints if len(endpoints) > 1 else members)
    if reasons:
        return f"{shared} share group {group_id} because " + "; ".join(reasons)
    return f"{shared} share group {group_id} (config space does not show why: a platform quirk or firmware decides)"
