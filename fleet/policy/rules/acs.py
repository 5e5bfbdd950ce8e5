"""ACS: overridden on the command line; ATS on assigned devices whose upstream ports do not enforce Translation Blocking."""
from __future__ import annotations

from ..facts import HostFacts
from ..findings import Finding


def acs_override(facts: HostFacts) -> list[Finding]:
    flags = (facts.state.get("host") or {}).get("cmdline_flags") or {}
    override = flags.get("pcie_acs_override")
    pci_acs = list(flags.get("pci_acs") or [])
    if override is None and not pci_acs:
        return []
    if override is not None:
        message = f"pcie_acs_override={override} is on the kernel command line: IOMMU groups no longer reflect hardware isolation."
    else:
        message = f"pci={','.join(pci_acs)} changes ACS settings: IOMMU groups may not reflect hardware isolation."
    return [Finding(
        "acs-override", "host", facts.hostname, message,
        evidence={"pcie_acs_override": override, "pci_acs": pci_acs, "cmdline": (facts.state.get("host") or {}).get("cmdline")},
        remediation="remove pcie_acs_override= (and pci=disable_acs_redir=/config_acs=) from the kernel command line and "
                    "place devices that need isolation behind ports with real ACS.",
    )]


def _tb_gaps(facts: HostFacts, bdf: str) -> list[dict]:
    gaps = []
    for up in facts.upstream(bdf):
        device = facts.devices.get(up) or {}
        ptype = ((device.get("capabilities") or {}).get("pcie") or {}).get("port_type")
        if ptype not in ("root_port", "downstream_port"):
            continue
        acs = (device.get("capabilities") or {}).get("acs")
        if acs is None:
            continue  # unknown is not a finding
        tb = bool(acs.get("present") and (acs.get("ctl") or {}).get("tb"))
        if not tb:
            gaps.append({"port": up, "port_type": ptype, "acs_present": bool(acs.get("present")),
                         "tb_enabled": bool((acs.get("ctl") or {}).get("tb"))})
    return gaps


def ats_without_tb(facts: HostFacts) -> list[Finding]:
    out = []
    for bdf in sorted(facts.assigned):
        ats = (facts.devices[bdf].get("capabilities") or {}).get("ats") or {}
        if not ats.get("enabled"):
            continue
        gaps = _tb_gaps(facts, bdf)
        if not gaps:
            continue
        ports = ", ".join(g["port"] for g in gaps)
        out.append(Finding(
            "ats-without-tb", "device", bdf,
            f"{bdf} is assigned with ATS enabled but upstream port {ports} does not enforce ACS Translation Blocking, "
            "so its translated requests bypass the IOMMU.",
            evidence={"bdf": bdf, "ats": ats, "upstream_without_tb": gaps, "owners": [o.as_dict() for o in facts.owners_of(bdf)]},
            remediation=f"boot with pci=noats (or disable ATS on {bdf}) for assigned devices, or enable ACS TB on {ports}.",
        ))
    return out


RULES = (acs_override, ats_without_tb)
