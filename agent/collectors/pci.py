"""PCI functions from `/sys/bus/pci/devices`: ids, class, driver, group link, bridge parent, link, SR-IOV.

Config-space capabilities are added afterwards by `config_space.decorate`; group membership is
cross-checked by `groups.collect`.
"""
from __future__ import annotations

import os

from ..bdf import is_bdf
from ..integers import parse_int
from ..sysfs import Reader, kernel_relative
from . import config_space, sriov
from .pci_files import LINK_FILES, PCI_DEVICES, SYS_DEVICES, device_dir

# attribute file -> (snapshot key, hex digits)
_ID_FILES = (
    ("vendor", "vendor_id", 4),
    ("device", "device_id", 4),
    ("subsystem_vendor", "subsystem_vendor_id", 4),
    ("subsystem_device", "subsystem_device_id", 4),
    ("class", "class", 6),
    ("revision", "revision", 2),
)
# The kernel creates every one of these for every PCI function (pci_dev_attrs in
# drivers/pci/pci-sysfs.c), so a missing one means a damaged or partial tree, worth a warning.
_REQUIRED = {fname for fname, _key, _digits in _ID_FILES}


def normalise_hex(text: str | None, digits: int) -> str | None:
    """`0x8086` -> `8086` (lowercase, zero-padded to `digits`); None for anything that is not
    hex or does not fit, so a garbled attribute never reaches the snapshot as an id."""
    value = parse_int(text, base=16)
    if value is None or value >= 16 ** digits:
        return None
    return f"{value:0{digits}x}"


def parent_from_path(rel_path: str) -> str | None:
    """The upstream bridge of a function from its path below /sys/devices: the nearest ancestor
    component that is a BDF; None when the parent is a `pciDDDD:BB` host bridge."""
    parts = rel_path.strip("/").split("/")
    for part in reversed(parts[:-1]):
        if is_bdf(part):
            return part
        if part.startswith("pci"):
            return None
    return None


def _link(rd: Reader, base: str, names: set[str]) -> dict:
    out = {}
    for fname, key in LINK_FILES:
        # Conventional PCI functions have no link files: absent means "not a PCIe link", not an error.
        text = rd.text(f"{base}/{fname}") if fname in names else None
        if fname.endswith("_width") and rd.integer(f"{base}/{fname}", text, what="a lane count") is None:
            text = None  # the kernel prints the width with %u; the speed is a phrase ("8.0 GT/s PCIe")
        out[key] = text
    return out


def _driver(rd: Reader, base: str, names: set[str]) -> str | None:
    if "driver" not in names:
        return None
    name = rd.link_name(f"{base}/driver", missing_ok=False)
    if name is not None and not os.path.exists(rd.root.fspath(f"{base}/driver")):
        # sysfs never leaves a dangling driver link; a capture or a racing unbind can.
        rd.warn(f"{base}/driver", "dangling link (driver name taken from the link target)")
    return name


def _group_id(rd: Reader, base: str, names: set[str]) -> int | None:
    if "iommu_group" not in names:
        return None
    name = rd.link_name(f"{base}/iommu_group", missing_ok=False)
    return rd.integer(f"{base}/iommu_group", name, what="a group number at the end of the link")


def _numa(rd: Reader, base: str, names: set[str]) -> int | None:
    if "numa_node" not in names:
        return None
    value = rd.read_int(f"{base}/numa_node", signed=True)
    return None if value is None or value < 0 else value


def link_target_below(link_dir: str, target: str, below: str) -> str | None:
    """Pure: where a sysfs link points, as a path relative to `below` (None when outside it).
    `link_dir` is the kernel directory holding the link; relative targets are joined to it."""
    joined = os.path.normpath(os.path.join(link_dir, target))
    prefix = below.rstrip("/") + "/"
    return joined[len(prefix):] if joined.startswith(prefix) else None


def _path_below_sys_devices(rd: Reader, base: str, *, present: bool) -> str | None:
    # One readlink instead of realpath's lstat per component: /sys/bus/pci/devices/<bdf> is a single
    # link into /sys/devices, and nothing below /sys/devices is itself a link.
    target = rd.readlink(base, missing_ok=True)
    if target is not None and present:
        rel = link_target_below(os.path.dirname(base), target, SYS_DEVICES)
        if rel is None:
            rd.warn(base, f"links outside /sys/devices ({target[:80]!r}); parent unknown")
        return rel
    real = rd.resolve(base)  # not a link (an odd capture) or dangling: resolve warns about the latter
    rel = kernel_relative(rd.root, real, SYS_DEVICES) if real is not None else None
    if real is not None and rel is None:
        rd.warn(base, "does not resolve below /sys/devices; parent unknown")
    return rel


def empty_device(bdf: str) -> dict:
    """A function whose attributes are all unknown: the shape every device has in the snapshot."""
    return {"bdf": bdf, **{key: None for _fname, key, _digits in _ID_FILES}, "driver": None, "driver_override": None,
            "iommu_group": None, "iommu_unit": None, "parent": None, "path": None, "numa_node": None,
            "link": {key: None for _fname, key in LINK_FILES}, "is_bridge": None, "header_type": None,
            "multifunction": None, "sriov": None,
            "capabilities": config_space.unknown_capabilities(None)}  # until decorate() reads config


def collect_one(rd: Reader, bdf: str, dev: dict | None = None) -> dict:
    """The function's attributes, filled into `dev` (a fresh empty_device by default)."""
    base = device_dir(bdf)
    names = set(rd.listdir(base))
    dev = empty_device(bdf) if dev is None else dev
    for fname, key, digits in _ID_FILES:
        if fname not in names:
            if fname in _REQUIRED:
                rd.warn(f"{base}/{fname}", "missing")
            continue
        text = rd.text(f"{base}/{fname}")
        dev[key] = normalise_hex(text, digits)
        if text is not None and dev[key] is None:
            rd.warn(f"{base}/{fname}", f"not a {digits}-digit hex value ({text[:40]!r})")
    dev["driver"] = _driver(rd, base, names)
    # driver_override exists for every PCI function since Linux 3.16.
    override = rd.text(f"{base}/driver_override") if "driver_override" in names else None
    if names and "driver_override" not in names:
        rd.warn(f"{base}/driver_override", "missing")
    dev["driver_override"] = None if override in (None, "(null)") else override
    dev["iommu_group"] = _group_id(rd, base, names)
    dev["iommu_unit"] = rd.link_name(f"{base}/iommu", missing_ok=False) if "iommu" in names else None
    rel = _path_below_sys_devices(rd, base, present=bool(names))
    dev["parent"] = parent_from_path(rel) if rel else None
    dev["path"] = rel
    dev["numa_node"] = _numa(rd, base, names)
    dev["link"] = _link(rd, base, names)
    dev["sriov"] = sriov.collect(rd, base, names)
    return dev


def collect(rd: Reader) -> list[dict]:
    devices = []
    for name in rd.listdir(PCI_DEVICES):
        if not is_bdf(name):
            rd.warn(f"{PCI_DEVICES}/{name}", "not a PCI address; skipped")
            continue
        dev = empty_device(name)
        # On a failure the device keeps what was read before it, and null for the rest.
        devices.append(rd.isolated(device_dir(name), "its other attributes left unknown", dev, collect_one, rd, name, dev))
    sriov.cross_check(rd, devices)
    return devices
