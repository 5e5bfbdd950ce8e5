"""Which Linux driver binds a PCI function, by ids and class, for synthetic hosts.

Ids and driver names are the upstream ones (drivers/net/ethernet/..., nvidia's
out-of-tree module for NVIDIA GPUs and NVSwitches). A function nothing here
knows stays unbound, as it would on a real host without the module.
"""
from __future__ import annotations

# (vendor, device) -> driver, checked before the class table.
BY_ID = {
    ("8086", "1521"): "igb",  # I350
    ("8086", "1537"): "igb",  # I210-IS
    ("8086", "1520"): "igbvf",  # I350 VF
    ("1137", "0043"): "enic",  # Cisco VIC Ethernet NIC
    ("1137", "00cf"): "enic",  # Cisco VIC usNIC VF
    ("1138", "00cf"): "enic",
    ("15b3", "101b"): "mlx5_core",  # ConnectX-6
    ("15b3", "101c"): "mlx5_core",  # ConnectX-6 VF
    ("1d0f", "ec20"): "ena",
    ("1d0f", "efa0"): "efa",
    ("17db", "0501"): "cxi_core",  # HPE Slingshot
    ("1a03", "2000"): "ast",
    ("1b4b", "9230"): "ahci",
}

# (vendor or None, class prefix) -> driver.
BY_CLASS = (
    ("10de", "0302", "nvidia"),
    ("10de", "0300", "nvidia"),
    ("10de", "0680", "nvidia"),  # NVSwitch, managed by the fabric manager through nvidia.ko
    ("1002", "0380", "amdgpu"),
    ("1002", "0300", "amdgpu"),
    (None, "0108", "nvme"),
    (None, "0106", "ahci"),
    (None, "0c03", "xhci_hcd"),
    (None, "0604", "pcieport"),
)

# The VF's driver when the PF's driver is known (mlx5_core drives both).
VF_DRIVER = {"igb": "igbvf", "ixgbe": "ixgbevf", "i40e": "iavf", "ice": "iavf", "mlx5_core": "mlx5_core", "enic": "enic"}

# Drivers that do not count as DMA owners of a group (drivers/iommu/iommu.c, DMA ownership since 5.19).
NON_DMA_OWNERS = {None, "vfio-pci", "pci-stub", "pcieport"}


def host_driver(vendor_id: str, device_id: str, class_code: str) -> str | None:
    """The in-host driver a stock distribution kernel would bind."""
    driver = BY_ID.get((vendor_id, device_id))
    if driver:
        return driver
    for vendor, prefix, name in BY_CLASS:
        if (vendor is None or vendor == vendor_id) and class_code.startswith(prefix):
            return name
    return None
