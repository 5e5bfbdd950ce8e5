"""A file or link the kernel always provides, removed from a real capture, is named in `warnings`,
and the snapshot keeps what the other witness still says (a unit's device list, a PF's virtfn link)."""
import os
import shutil

import pytest

from agent.paths import Root
from agent.snapshot import build

PF, VF = "0000:01:00.0", "0000:01:00.2"
DEV = "/sys/bus/pci/devices"


def _remove(root, rel):
    p = root / rel
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink()


@pytest.mark.parametrize("capture_name, rel, warning", [
    ("sriov-nvme", f"sys/bus/pci/devices/{PF}/sriov_numvfs", f"{DEV}/{PF}/sriov_numvfs: missing"),
    ("sriov-nvme", f"sys/bus/pci/devices/{PF}/virtfn1", f"{DEV}/{PF}/sriov_numvfs: says 2 VFs but 1 virtfn links"),
    ("sriov-nvme", f"sys/bus/pci/devices/{VF}/physfn", f"{DEV}/{VF}/physfn: missing or not naming {PF}"),
    ("sriov-nvme", f"sys/bus/pci/devices/{PF}/driver_override", f"{DEV}/{PF}/driver_override: missing"),
    ("isolated-nics", "sys/class/iommu/dmar0/intel-iommu/version", "/sys/class/iommu/dmar0/intel-iommu/version: missing"),
    ("isolated-nics", "sys/kernel/iommu_groups/4/type", "/sys/kernel/iommu_groups/4/type: missing"),
    ("isolated-nics", "sys/kernel/iommu_groups/4/reserved_regions", "/sys/kernel/iommu_groups/4/reserved_regions: missing"),
    ("isolated-nics", "sys/class/iommu/dmar0/devices/0000:01:00.0",
     "/sys/class/iommu/dmar0/devices/0000:01:00.0: missing, though the device's iommu link names this unit"),
    ("isolated-nics", "sys/bus/pci/devices/0000:01:00.0/iommu",
     f"{DEV}/0000:01:00.0/iommu: missing, though /sys/class/iommu/dmar0/devices lists the device"),
])
def test_a_removed_kernel_file_is_warned_about_by_path(writable_capture, capture_name, rel, warning):
    root = writable_capture(capture_name)
    assert os.path.lexists(root / rel)
    _remove(root, rel)
    doc = build(Root.of(root))
    assert [w for w in doc["warnings"] if w.startswith(warning)], doc["warnings"]


def test_the_unit_of_a_device_whose_iommu_link_is_gone_comes_from_the_units_device_list(writable_capture):
    root = writable_capture("isolated-nics")
    (root / "sys/bus/pci/devices/0000:01:00.0/iommu").unlink()
    doc = build(Root.of(root))
    (dev,) = [d for d in doc["devices"] if d["bdf"] == "0000:01:00.0"]
    assert dev["iommu_unit"] == "dmar0"


def test_group_files_a_kernel_before_4_11_lacks_are_not_warned_about(writable_capture):
    # Stands for a 4.9 kernel (Debian 9), which had groups but neither `type` nor `reserved_regions`.
    root = writable_capture("isolated-nics")
    (root / "proc/version").write_text("Linux version 4.9.0-19-amd64 (debian-kernel@lists.debian.org) #1 SMP\n")
    for group in (root / "sys/kernel/iommu_groups").iterdir():
        (group / "type").unlink()
        (group / "reserved_regions").unlink()
    doc = build(Root.of(root))
    assert not [w for w in doc["warnings"] if "/sys/kernel/iommu_groups/" in w], doc["warnings"]
    assert all(g["type"] is None for g in doc["groups"])


@pytest.mark.parametrize("attribute", ["current_link_speed", "max_link_width"])
def test_a_pcie_function_without_its_link_files_is_warned_about(writable_capture, attribute):
    root = writable_capture("isolated-nics")
    (root / f"sys/bus/pci/devices/0000:01:00.0/{attribute}").unlink()
    doc = build(Root.of(root))
    assert f"{DEV}/0000:01:00.0/{attribute}: missing, though config space shows a PCIe capability" in doc["warnings"]


def test_conventional_pci_functions_have_no_link_files_and_no_warning(capture):
    # shared-bridge-group's e1000 NICs sit on conventional PCI: no link files, by design.
    root = capture("shared-bridge-group")
    assert not (root / "sys/bus/pci/devices/0000:02:01.0/current_link_speed").exists()
    assert build(Root.of(root))["warnings"] == []
