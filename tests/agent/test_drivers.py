"""The driver classes every layer shares (agent view, inventory owner kind, policy)."""
import pytest

from agent.drivers import DriverClass, blocks_userspace_claim, driver_class, is_host_dma_driver, is_userspace_driver


@pytest.mark.parametrize("driver, expected", [
    ("vfio-pci", DriverClass.VFIO), ("vfio_pci", DriverClass.VFIO), ("mlx5_vfio_pci", DriverClass.VFIO),
    ("hisi_acc_vfio_pci", DriverClass.VFIO), ("virtio-vfio-pci", DriverClass.VFIO),
    ("uio_pci_generic", DriverClass.UIO), ("igb_uio", DriverClass.UIO),
    ("pcieport", DriverClass.NON_DMA), ("pci-stub", DriverClass.NON_DMA),
    ("e1000e", DriverClass.HOST_DMA), ("nvidia", DriverClass.HOST_DMA), ("novfiohere", DriverClass.HOST_DMA),
    ("pci-stub-uio", DriverClass.HOST_DMA),  # not a Linux driver: a host naming it so gets no userspace credit
    (None, DriverClass.NONE), ("", DriverClass.NONE),
])
def test_driver_class_follows_the_kernels_dma_ownership_rules(driver, expected):
    assert driver_class(driver) is expected


def test_only_host_dma_and_uio_drivers_block_a_userspace_claim():
    assert [d for d in ("vfio-pci", "pci-stub", "pcieport", None, "e1000e", "igb_uio") if blocks_userspace_claim(d)] == ["e1000e", "igb_uio"]
    assert is_userspace_driver("igb_uio") and not is_host_dma_driver("igb_uio")
