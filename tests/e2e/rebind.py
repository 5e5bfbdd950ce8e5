"""Changing a captured tree between collections, the way an operator's rebind changes a live host."""
from __future__ import annotations

import os
from pathlib import Path

# An e1000e NIC in its own group in the isolated-nics capture; vfio-pci is bound elsewhere in that
# capture, so its driver directory exists and the rebound link resolves.
NIC = "0000:03:00.0"


def flip_driver(root: Path, bdf: str = NIC) -> str:
    """Rebind `bdf` between e1000e and vfio-pci (what `driverctl set-override` does); returns the new driver."""
    link = Path(root) / "sys/bus/pci/devices" / bdf / "driver"
    new = "vfio-pci" if os.readlink(link).endswith("e1000e") else "e1000e"
    tmp = link.with_name("driver.new")
    tmp.symlink_to(f"../../../../bus/pci/drivers/{new}")
    # rename() swaps the link atomically: a collection racing the flip sees the old or the new driver.
    os.replace(tmp, link)
    return new


def driver_of(root: Path, bdf: str = NIC) -> str:
    return os.path.basename(os.readlink(Path(root) / "sys/bus/pci/devices" / bdf / "driver"))
