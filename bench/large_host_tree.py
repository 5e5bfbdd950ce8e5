"""A large host tree for the agent benchmark, made by replicating a real capture's devices.

The `isolated-nics` capture (Linux 6.1, emulated VT-d) is extracted, then its PCIe root port
(0000:00:03.0) and the e1000e NIC below it (0000:02:00.0 … here 0000:03:00.0, bound to e1000e) are
copied under new bus numbers: each new root port gets one NIC on its own bus, and each function gets
its own IOMMU group, with the links the kernel makes (bus/pci/devices, iommu_group, iommu, driver,
group devices/, the unit's devices/). Every 10th NIC is bound to vfio-pci.
"""
from __future__ import annotations

import os
import shutil
import tarfile
from pathlib import Path

CAPTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "captures"
CAPTURE = "isolated-nics"
PORT_TEMPLATE = "sys/devices/pci0000:00/0000:00:03.0"
NIC_TEMPLATE = "sys/devices/pci0000:00/0000:00:04.0/0000:03:00.0"
GROUP_TEMPLATE = "sys/kernel/iommu_groups/6"


def _port_slots():
    """Root port addresses: bus 00 devices 05-1e (all 8 functions), then a second host bridge on bus 80."""
    for dev in range(0x05, 0x1F):
        for fn in range(8):
            yield "00", f"0000:00:{dev:02x}.{fn}"
    for dev in range(0x01, 0x20):
        for fn in range(8):
            yield "80", f"0000:80:{dev:02x}.{fn}"


def _free_buses():
    for bus in range(0x05, 0x100):
        if bus != 0x80:
            yield bus


def _copy_files(src: Path, dst: Path) -> None:
    """The device's own attribute files (not its links or child directories)."""
    dst.mkdir(parents=True, exist_ok=True)
    for entry in os.scandir(src):
        if entry.is_file(follow_symlinks=False):
            shutil.copyfile(entry.path, dst / entry.name)


def _link(path: Path, target: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(target)


def _add_function(root: Path, template: Path, rel: str, bdf: str, driver: str, group: int) -> None:
    """One PCI function at `rel` (below sys/devices) in its own group, linked as the kernel links it."""
    dev = root / "sys" / "devices" / rel
    _copy_files(template, dev)
    up = "../" * (rel.count("/") + 2)  # from the device dir back to sys/
    _link(dev / "driver", f"{up}bus/pci/drivers/{driver}")
    _link(dev / "iommu_group", f"{up}kernel/iommu_groups/{group}")
    _link(dev / "iommu", f"{up}devices/virtual/iommu/dmar0")
    _link(dev / "subsystem", f"{up}bus/pci")
    _link(root / "sys/bus/pci/devices" / bdf, f"../../../devices/{rel}")
    _link(root / "sys/devices/virtual/iommu/dmar0/devices" / bdf, f"../../../../{rel}")
    gdir = root / "sys/kernel/iommu_groups" / str(group)
    gdir.mkdir(parents=True)
    for name in ("type", "reserved_regions"):
        shutil.copyfile(root / GROUP_TEMPLATE / name, gdir / name)
    _link(gdir / "devices" / bdf, f"../../../../devices/{rel}")


def build_tree(dest: Path, *, root_ports: int = 240) -> dict:
    """Extract the capture into `dest` and add `root_ports` root ports with one NIC each."""
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(CAPTURES / f"{CAPTURE}.tar.gz") as tar:
        tar.extractall(dest, filter="fully_trusted")
    shutil.rmtree(dest / "ground-truth")
    (dest / "sys/devices/pci0000:80").mkdir(exist_ok=True)
    (dest / "sys/bus/pci/drivers/pcieport").mkdir(parents=True, exist_ok=True)
    (dest / "sys/bus/pci/drivers/vfio-pci").mkdir(parents=True, exist_ok=True)
    group = max(int(g) for g in os.listdir(dest / "sys/kernel/iommu_groups")) + 1
    slots, buses = _port_slots(), _free_buses()
    for i in range(root_ports):
        hb, port = next(slots)
        bus = next(buses)
        port_rel = f"pci0000:{hb}/{port}"
        _add_function(dest, dest / PORT_TEMPLATE, port_rel, port, "pcieport", group)
        nic = f"0000:{bus:02x}:00.0"
        _add_function(dest, dest / NIC_TEMPLATE, f"{port_rel}/{nic}", nic, "vfio-pci" if i % 10 == 0 else "e1000e",
                      group + 1)
        group += 2
    functions = len(os.listdir(dest / "sys/bus/pci/devices"))
    groups = len(os.listdir(dest / "sys/kernel/iommu_groups"))
    return {"functions": functions, "groups": groups}
