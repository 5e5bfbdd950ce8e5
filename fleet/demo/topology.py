"""Snapshot-shaped `devices[]` (docs/snapshot.md) from a real machine's hwloc PCI tree.

hwloc gives the tree and the ids; what a kernel would add is made plausible here:
PCIe port types from the position in the tree (a bridge under a host bridge is a
root port, the bridges below an upstream port are its downstream ports), ACS on
root and downstream ports (enabled the way Linux enables it: SV, RR, CR, UF, not
TB), ATS on GPUs and NICs, PASID/PRI on AMD Instinct GPUs (amdgpu's KFD uses
them), SR-IOV on the NICs that have it. Drivers, groups and owners are decided
by fleet.demo.synth per host.
"""
from __future__ import annotations

from dataclasses import dataclass

from agent.bdf import bdf_from_numbers

from .hwloc import Machine, PciFunction

_FLAGS = ("sv", "tb", "rr", "cr", "uf", "ec", "dt")
# Linux's pci_std_enable_acs() turns on these when the port has them (TB only for untrusted ports).
_LINUX_ENABLES = ("sv", "rr", "cr", "uf")


@dataclass(frozen=True)
class VfSpec:
    """How a PF's VFs are laid out (its SR-IOV capability): devfn = PF devfn + offset + i * stride."""

    vf_device_id: str
    total: int
    offset: int
    stride: int


# PF (vendor, device) -> SR-IOV layout, from the devices' datasheets / lspci of real hosts.
SRIOV_PFS = {
    ("8086", "1521"): VfSpec("1520", 7, 0x80, 4),  # I350: VFs at slot 0x10+
    ("15b3", "101b"): VfSpec("101c", 16, 1, 1),  # ConnectX-6 (ARI)
    ("1137", "0043"): VfSpec("00cf", 16, 1, 1),  # Cisco VIC usNIC
}
# VF ids hwloc lists beside their PF (the VIC's usNIC functions); their PF is function 0 of the slot.
KNOWN_VF_IDS = {("1137", "00cf"), ("1138", "00cf"), ("8086", "1520"), ("15b3", "101c")}

# Multi-function endpoints Linux treats as isolated between functions (drivers/pci/quirks.c,
# pci_quirk_mf_endpoint_acs: Intel's 82580/I350 family); shown here as ACS enabled on the function.
MF_ACS_QUIRK = {("8086", "1521")}

_ATS_CLASSES = ("0302", "0300", "0380", "0200", "0207", "0108")


def acs(*, present: bool, enabled: bool) -> dict:
    if not present:
        return {"present": False}
    cap = {f: f != "ec" for f in _FLAGS}
    ctl = {f: enabled and f in _LINUX_ENABLES for f in _FLAGS}
    return {"present": True, "cap": cap, "ctl": ctl}


def _link(gbps: float | None) -> dict:
    """hwloc's GB/s -> sysfs-style speed/width strings (the generation whose lane rate divides it)."""
    if not gbps:
        return {"current_speed": None, "current_width": None, "max_speed": None, "max_width": None}
    for rate, per_lane in (("32.0 GT/s PCIe", 3.938), ("16.0 GT/s PCIe", 1.969), ("8.0 GT/s PCIe", 0.985), ("5.0 GT/s PCIe", 0.5), ("2.5 GT/s PCIe", 0.25)):
        lanes = gbps / per_lane
        for width in (16, 8, 4, 2, 1):
            if abs(lanes - width) / width < 0.05:
                return {"current_speed": rate, "current_width": str(width), "max_speed": rate, "max_width": str(width)}
    return {"current_speed": None, "current_width": None, "max_speed": None, "max_width": None}


def _vf_bdf(domain: str, routing_id: int) -> str | None:
    """The BDF of a PCIe routing ID (bus << 8 | devfn): a VF's offset and stride carry into the next bus."""
    return bdf_from_numbers(int(domain, 16), routing_id >> 8, (routing_id >> 3) & 0x1F, routing_id & 7)


def _devfn(bdf: str) -> int:
    slot, fn = bdf[8:].split(".")
    return int(slot, 16) << 3 | int(fn, 16)


def base_devices(machine: Machine, *, domain: str | None = None, vfs_per_pf: int = 0) -> list[dict]:
    """The machine's functions as device dicts (driver, group and owner left empty).

    `domain` re-homes the whole tree into another PCI domain (for hosts built by
    replicating one machine); `vfs_per_pf` enables that many VFs on each SR-IOV
    capable PF (bounded by its TotalVFs).
    """
    funcs = list(machine.functions)
    if domain is not None:
        funcs = [_rehome(f, domain) for f in funcs]
    by_bdf = {f.bdf: f for f in funcs}
    children: dict[str | None, list[str]] = {}
    for f in funcs:
        children.setdefault(f.parent, []).append(f.bdf)

    port_type: dict[str, str] = {}
    for f in funcs:  # sorted by BDF, and a parent's bus number is below its children's
        port_type[f.bdf] = _port_type(f, by_bdf, port_type)

    slot_size: dict[str, int] = {}
    for f in funcs:
        if (f.vendor_id, f.device_id) not in KNOWN_VF_IDS:
            slot_size[f.slot] = slot_size.get(f.slot, 0) + 1

    devices: dict[str, dict] = {}
    paths: dict[str, str] = {}
    for f in funcs:
        paths[f.bdf] = (paths[f.parent] if f.parent else f.host_bridge) + "/" + f.bdf
        devices[f.bdf] = _device(f, port_type[f.bdf], paths[f.bdf], multifunction=slot_size.get(f.slot, 0) > 1)

    # VFs hwloc already lists (the VIC's usNIC functions): tie them to function 0 of their slot.
    for f in funcs:
        if (f.vendor_id, f.device_id) in KNOWN_VF_IDS:
            pf = f.slot + ".0"
            if pf in devices and pf != f.bdf:
                _link_vf(devices[pf], devices[f.bdf])
    for pf in list(devices.values()):
        spec = SRIOV_PFS.get((pf["vendor_id"], pf["device_id"]))
        if spec is None or pf["sriov"] is not None:
            continue
        n = min(vfs_per_pf, spec.total)
        pf["capabilities"]["sriov"] = _sriov_cap(spec, num=n)
        pf["sriov"] = {"total_vfs": spec.total, "num_vfs": n, "physfn": None, "vfs": [], "drivers_autoprobe": True}
        base = _devfn(pf["bdf"])
        bus = int(pf["bdf"][5:7], 16)
        for i in range(n):
            vf_bdf = _vf_bdf(pf["bdf"][:4], (bus << 8 | base) + spec.offset + i * spec.stride)
            if vf_bdf is None or vf_bdf in devices:
                continue
            vf = dict(pf, bdf=vf_bdf, device_id=spec.vf_device_id, multifunction=False, path=pf["path"].rsplit("/", 1)[0] + "/" + vf_bdf)
            vf["capabilities"] = dict(pf["capabilities"], sriov=_SRIOV_ABSENT, acs={"present": False})
            vf["sriov"] = None
            devices[vf_bdf] = vf
            _link_vf(pf, vf)
    return [devices[b] for b in sorted(devices)]


def _link_vf(pf: dict, vf: dict) -> None:
    if pf["sriov"] is None:
        spec = SRIOV_PFS.get((pf["vendor_id"], pf["device_id"]))
        pf["sriov"] = {"total_vfs": spec.total if spec else None, "num_vfs": 0, "physfn": None, "vfs": [], "drivers_autoprobe": True}
        if spec:
            pf["capabilities"]["sriov"] = _sriov_cap(spec, num=0)
    pf["sriov"]["vfs"] = sorted(pf["sriov"]["vfs"] + [vf["bdf"]])
    pf["sriov"]["num_vfs"] = len(pf["sriov"]["vfs"])
    if pf["capabilities"].get("sriov", {}).get("present"):
        pf["capabilities"]["sriov"] = dict(pf["capabilities"]["sriov"], num_vfs=len(pf["sriov"]["vfs"]), vf_enable=True)
    vf["sriov"] = {"total_vfs": None, "num_vfs": None, "physfn": pf["bdf"], "vfs": [], "drivers_autoprobe": None}
    vf["multifunction"] = False


_SRIOV_ABSENT = {"present": False, "vf_enable": None, "initial_vfs": None, "total_vfs": None, "num_vfs": None,
                 "vf_offset": None, "vf_stride": None, "vf_device_id": None}


def _sriov_cap(spec: VfSpec, *, num: int) -> dict:
    return {"present": True, "vf_enable": num > 0, "initial_vfs": spec.total, "total_vfs": spec.total, "num_vfs": num, "vf_offset": spec.offset, "vf_stride": spec.stride, "vf_device_id": spec.vf_device_id}


def _rehome(f: PciFunction, domain: str) -> PciFunction:
    from dataclasses import replace

    return replace(
        f,
        bdf=domain + f.bdf[4:],
        parent=domain + f.parent[4:] if f.parent else None,
        host_bridge=f"pci{domain}:{f.host_bridge.split(':', 1)[1]}",
    )


def _port_type(f: PciFunction, by_bdf: dict[str, PciFunction], known: dict[str, str]) -> str:
    parent_type = known.get(f.parent) if f.parent else None
    if f.is_bridge:
        if f.parent is None:
            return "root_port"
        if parent_type == "upstream_port":
            return "downstream_port"
        return "upstream_port"
    if f.parent is None:
        return "rc_integrated_endpoint"
    return "endpoint"


def _present_enabled(present: bool, enabled: bool) -> dict:
    return {"present": present, "enabled": enabled if present else None}


def _device(f: PciFunction, port: str, path: str, *, multifunction: bool) -> dict:
    is_port = port in ("root_port", "downstream_port")
    has_acs = is_port or (f.vendor_id, f.device_id) in MF_ACS_QUIRK
    gpu_pasid = f.vendor_id == "1002" and f.class_code.startswith("0380")
    return {
        "bdf": f.bdf,
        "vendor_id": f.vendor_id,
        "device_id": f.device_id,
        "subsystem_vendor_id": f.subsystem_vendor_id,
        "subsystem_device_id": f.subsystem_device_id,
        "class": f.class_code,
        "revision": f.revision,
        "driver": None,
        "driver_override": None,
        "iommu_group": None,
        "iommu_unit": None,
        "parent": f.parent,
        "path": path,
        "numa_node": f.numa_node,
        "link": _link(f.link_gbps),
        "is_bridge": f.is_bridge,
        "header_type": "bridge" if f.is_bridge else "normal",
        "multifunction": multifunction,
        "sriov": None,
        "capabilities": {
            "config_bytes": 4096,
            "extended_readable": True,
            "pcie": {"present": True, "port_type": port},
            "acs": acs(present=has_acs, enabled=has_acs),
            "ats": _present_enabled(not f.is_bridge and f.class_code.startswith(_ATS_CLASSES), False),
            "pri": _present_enabled(gpu_pasid, True),
            "pasid": dict(_present_enabled(gpu_pasid, True), width=16 if gpu_pasid else None, exec=False if gpu_pasid else None, priv=False if gpu_pasid else None),
            "sriov": _SRIOV_ABSENT,
        },
    }
