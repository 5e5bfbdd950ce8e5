"""Capabilities decoded from each function's binary `config` file (DOMAIN.md §3).

What could not be read is reported as null (unknown), never as absent: as non-root the kernel
returns only the first 64 bytes, which hold the header but not one capability.
"""
from __future__ import annotations

import struct

from ..sysfs import Reader
from .pci_files import LINK_FILES, device_dir

CONFIG_MAX = 4096
HEADER_BYTES = 64
CONVENTIONAL_BYTES = 256

_STATUS_CAP_LIST = 0x10
_HEADER_TYPES = {0: "normal", 1: "bridge", 2: "cardbus"}
_BRIDGE_CLASSES = ("0604", "0609")

CAP_ID_PCIE = 0x10
EXT_ID_DSN = 0x03
EXT_ID_ACS = 0x0D
EXT_ID_ATS = 0x0F
EXT_ID_SRIOV = 0x10
EXT_ID_PRI = 0x13
EXT_ID_PASID = 0x1B

# Guards against looping or hostile lists: 48 standard entries fit in 192 bytes of 4-byte-aligned
# slots; the kernel stops the extended walk after (4096 - 256) / 8 = 480 steps (PCI_FIND_CAP_TTL).
_STD_MAX_STEPS = 48
_EXT_MAX_STEPS = 480

PORT_TYPES = {
    0x0: "endpoint",
    0x1: "legacy_endpoint",
    0x4: "root_port",
    0x5: "upstream_port",
    0x6: "downstream_port",
    0x7: "pcie_to_pci_bridge",
    0x8: "pci_to_pcie_bridge",
    0x9: "rc_integrated_endpoint",
    0xA: "rc_event_collector",
}
ACS_FLAGS = (("sv", 0x01), ("tb", 0x02), ("rr", 0x04), ("cr", 0x08), ("uf", 0x10), ("ec", 0x20), ("dt", 0x40))
EXTENDED_KEYS = ("acs", "ats", "pri", "pasid", "sriov", "dsn")


def _u8(cfg: bytes, off: int) -> int | None:
    return cfg[off] if 0 <= off < len(cfg) else None


def _u16(cfg: bytes, off: int) -> int | None:
    return struct.unpack_from("<H", cfg, off)[0] if 0 <= off and off + 2 <= len(cfg) else None


def _u32(cfg: bytes, off: int) -> int | None:
    return struct.unpack_from("<I", cfg, off)[0] if 0 <= off and off + 4 <= len(cfg) else None


def standard_caps(cfg: bytes) -> dict[int, int] | None:
    """{cap id: offset} of the standard list, or None when the bytes read do not cover it."""
    if len(cfg) < CONVENTIONAL_BYTES:
        # The list lives above the 64-byte header; a cut read (non-root) cannot tell what is on it.
        # Unknown even when the status bit says "no list": a cut read always means null, so
        # consumers need one rule (docs/snapshot.md), not a per-device exception.
        return None
    status, header = _u16(cfg, 0x06), _u8(cfg, 0x0E)
    if not status & _STATUS_CAP_LIST:
        return {}
    ptr = _u8(cfg, 0x14 if header & 0x7F == 2 else 0x34)
    found: dict[int, int] = {}
    ptr &= 0xFC
    for _ in range(_STD_MAX_STEPS):
        if ptr < HEADER_BYTES:
            break
        cap_id, nxt = _u8(cfg, ptr), _u8(cfg, ptr + 1)
        if cap_id is None or nxt is None or cap_id == 0xFF:
            break
        found.setdefault(cap_id, ptr)
        ptr = nxt & 0xFC
    return found


def extended_caps(cfg: bytes) -> dict[int, int]:
    """{ext cap id: offset} of the list from 0x100; caller checks that it was readable."""
    found: dict[int, int] = {}
    ptr = 0x100
    for _ in range(_EXT_MAX_STEPS):
        header = _u32(cfg, ptr)
        if header is None or header in (0, 0xFFFFFFFF):
            break
        found.setdefault(header & 0xFFFF, ptr)
        ptr = (header >> 20) & 0xFFC
        if ptr < 0x100:
            break
    return found


def _flags(value: int) -> dict[str, bool]:
    return {name: bool(value & bit) for name, bit in ACS_FLAGS}


def _acs(cfg: bytes, off: int | None) -> dict:
    if off is None:
        return {"present": False}
    cap, ctl = _u16(cfg, off + 4), _u16(cfg, off + 6)
    return {"present": True, "cap": _flags(cap or 0) if cap is not None else None,
            "ctl": _flags(ctl or 0) if ctl is not None else None}


def _enable(cfg: bytes, off: int | None, ctl_off: int, bit: int) -> dict:
    if off is None:
        return {"present": False, "enabled": False}
    ctl = _u16(cfg, off + ctl_off)
    return {"present": True, "enabled": None if ctl is None else bool(ctl & bit)}


def _pasid(cfg: bytes, off: int | None) -> dict:
    if off is None:
        return {"present": False, "enabled": False, "width": None, "exec": None, "priv": None}
    cap, ctl = _u16(cfg, off + 4), _u16(cfg, off + 6)
    return {
        "present": True,
        "enabled": None if ctl is None else bool(ctl & 0x1),
        "width": None if cap is None else (cap >> 8) & 0x1F,
        "exec": None if cap is None else bool(cap & 0x2),
        "priv": None if cap is None else bool(cap & 0x4),
    }


def _sriov(cfg: bytes, off: int | None) -> dict:
    if off is None:
        return {"present": False, "vf_enable": False, "initial_vfs": None, "total_vfs": None, "num_vfs": None,
                "vf_offset": None, "vf_stride": None, "vf_device_id": None}
    ctl, devid = _u16(cfg, off + 0x08), _u16(cfg, off + 0x1A)
    return {
        "present": True,
        "vf_enable": None if ctl is None else bool(ctl & 0x1),
        "initial_vfs": _u16(cfg, off + 0x0C),
        "total_vfs": _u16(cfg, off + 0x0E),
        "num_vfs": _u16(cfg, off + 0x10),
        "vf_offset": _u16(cfg, off + 0x14),
        "vf_stride": _u16(cfg, off + 0x16),
        "vf_device_id": None if devid is None else f"{devid:04x}",
    }


def _dsn(cfg: bytes, off: int | None) -> dict:
    """The Device Serial Number, most significant byte first as lspci prints it (`52-54-00-ff-ff-0b-00-10`)."""
    if off is None:
        return {"present": False, "serial": None}
    low, high = _u32(cfg, off + 4), _u32(cfg, off + 8)
    if low is None or high is None:
        return {"present": True, "serial": None}
    return {"present": True, "serial": "-".join(f"{b:02x}" for b in ((high << 32) | low).to_bytes(8, "big"))}


def unknown_capabilities(config_bytes: int | None) -> dict:
    caps = {"config_bytes": config_bytes, "extended_readable": False, "pcie": None}
    caps.update({key: None for key in EXTENDED_KEYS})
    return caps


def decode(config: bytes) -> dict:
    """Pure: `{"header_type", "multifunction", "capabilities"}` from the bytes of a config file."""
    header = _u8(config, 0x0E)
    out = {
        "header_type": None if header is None else _HEADER_TYPES.get(header & 0x7F),
        "multifunction": None if header is None else bool(header & 0x80),
        "capabilities": unknown_capabilities(len(config)),
    }
    std = standard_caps(config)
    if std is None:
        return out
    caps = out["capabilities"]
    pcie_off = std.get(CAP_ID_PCIE)
    if pcie_off is None:
        caps["pcie"] = {"present": False, "port_type": None}
    else:
        flags = _u16(config, pcie_off + 2)
        caps["pcie"] = {"present": True, "port_type": None if flags is None else PORT_TYPES.get((flags >> 4) & 0xF)}
    if len(config) > CONVENTIONAL_BYTES:
        caps["extended_readable"] = True
        ext = extended_caps(config)
    elif pcie_off is None:
        # A conventional PCI function has no extended config space (it starts at 0x100 only on
        # PCIe and PCI-X 2.0), so these capabilities are genuinely absent, not unknown.
        ext = {}
    else:
        return out  # PCIe function but only 256 bytes readable: extended list unknown
    caps["acs"] = _acs(config, ext.get(EXT_ID_ACS))
    caps["ats"] = _enable(config, ext.get(EXT_ID_ATS), 6, 0x8000)
    caps["pri"] = _enable(config, ext.get(EXT_ID_PRI), 4, 0x1)
    caps["pasid"] = _pasid(config, ext.get(EXT_ID_PASID))
    caps["sriov"] = _sriov(config, ext.get(EXT_ID_SRIOV))
    caps["dsn"] = _dsn(config, ext.get(EXT_ID_DSN))
    return out


def _bridge_from_class(dev: dict) -> bool | None:
    cls = dev.get("class")
    return None if cls is None else cls[:4] in _BRIDGE_CLASSES


def _check_link_files(rd: Reader, dev: dict) -> None:
    """The kernel gives every PCIe function its link files (pcie_dev_attrs); a PCIe function without
    them is a damaged tree. Only consulted when a value is missing, so an intact tree costs nothing."""
    link = dev.get("link") or {}
    for fname, key in LINK_FILES:
        path = f"{device_dir(dev['bdf'])}/{fname}"
        if link.get(key) is None and not rd.exists(path):
            rd.warn(path, "missing, though config space shows a PCIe capability")


def decorate(rd: Reader, devices: list[dict]) -> None:
    """Sets `capabilities`, `header_type`, `multifunction` and `is_bridge` on each device in place."""
    for dev in devices:
        rd.isolated(f"{device_dir(dev['bdf'])}/config", "its capabilities left unknown", None,
                    _decorate_one, rd, dev)


def _decorate_one(rd: Reader, dev: dict) -> None:
    path = f"{device_dir(dev['bdf'])}/config"
    config = rd.binary(path, CONFIG_MAX)
    if config is None:
        dev["capabilities"] = unknown_capabilities(None)
        dev["is_bridge"] = _bridge_from_class(dev)
        return
    decoded = decode(config)
    dev.update(decoded)
    caps = decoded["capabilities"]
    if len(config) <= HEADER_BYTES:
        rd.warn(path, f"config space cut to {len(config)} bytes (not root): capabilities unknown")
    elif caps["pcie"] is None:
        rd.warn(path, f"config space cut to {len(config)} bytes: capabilities unknown")
    elif caps["acs"] is None:
        rd.warn(path, f"extended config space unreadable ({len(config)} bytes): extended capabilities unknown")
    ht = decoded["header_type"]
    dev["is_bridge"] = ht in ("bridge", "cardbus") if ht is not None else _bridge_from_class(dev)
    if (caps["pcie"] or {}).get("present"):
        _check_link_files(rd, dev)
