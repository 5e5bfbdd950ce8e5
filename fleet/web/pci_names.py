"""Short human names for PCI class codes and common vendors, for labels on the drawing and in tables."""

_CLASSES = {
    "0100": "SCSI", "0101": "IDE", "0104": "RAID", "0106": "SATA", "0107": "SAS", "0108": "NVMe",
    "0200": "Ethernet", "0207": "InfiniBand", "0280": "Network",
    "0300": "VGA", "0302": "3D / GPU", "0380": "Display",
    "0403": "Audio", "0500": "RAM", "0580": "Memory",
    "0600": "Host bridge", "0601": "ISA bridge", "0604": "PCI bridge", "0609": "PCI bridge",
    "0700": "Serial", "0780": "Comm", "0806": "IOMMU", "0880": "System",
    "0c03": "USB", "0c05": "SMBus", "0b40": "Co-processor", "1200": "Accelerator", "1080": "Crypto",
}
_BASE = {
    "00": "Unclassified", "01": "Storage", "02": "Network", "03": "Display", "04": "Multimedia",
    "05": "Memory", "06": "Bridge", "07": "Comm", "08": "System", "0c": "Serial bus", "12": "Accelerator",
}
VENDORS = {
    "8086": "Intel", "10de": "NVIDIA", "15b3": "Mellanox", "1af4": "Red Hat", "1b36": "Red Hat",
    "1022": "AMD", "1002": "AMD/ATI", "144d": "Samsung", "14e4": "Broadcom", "1077": "QLogic",
    "1924": "Solarflare", "19e5": "Huawei", "1d0f": "Amazon", "8087": "Intel",
}


def class_name(code: str | None) -> str:
    if not code:
        return "unknown class"
    return _CLASSES.get(code[:4]) or _BASE.get(code[:2]) or f"class {code}"


def vendor_name(vendor_id: str | None) -> str:
    return VENDORS.get(vendor_id or "", vendor_id or "?")
