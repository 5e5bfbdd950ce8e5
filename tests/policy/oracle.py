"""The findings each capture's topology implies, derived from ground truth only (see truth.py).

Rules the ground truth cannot show firing in these captures (stated in the README: no mdev,
no PASID capability, no no-IOMMU nodes; no intent, baseline or clock given) are
expected absent; the per-rule tests check those on hand-made states.
"""
from __future__ import annotations

import re

from .truth import UIO, Truth

OFF_FLAGS = ("intel_iommu=off", "amd_iommu=off", "iommu=off")


def expected_findings(t: Truth) -> set[tuple[str, str, str]]:
    out: set[tuple[str, str, str]] = set()
    assigned, host_dma = t.assigned(), t.host_dma()
    iommu_on = bool(t.groups) or t.intel_cap is not None
    if assigned and (not iommu_on or any(f in t.cmdline.split() for f in OFF_FLAGS)):
        out.add(("iommu-disabled", "host", t.hostname))
    for bdf in assigned:
        if t.drivers.get(bdf) in UIO:
            out.add(("uio-driver", "device", bdf))
    for gid, members in t.groups.items():
        endpoints = {m for m in members if not t.is_bridge(m)}
        if members & assigned and members & host_dma:
            out.add(("group-mixed-ownership", "group", str(gid)))
        elif members & assigned and len(endpoints) >= 2:
            out.add(("group-shared-p2p", "group", str(gid)))
        if len({t.vm_devices[m] for m in members if m in t.vm_devices}) > 1:
            out.add(("group-split-owners", "group", str(gid)))
    if assigned and "identity" in t.group_types.values():
        out.add(("identity-domain-multitenant", "host", t.hostname))
    if t.intel_cap is not None and (t.intel_cap >> 7) & 1:
        out.add(("nested-host", "host", t.hostname))
    if assigned and t.intel_ecap is not None and not (t.intel_ecap >> 3) & 1:
        out.add(("unsafe-interrupts", "host", t.hostname))
    if "pcie_acs_override=" in t.cmdline:
        out.add(("acs-override", "host", t.hostname))
    release = tuple(int(x) for x in re.match(r"(\d+)\.(\d+)", t.kernel).groups())
    if assigned and release < (5, 19):
        out.add(("old-kernel-viability", "host", t.hostname))
    for bdf in assigned & t.ats_enabled:
        out.add(("ats-without-tb", "device", bdf))  # every root port in these captures shows ACSCtl TransBlk-
    for path, mode in t.node_modes.items():
        # Group nodes and cdevs open to group/other, /dev/iommu looser than 0660 (the container node is meant to be 0666).
        if path == "/dev/iommu" and mode & 0o117 or path != "/dev/vfio/vfio" and path != "/dev/iommu" and mode & 0o077:
            out.add(("device-node-permissions", "node", path))
    return out
