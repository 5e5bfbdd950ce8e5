"""Small hand-made snapshot-shaped states for cases no capture shows (each test says which real case it stands for)."""
from __future__ import annotations

import copy

NO_ACS = {"present": False}
FULL_ACS = {"present": True, "cap": dict.fromkeys(("sv", "tb", "rr", "cr", "uf", "ec", "dt"), True),
            "ctl": {"sv": True, "tb": True, "rr": True, "cr": True, "uf": True, "ec": False, "dt": False}}


def device(bdf: str, *, driver: str | None = None, group: int | None = None, parent: str | None = None,
           bridge: bool = False, port_type: str | None = "endpoint", cls: str = "020000", vendor: str = "8086",
           device_id: str = "10d3", acs=NO_ACS, ats=None, pri=None, pasid=None, sriov=None, unit: str | None = "dmar0",
           multifunction: bool = False) -> dict:
    return {
        "bdf": bdf, "vendor_id": vendor, "device_id": device_id, "subsystem_vendor_id": None, "subsystem_device_id": None,
        "class": "060400" if bridge else cls, "revision": "00", "driver": driver, "driver_override": None,
        "iommu_group": group, "iommu_unit": unit if group is not None else None, "parent": parent, "path": bdf, "numa_node": None,
        "link": {}, "is_bridge": bridge, "header_type": "bridge" if bridge else "normal", "multifunction": multifunction,
        "sriov": sriov,
        "capabilities": {"config_bytes": 4096, "extended_readable": True, "pcie": {"present": True, "port_type": port_type},
                         "acs": acs, "ats": ats or {"present": False, "enabled": None}, "pri": pri or {"present": False, "enabled": None},
                         "pasid": pasid or {"present": False, "enabled": None, "width": None, "exec": None, "priv": None},
                         "sriov": None},
    }


def root_port(bdf: str, group: int, *, acs=NO_ACS) -> dict:
    return device(bdf, driver="pcieport", group=group, bridge=True, port_type="root_port", acs=acs, device_id="000c", vendor="1b36")


def intel_unit(name: str = "dmar0", **features) -> dict:
    base = {"pasid": False, "scalable_mode": False, "page_requests": False, "interrupt_remapping": True, "nesting": False,
            "pass_through": True, "caching_mode": False, "device_tlb": True, "posted_interrupts": False, "gt": None, "ppr": None,
            "pasid_width": None, "domains_supported": 65536, "domains_used": 4}
    base.update(features)
    return {"name": name, "vendor": "intel", "devices": [], "registers": {"cap": "d2008c22260206", "ecap": "f00f4a"}, "features": base}


def holder(pid: int, *, vm: str | None = None, groups=(), devices=(), uid: int | None = 64055, nodes=None, kind="qemu",
           workload: str | None = None, cgroup: str | None = None, device_fds: int = 1) -> dict:
    return {"pid": pid, "name": "qemu-system-x86" if kind == "qemu" else "proc", "user": None, "uid": uid,
            "cmdline": [], "nodes": sorted(nodes if nodes is not None else [f"/dev/vfio/{g}" for g in groups] + ["/dev/vfio/vfio"]),
            "device_fds": device_fds, "groups": list(groups), "devices": list(devices), "kind": kind, "vm": vm,
            "workload": workload if workload is not None else vm, "cgroup": cgroup, "vm_pinned_kb": None, "start_time": None}


def node(path: str, *, kind: str = "group", group: int | None = None, mode: str = "0600", uid: int = 0, gid: int = 0,
         device: str | None = None) -> dict:
    return {"path": path, "kind": kind, "group": group, "mode": mode, "uid": uid, "gid": gid, "rdev": "246:0", "device": device}


def _cdevs(nodes) -> list[dict]:
    named = {n["path"].rsplit("/", 1)[1]: n["device"] for n in nodes
             if n["kind"] == "device" and n["path"].startswith("/dev/vfio/devices/") and n.get("device")}
    return [{"name": name, "device": bdf, "rdev": "511:0"} for name, bdf in sorted(named.items())]


def state(*, hostname: str = "hand-made", devices=(), groups=None, units=None, holders=(), nodes=(), cmdline_flags=None,
          parameters=None, kernel: str = "6.1.0-56-amd64", tainted: int = 0, mdevs=(), mdev_parents=(), pasid_users=(),
          group_types=None, reserved=None) -> dict:
    """A snapshot-shaped dict; `groups` defaults to the devices' `iommu_group` values, `vfio.cdevs` to the cdev
    nodes among `nodes` that name their device (the agent reads both from /sys/class/vfio-dev)."""
    devices = [copy.deepcopy(d) for d in devices]
    if groups is None:
        members: dict[int, list[str]] = {}
        for d in devices:
            if d["iommu_group"] is not None:
                members.setdefault(d["iommu_group"], []).append(d["bdf"])
        groups = [{"id": g, "type": (group_types or {}).get(g, "DMA-FQ"), "name": None, "devices": sorted(m),
                   "reserved_regions": (reserved or {}).get(g, []), "unit": "dmar0"} for g, m in sorted(members.items())]
    units = [intel_unit()] if units is None else units
    flags = {"intel_iommu": "on", "amd_iommu": None, "iommu": None, "iommu_passthrough": None, "iommu_strict": None,
             "pcie_acs_override": None, "pci_acs": [], "pci_noats": False, "vfio_pci_ids": [], "vfio_noiommu": None}
    flags.update(cmdline_flags or {})
    params = {"enable_unsafe_noiommu_mode": "N", "type1_allow_unsafe_interrupts": "N", "iommufd_allow_unsafe_interrupts": None,
              "disable_denylist": "N", "enable_sriov": "N"}
    params.update(parameters or {})
    return {
        "schema": 1, "collected_at": "2026-11-25T14:00:00Z", "seq": 0, "agent": {"version": "t", "euid": 0, "root": "/"},
        "host": {"hostname": hostname, "machine_id": None, "kernel": kernel, "kernel_version": None, "cmdline": None,
                 "cmdline_flags": flags, "tainted": tainted, "cpu_count": None, "memory_bytes": None, "boot_time": None, "dmi": {}},
        "iommu": {"enabled": bool(units or groups), "units": units},
        "groups": groups,
        "devices": sorted(devices, key=lambda d: d["bdf"]),
        "vfio": {"noiommu": False, "iommufd": any(n["kind"] == "iommufd" for n in nodes), "nodes": list(nodes),
                 "parameters": params, "cdevs": _cdevs(nodes)},
        "holders": sorted(holders, key=lambda h: h["pid"]),
        "mdevs": list(mdevs), "mdev_parents": list(mdev_parents),
        "pasid": {"idxd": [], "users": list(pasid_users)},
        "warnings": [],
    }
