"""IOMMU groups from `/sys/kernel/iommu_groups`, cross-checked with each device's `iommu_group` link.

The groups directory is the kernel's truth; the per-device links are the second witness. When
one side is missing (a partial tree, a racing hot-plug), the other fills in and a warning says so.
"""
from __future__ import annotations

import os
import re

from ..bdf import is_bdf
from ..integers import parse_int
from ..kernel import kernel_tuple
from ..sysfs import Reader
from .iommu_units import CLASS_IOMMU
from .pci_files import device_dir

GROUPS = "/sys/kernel/iommu_groups"
_REGION_RE = re.compile(r"^(0x[0-9a-fA-F]+)\s+(0x[0-9a-fA-F]+)\s+(\S+)$")


def parse_reserved_regions(text: str) -> tuple[list[dict], list[str]]:
    """Lines `0x%016llx 0x%016llx <type>` -> ([{start, end, type}], [unparsable lines])."""
    regions, bad = [], []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        m = _REGION_RE.match(line)
        if m:
            regions.append({"start": m.group(1).lower(), "end": m.group(2).lower(), "type": m.group(3)})
        else:
            bad.append(line)
    return regions, bad


def _empty_group(gid: int) -> dict:
    return {"id": gid, "type": None, "name": None, "devices": [], "reserved_regions": [], "unit": None}


# Kernel release from which every group has the file; before it, absence is "unknown", not an error.
TYPE_SINCE = (5, 2)
RESERVED_REGIONS_SINCE = (4, 11)


def _read_group(rd: Reader, gid: int, kernel: tuple[int, int] | None) -> dict:
    base = f"{GROUPS}/{gid}"
    group = _empty_group(gid)
    # `name` exists only for VFIO's synthetic groups.
    group["type"] = rd.text(f"{base}/type", missing_ok=kernel is None or kernel < TYPE_SINCE)
    group["name"] = rd.text(f"{base}/name", missing_ok=True)
    text = rd.text(f"{base}/reserved_regions", missing_ok=kernel is None or kernel < RESERVED_REGIONS_SINCE)
    if text is not None:
        group["reserved_regions"], bad = parse_reserved_regions(text)
        if bad:
            rd.warn(f"{base}/reserved_regions", f"{len(bad)} unparsable line(s), first {bad[0][:60]!r}")
    members = []
    for name in rd.listdir(f"{base}/devices"):
        if is_bdf(name):
            _check_member_link(rd, f"{base}/devices/{name}", name)
            members.append(name)
        else:
            group.setdefault("other_devices", []).append(rd.printable(f"{base}/devices/{name}", name))
    group["devices"] = members
    return group


def _check_member_link(rd: Reader, kernel_path: str, bdf: str) -> None:
    """The kernel makes each member entry a link to the device's directory. The name is still taken
    as the member (the device's own iommu_group link is cross-checked later), but a damaged entry
    is worth a warning: the capture or the host is not what the kernel wrote."""
    p = rd.root.fspath(kernel_path)
    try:
        target = os.readlink(p)
    except OSError:
        rd.warn(kernel_path, "not a link to the device (garbled entry); member taken from its name")
        return
    if target.rstrip("/").rsplit("/", 1)[-1] != bdf:
        rd.warn(kernel_path, f"links to {rd.printable(kernel_path, target[:120])!r}, not to device {bdf}")
    elif not os.path.exists(p):
        rd.warn(kernel_path, "dangling link; member taken from its name")


def _check_listed_members(rd: Reader, groups: dict[int, dict], by_bdf: dict[str, dict]) -> set[str]:
    """Reconcile each listed member with its device's link (the directory wins); returns the listed BDFs."""
    listed = set()
    for gid, group in groups.items():
        for bdf in group["devices"]:
            listed.add(bdf)
            dev = by_bdf.get(bdf)
            if dev is None:
                rd.warn(f"{GROUPS}/{gid}/devices/{bdf}", "member not in /sys/bus/pci/devices")
            elif dev["iommu_group"] is None:
                rd.warn(f"{device_dir(bdf)}/iommu_group", f"missing; group {gid} taken from {GROUPS}")
                dev["iommu_group"] = gid
            elif dev["iommu_group"] != gid:
                rd.warn(f"{device_dir(bdf)}/iommu_group",
                        f"link says group {dev['iommu_group']} but {GROUPS}/{gid} lists it; using {gid}")
                dev["iommu_group"] = gid
    return listed


def _add_link_only_members(rd: Reader, groups: dict[int, dict], devices: list[dict], listed: set[str],
                           groups_dir_present: bool) -> None:
    """Devices whose link names a group that does not list them: the link is the only witness left."""
    for dev in devices:
        gid = dev["iommu_group"]
        if gid is None or dev["bdf"] in listed:
            continue
        if gid not in groups:
            groups[gid] = _empty_group(gid)
            if groups_dir_present:
                rd.warn(f"{GROUPS}/{gid}", "missing; membership taken from the devices' iommu_group links")
        else:
            rd.warn(f"{GROUPS}/{gid}/devices/{dev['bdf']}", "missing; member taken from the device's iommu_group link")
        groups[gid]["devices"].append(dev["bdf"])


def _fill_unit(rd: Reader, group: dict, by_bdf: dict[str, dict], unit_names: set[str]) -> None:
    member_units = sorted({by_bdf[b]["iommu_unit"] for b in group["devices"] if b in by_bdf and by_bdf[b]["iommu_unit"]})
    if len(member_units) > 1:
        rd.warn(f"{GROUPS}/{group['id']}", f"members name different IOMMU units {member_units}; unit left unknown")
    elif member_units:
        group["unit"] = member_units[0]
        if member_units[0] not in unit_names:
            # Every unit a device's `iommu` link names is registered in /sys/class/iommu by the kernel.
            rd.warn(f"{CLASS_IOMMU}/{member_units[0]}", f"missing, though the iommu links of group {group['id']}'s "
                                                        "devices name it; its features are unknown")


def _check_unit_links(rd: Reader, units: list[dict], by_bdf: dict[str, dict]) -> None:
    """A unit's `devices/` entries and each device's `iommu` link witness each other."""
    listed = {}
    for unit in units:
        for bdf in unit.get("devices") or []:
            listed[bdf] = unit["name"]
            dev = by_bdf.get(bdf)
            if dev is not None and dev.get("iommu_unit") is None:
                rd.warn(f"{device_dir(bdf)}/iommu", f"missing, though {CLASS_IOMMU}/{unit['name']}/devices lists "
                                                          "the device; unit taken from there")
                dev["iommu_unit"] = unit["name"]
    names = {u.get("name") for u in units}
    for bdf, dev in by_bdf.items():
        unit = dev.get("iommu_unit")
        if unit in names and listed.get(bdf) != unit:
            rd.warn(f"{CLASS_IOMMU}/{unit}/devices/{bdf}", "missing, though the device's iommu link names this unit")


def collect(rd: Reader, devices: list[dict], units: list[dict], kernel: str | None = None) -> list[dict]:
    """Groups sorted by id; also fills each device's `iommu_group` from membership when its link is missing.
    `kernel` (the release) says which group files every group must have."""
    by_bdf = {d["bdf"]: d for d in devices}
    groups: dict[int, dict] = {}
    groups_dir_present = rd.exists(GROUPS)
    if not groups_dir_present:
        # An empty directory is a plain host without an IOMMU; a missing one is a partial tree.
        linked = any(d.get("iommu_group") is not None for d in devices)
        rd.warn(GROUPS, "missing; membership taken from the devices' iommu_group links" if linked else "missing")
    for name in rd.listdir(GROUPS, missing_ok=True):
        gid = parse_int(name)
        if gid is None:
            rd.warn(f"{GROUPS}/{name}", "not a group number; skipped")
            continue
        if name != str(gid):  # `014`: no kernel writes it, and it would alias group 14
            rd.warn(f"{GROUPS}/{name}", f"not how the kernel names group {gid}; skipped")
            continue
        groups[gid] = rd.isolated(f"{GROUPS}/{name}", "its attributes left unknown", _empty_group(gid),
                                  _read_group, rd, gid, kernel_tuple(kernel))

    listed = _check_listed_members(rd, groups, by_bdf)
    _add_link_only_members(rd, groups, devices, listed, groups_dir_present)
    _check_unit_links(rd, units, by_bdf)
    unit_names = {u.get("name") for u in units}
    for group in groups.values():
        group["devices"] = sorted(set(group["devices"]))
        _fill_unit(rd, group, by_bdf, unit_names)
    return [groups[gid] for gid in sorted(groups)]
