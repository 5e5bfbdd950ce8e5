"""What a PCI function is across renumbering: the one definition of a device's stable identity.

A BIOS update, an added card or a kernel with another bus-assignment order gives a device a new bus
number and so a new BDF; what it is and where it sits do not change. The identity is the path from the
host bridge down to the function, each step the bridge's or function's own ids (vendor:device and
subsystem vendor:device) and its device.function number on its bus (the slot wiring, which renumbering
keeps), ending with the function's serial number (PCIe DSN, `capabilities.dsn.serial`) when the
snapshot carries one. Bus numbers and the PCI domain are left out on purpose.
"""
from __future__ import annotations

from collections.abc import Mapping

from .topology import upstream

SERIAL_MARK = " #"


def _step(bdf: str, device: Mapping) -> str:
    ids = f"{device.get('vendor_id')}:{device.get('device_id')}"
    subsystem = f"{device.get('subsystem_vendor_id')}:{device.get('subsystem_device_id')}"
    return f"{ids}/{subsystem}@{bdf[-4:]}"


def _identity(bdf: str, devices: Mapping[str, Mapping], steps: Mapping[str, str]) -> str:
    path = [bdf, *upstream(bdf, devices)]
    dsn = (((devices.get(bdf) or {}).get("capabilities") or {}).get("dsn") or {})
    serial = dsn.get("serial") if isinstance(dsn, dict) else None
    written = " > ".join(steps.get(b) or _step(b, devices.get(b) or {}) for b in reversed(path))
    return written + (f"{SERIAL_MARK}{serial}" if isinstance(serial, str) and serial else "")


def device_identity(bdf: str, devices: Mapping[str, Mapping]) -> str:
    """`8086:244e/0000:0000@1e.0 > 8086:100e/8086:001e@01.0` for a NIC at slot 01.0 behind a PCI bridge at 1e.0;
    ` #52-54-00-ff-ff-0b-00-10` appended when the function reports its serial number."""
    return _identity(bdf, devices, {})


def device_identities(devices: Mapping[str, Mapping]) -> dict[str, str]:
    """`device_identity` of every device at once, each step written once: per apply, the drift check asked for
    504 identities of a DGX-2 host whose paths share their bridges (~47,000 steps written; now ~500)."""
    steps = {b: _step(b, d or {}) for b, d in devices.items() if isinstance(b, str)}
    return {b: _identity(b, devices, steps) for b in devices if isinstance(b, str)}


def without_serial(identity: str) -> str:
    """The identity as an agent that does not read serial numbers gives it (what a baseline from one recorded)."""
    return identity.split(SERIAL_MARK, 1)[0]


