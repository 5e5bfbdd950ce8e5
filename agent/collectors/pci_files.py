"""Where the kernel puts a PCI function's attributes (drivers/pci/pci-sysfs.c), for every collector
that reads them: pci, sriov, config_space, groups."""
from __future__ import annotations

PCI_DEVICES = "/sys/bus/pci/devices"
SYS_DEVICES = "/sys/devices"

# (file, snapshot key) of the link attributes the kernel gives every PCIe function (pcie_dev_attrs).
LINK_FILES = (
    ("current_link_speed", "current_speed"),
    ("current_link_width", "current_width"),
    ("max_link_speed", "max_speed"),
    ("max_link_width", "max_width"),
)


def device_dir(bdf: str) -> str:
    return f"{PCI_DEVICES}/{bdf}"
