"""What a device's bound driver means for its DMA: the one definition of driver classes.

Used by the agent's terminal view, the server's inventory (owner kind) and the policy rules.
The kernel's own notion (DOMAIN.md §2, `iommu_group_claim_dma_owner()` since 5.19): a group
can be claimed by userspace only when every member is on vfio-pci (or a variant), pci-stub,
pcieport or no driver; any other driver makes the kernel a DMA owner of the group.
"""
from __future__ import annotations

import re
from enum import Enum
from functools import lru_cache


class DriverClass(str, Enum):
    VFIO = "vfio"          # vfio-pci and its variants: userspace drives the device's DMA through VFIO
    UIO = "uio"            # UIO: userspace drives DMA with no IOMMU protection of its own
    NON_DMA = "non-dma"    # bound, but the kernel does not count it as a DMA owner (pcieport, pci-stub)
    HOST_DMA = "host-dma"  # a host driver that does DMA: the kernel owns the device
    NONE = "none"          # no driver bound


UIO_DRIVERS = frozenset({"uio_pci_generic", "igb_uio"})
NON_DMA_DRIVERS = frozenset({"pcieport", "pci-stub"})
# vfio-pci, vfio_pci and the vendor variants (mlx5_vfio_pci, hisi_acc_vfio_pci, pds_vfio_pci,
# virtio_vfio_pci, nvgrace_gpu_vfio_pci…): "vfio" as a word of the name, not any substring.
VFIO_NAME_PATTERN = r"(?:^|[-_])vfio(?:[-_]|$)"  # public: the server matches the same names in SQL
_VFIO_NAME = re.compile(VFIO_NAME_PATTERN)


# Asked for every device several times an apply (ownership twice, facts, rules: ~3,000 times for a
# 480-device host). Bounded: driver names come from hosts.
@lru_cache(maxsize=1024)
def driver_class(driver: str | None) -> DriverClass:
    if not driver:
        return DriverClass.NONE
    if _VFIO_NAME.search(driver):
        return DriverClass.VFIO
    if driver in UIO_DRIVERS:
        return DriverClass.UIO
    if driver in NON_DMA_DRIVERS:
        return DriverClass.NON_DMA
    return DriverClass.HOST_DMA


def is_vfio_driver(driver: str | None) -> bool:
    return driver_class(driver) is DriverClass.VFIO


def is_uio_driver(driver: str | None) -> bool:
    return driver_class(driver) is DriverClass.UIO


def is_userspace_driver(driver: str | None) -> bool:
    """Bound to VFIO or UIO: the device's DMA is userspace's to drive."""
    return driver_class(driver) in (DriverClass.VFIO, DriverClass.UIO)


def is_host_dma_driver(driver: str | None) -> bool:
    """Bound to a driver that makes the kernel a DMA owner of the device's group."""
    return driver_class(driver) is DriverClass.HOST_DMA


def blocks_userspace_claim(driver: str | None) -> bool:
    """A member on this driver keeps userspace from claiming its group (not viable)."""
    return driver_class(driver) in (DriverClass.HOST_DMA, DriverClass.UIO)
