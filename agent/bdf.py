"""PCI addresses (BDFs): the one parser and the one short form, for the collectors, the terminal view
and the server.

The snapshot writes every BDF in the kernel's sysfs spelling, `dddd:bb:dd.f` in lowercase hex
(docs/snapshot.md). Command lines, libvirt XML and people write others (`02:00.0`, upper case).
Intel VMD puts devices in 5-digit domains (`10000:e0:00.0`) that the wire format cannot carry, so
they are not BDFs here.
"""
from __future__ import annotations

import re

_FULL = re.compile(r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]")
_ANY = re.compile(r"(?:([0-9a-fA-F]{1,4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])")


def is_bdf(text: str) -> bool:
    """Exactly the kernel's spelling (a sysfs name, a snapshot value)."""
    return _FULL.fullmatch(text) is not None


def parse_bdf(text: str) -> str | None:
    """`02:00.0`, `0000:02:00.0`, `0000:0A:00.1` -> the full lowercase form; None for anything else."""
    m = _ANY.fullmatch(text.strip())
    if not m:
        return None
    domain, bus, slot, function = m.groups()
    return f"{(domain or '0').lower().zfill(4)}:{bus.lower()}:{slot.lower()}.{function}"


def bdf_from_numbers(domain: int, bus: int, slot: int, function: int) -> str | None:
    """The BDF of these numbers, None when one is out of its range (domain 16 bits, bus 8, slot 5, function 3)."""
    if not (0 <= domain <= 0xFFFF and 0 <= bus <= 0xFF and 0 <= slot <= 0x1F and 0 <= function <= 7):
        return None
    return f"{domain:04x}:{bus:02x}:{slot:02x}.{function}"


def short_bdf(bdf: str) -> str:
    """`0000:02:00.0` -> `02:00.0`: domain 0 left out, as lspci prints it."""
    return bdf[5:] if bdf.startswith("0000:") else bdf


def slot_of(bdf: str) -> str:
    """`0000:02:00.1` -> `0000:02:00`: the device every function of a multi-function card shares."""
    return bdf.rsplit(".", 1)[0]
