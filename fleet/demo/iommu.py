"""A synthetic host's IOMMU units, reserved regions and VFIO device nodes.

Register values are real parts' (a Skylake-SP VT-d unit, an EPYC Rome IOMMU's EFR)
and their features are decoded with the agent's own decoders, so they agree with
what the agent would report. One unit per host bridge (PCI root), as on hosts
with one DMAR/IVHD per root complex.
"""
from __future__ import annotations

from agent.collectors.iommu_units import AMD_EFR_FIRST_SINCE, decode_amd, decode_intel, kernel_tuple

from .owners import cdev_names

INTEL_CAP, INTEL_ECAP = "d2078c106f0466", "f020df"
AMD_EFR, AMD_EFR2 = 0x58F77EF22294ADE, 0x0
MSI_REGION = {"start": "0x00000000fee00000", "end": "0x00000000feefffff", "type": "msi"}
AMD_HT_HOLE = {"start": "0x000000fd00000000", "end": "0x000000ffffffffff", "type": "reserved"}
VFIO_MAJOR = 243
VFIO_CDEV_MAJOR = 237


def reserved_regions(vendor: str) -> list[dict]:
    """A group's reserved regions: the MSI window, and on AMD the HyperTransport hole too."""
    return [dict(MSI_REGION), dict(AMD_HT_HOLE)] if vendor == "amd" else [dict(MSI_REGION)]


def units(vendor: str, release: str, unit_names: dict, devices: list[dict]) -> list[dict]:
    units = []
    for i, (hb, name) in enumerate(sorted(unit_names.items(), key=lambda kv: kv[1])):
        served = sorted(d["bdf"] for d in devices if d["path"].split("/", 1)[0] == hb)
        if vendor == "intel":
            registers = {"cap": INTEL_CAP, "ecap": INTEL_ECAP, "version": "1:0", "address": f"{0xC5FFC000 + i * 0x2000000:x}",
                         "domains_supported": "65536", "domains_used": str(min(65536, 1 + len(served)))}
            features = decode_intel(int(INTEL_CAP, 16), int(INTEL_ECAP, 16))
            features["domains_supported"] = 65536
            features["domains_used"] = 1 + len(served)
        else:
            version = kernel_tuple(release)
            pair = (AMD_EFR, AMD_EFR2) if version and version >= AMD_EFR_FIRST_SINCE else (AMD_EFR2, AMD_EFR)
            registers = {"features": "%x:%x" % pair}
            features = decode_amd(AMD_EFR)
        units.append({"name": name, "vendor": vendor, "devices": served, "registers": registers, "features": features})
    return units


def has_cdevs(release: str) -> bool:
    """Per-device VFIO nodes and /dev/iommu: kernel 6.6+ (the distributions here build both in)."""
    return (kernel_tuple(release) or (0, 0)) >= (6, 6)


def vfio_facts(release: str, holders: list[dict], devices: list[dict], by_bdf: dict) -> dict:
    iommufd = has_cdevs(release)
    nodes = [{"path": "/dev/vfio/vfio", "kind": "container", "group": None, "mode": "0666", "uid": 0, "gid": 0, "rdev": "10:196", "device": None}]
    # libvirt labels every node of an assigned device for its VM: the group node and, on 6.6+, the cdev,
    # whichever of the two the VM opens.
    owner = {g: h["uid"] for h in holders for g in h["groups"]}
    owner.update({by_bdf[b]["iommu_group"]: h["uid"] for h in holders if "/dev/iommu" in h["nodes"] for b in h["devices"]})
    # Groups of devices bound to vfio-pci, and the groups VFIO made for mdevs (held by their VMs).
    vfio_groups = sorted({by_bdf[d["bdf"]]["iommu_group"] for d in devices if d["driver"] == "vfio-pci"} | set(owner))
    for minor, g in enumerate(vfio_groups):
        uid = owner.get(g, 0)
        nodes.append({"path": f"/dev/vfio/{g}", "kind": "group", "group": g, "mode": "0600", "uid": uid, "gid": uid,
                      "rdev": f"{VFIO_MAJOR}:{minor}", "device": None})
    uio = [d["bdf"] for d in devices if d["driver"] in ("igb_uio", "uio_pci_generic")]
    for minor, bdf in enumerate(uio):
        nodes.append({"path": f"/dev/uio{minor}", "kind": "uio", "group": None, "mode": "0600", "uid": 0, "gid": 0,
                      "rdev": f"{VFIO_MAJOR + 1}:{minor}", "device": bdf})
    cdevs = []
    if iommufd:
        nodes.append({"path": "/dev/iommu", "kind": "iommufd", "group": None, "mode": "0660", "uid": 0, "gid": 0, "rdev": "10:123", "device": None})
        for bdf, name in sorted(cdev_names(devices).items(), key=lambda kv: int(kv[1][4:])):
            rdev = f"{VFIO_CDEV_MAJOR}:{name[4:]}"
            cdevs.append({"name": name, "device": bdf, "rdev": rdev})
            uid = owner.get(by_bdf[bdf]["iommu_group"], 0)
            nodes.append({"path": f"/dev/vfio/devices/{name}", "kind": "device", "group": None, "mode": "0600",
                          "uid": uid, "gid": uid, "rdev": rdev, "device": bdf})
    ubuntu = "generic" in release
    return {
        "noiommu": False,
        "nodes": sorted(nodes, key=lambda n: n["path"]),
        "iommufd": iommufd,
        "parameters": {
            "enable_unsafe_noiommu_mode": "N" if ubuntu else None,
            "type1_allow_unsafe_interrupts": "N",
            "iommufd_allow_unsafe_interrupts": "N" if iommufd else None,
            "disable_denylist": "N",
            "enable_sriov": "N",
        },
        "cdevs": cdevs,
    }
