"""Host-critical devices: the one definition of a group member the host cannot give away.

A member is host-critical when it is a mass-storage controller (class 01), a network controller
(class 02) or a Fibre Channel HBA (0c04) bound to a host DMA driver (agent/drivers.py): the host is
driving it, and the snapshot cannot tell whether it carries the boot disk, the root filesystem or the
management network, so the finder never counts on taking it and a pre-flight that would take it is
denied. The same device on vfio-pci, pci-stub or no driver is not host-critical: the host already let go.

`host_critical` is the definition; `host_critical_q` is the same condition on Device rows, for SQL.
"""
from __future__ import annotations

from django.db.models import Q

from agent.drivers import NON_DMA_DRIVERS, UIO_DRIVERS, VFIO_NAME_PATTERN, is_host_dma_driver

HOST_CRITICAL_CLASS_PREFIXES = ("01", "02", "0c04")


def host_critical(class_code: str | None, driver: str | None) -> bool:
    return bool(class_code) and class_code.lower().startswith(HOST_CRITICAL_CLASS_PREFIXES) and is_host_dma_driver(driver)


def host_dma_driver_q(prefix: str = "") -> Q:
    """Rows whose driver is a host DMA driver (`is_host_dma_driver`), `prefix` for a related row's fields."""
    driver = f"{prefix}driver"
    return (Q(**{f"{driver}__isnull": False}) & ~Q(**{driver: ""}) & ~Q(**{f"{driver}__in": sorted(NON_DMA_DRIVERS | UIO_DRIVERS)})
            & ~Q(**{f"{driver}__regex": VFIO_NAME_PATTERN}))


def host_critical_q(prefix: str = "") -> Q:
    classes = Q()
    for p in HOST_CRITICAL_CLASS_PREFIXES:
        classes |= Q(**{f"{prefix}class_code__startswith": p})
    return classes & host_dma_driver_q(prefix)
