"""Interrupt isolation: unsafe-interrupt module parameters, Intel units without interrupt remapping."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding
from .iommu import _truthy

PARAMS = ("type1_allow_unsafe_interrupts", "iommufd_allow_unsafe_interrupts")


def unsafe_interrupts(facts: HostFacts) -> list[Finding]:
    params = ((facts.state.get("vfio") or {}).get("parameters") or {})
    unsafe = {p: params.get(p) for p in PARAMS if _truthy(params.get(p))}
    no_ir = sorted(n for n, u in facts.units.items()
                   if u.get("vendor") == "intel" and (u.get("features") or {}).get("interrupt_remapping") is False)
    no_ir = no_ir if facts.assigned else []
    if not (unsafe or no_ir):
        return []
    why = ("allow_unsafe_interrupts is set" if unsafe else
           f"IOMMU unit {', '.join(no_ir)} has no interrupt remapping (ecap IR=0)")
    return [Finding(
        "unsafe-interrupts", "host", facts.hostname,
        f"{why}, so an assigned device can inject arbitrary MSIs into the host.",
        evidence={"parameters": unsafe, "units_without_ir": {n: (facts.units[n].get("registers") or {}).get("ecap") for n in no_ir},
                  "assigned": sorted(facts.assigned)},
        remediation="unset allow_unsafe_interrupts (vfio_iommu_type1 / iommufd module options) and use hardware with interrupt "
                    "remapping (intremap on); do not assign devices on hosts without it.",
    )]


RULES = (unsafe_interrupts,)
