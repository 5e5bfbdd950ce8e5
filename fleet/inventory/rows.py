"""The mapping between a snapshot's sections and the current-state table rows, both ways.

`rows_from_document` and `sections_from_rows` are pure and inverse of each other (up to the
derived owner columns), which is what lets `selectors.host_state` rebuild a snapshot-shaped
dict that the policy engine evaluates exactly like the agent's document.
"""
from __future__ import annotations

from datetime import datetime, timezone

from django.utils.dateparse import parse_datetime

from agent.drivers import is_userspace_driver

UNIT_FIELDS = ("name", "vendor", "registers", "features", "devices")
GROUP_FIELDS = ("number", "type", "name", "unit", "reserved_regions", "member_bdfs")
DEVICE_FIELDS = (
    "bdf", "vendor_id", "device_id", "subsystem_vendor_id", "subsystem_device_id", "class_code", "revision",
    "driver", "driver_override", "group_number", "iommu_unit", "parent_bdf", "path", "numa_node", "link",
    "is_bridge", "header_type", "multifunction", "sriov", "physfn_bdf", "capabilities",
    "owner_kind", "owner_vm", "owner_pid", "group_id",
)
NODE_FIELDS = ("path", "kind", "group_number", "mode", "uid", "gid", "rdev", "device_bdf")
HOLDER_FIELDS = (
    "pid", "name", "user", "uid", "cmdline", "kind", "vm", "workload", "cgroup", "nodes", "groups", "devices",
    "device_fds", "vm_pinned_kb", "start_time",
)
MDEV_FIELDS = ("uuid", "parent", "type", "type_name", "group_number")
PASID_FIELDS = ("device_bdf", "pid", "source")

# table name -> (fields, key field); pasid users have no natural key and are compared as a whole.
TABLES = {
    "units": (UNIT_FIELDS, "name"),
    "groups": (GROUP_FIELDS, "number"),
    "devices": (DEVICE_FIELDS, "bdf"),
    "vfio_nodes": (NODE_FIELDS, "path"),
    "holders": (HOLDER_FIELDS, "pid"),
    "mdevs": (MDEV_FIELDS, "uuid"),
}


def _list(value) -> list:
    return value if isinstance(value, list) else []


def _dict(value) -> dict:
    return value if isinstance(value, dict) else {}


def device_owners(holders: list[dict]) -> dict[str, dict]:
    """BDF -> the holder (lowest pid) that can reach it."""
    owners: dict[str, dict] = {}
    for holder in sorted(holders, key=lambda h: h.get("pid") or 0):
        for bdf in _list(holder.get("devices")):
            owners.setdefault(bdf, holder)
    return owners


def device_row(device: dict, owner: dict | None) -> dict:
    driver = device.get("driver")
    sriov = device.get("sriov")
    if is_userspace_driver(driver) or owner is not None:
        owner_kind = "userspace"
    elif not driver:
        owner_kind = "unbound"
    else:
        owner_kind = "host"
    return {
        "bdf": device.get("bdf"),
        "vendor_id": device.get("vendor_id"),
        "device_id": device.get("device_id"),
        "subsystem_vendor_id": device.get("subsystem_vendor_id"),
        "subsystem_device_id": device.get("subsystem_device_id"),
        "class_code": device.get("class"),
        "revision": device.get("revision"),
        "driver": driver,
        "driver_override": device.get("driver_override"),
        "group_number": device.get("iommu_group"),
        "iommu_unit": device.get("iommu_unit"),
        "parent_bdf": device.get("parent"),
        "path": device.get("path") or "",
        "numa_node": device.get("numa_node"),
        "link": _dict(device.get("link")),
        "is_bridge": device.get("is_bridge"),
        "header_type": device.get("header_type"),
        "multifunction": device.get("multifunction"),
        "sriov": sriov,
        "physfn_bdf": sriov.get("physfn") if isinstance(sriov, dict) else None,
        "capabilities": _dict(device.get("capabilities")),
        "owner_kind": owner_kind,
        "owner_vm": (owner.get("vm") or owner.get("workload")) if owner else None,
        "owner_pid": owner.get("pid") if owner else None,
        "group_id": None,  # the Group row's id: only the apply service knows it
    }


def rows_from_document(doc: dict) -> dict[str, dict]:
    """table -> {key: row dict with the model's column names}; `pasid_users` is a list."""
    holders = _list(doc.get("holders"))
    owners = device_owners(holders)
    iommu = _dict(doc.get("iommu"))
    vfio = _dict(doc.get("vfio"))
    return {
        "units": {
            u["name"]: {"name": u["name"], "vendor": u.get("vendor") or "unknown", "registers": _dict(u.get("registers")),
                        "features": _dict(u.get("features")), "devices": _list(u.get("devices"))}
            for u in _list(iommu.get("units"))
        },
        "groups": {
            g["id"]: {"number": g["id"], "type": g.get("type"), "name": g.get("name"), "unit": g.get("unit"),
                      "reserved_regions": _list(g.get("reserved_regions")), "member_bdfs": _list(g.get("devices"))}
            for g in _list(doc.get("groups"))
        },
        "devices": {d["bdf"]: device_row(d, owners.get(d["bdf"])) for d in _list(doc.get("devices"))},
        "vfio_nodes": {
            n["path"]: {"path": n["path"], "kind": n.get("kind") or "", "group_number": n.get("group"), "mode": n.get("mode") or "",
                        "uid": n.get("uid"), "gid": n.get("gid"), "rdev": n.get("rdev"), "device_bdf": n.get("device")}
            for n in _list(vfio.get("nodes"))
        },
        "holders": {
            h["pid"]: {"pid": h["pid"], "name": h.get("name") or "", "user": h.get("user"), "uid": h.get("uid"),
                       "cmdline": _list(h.get("cmdline")), "kind": h.get("kind") or "other", "vm": h.get("vm"),
                       "workload": h.get("workload"), "cgroup": h.get("cgroup"), "nodes": _list(h.get("nodes")),
                       "groups": _list(h.get("groups")), "devices": _list(h.get("devices")), "device_fds": h.get("device_fds") or 0,
                       "vm_pinned_kb": h.get("vm_pinned_kb"), "start_time": h.get("start_time")}
            for h in holders
        },
        "mdevs": {
            m["uuid"]: {"uuid": m["uuid"], "parent": m.get("parent") or "", "type": m.get("type") or "", "type_name": m.get("type_name"),
                        "group_number": m.get("iommu_group")}
            for m in _list(doc.get("mdevs"))
        },
        "pasid_users": [
            {"device_bdf": u.get("device"), "pid": u.get("pid"), "source": u.get("source") or ""}
            for u in _list(_dict(doc.get("pasid")).get("users"))
        ],
    }


def sections_from_rows(rows: dict[str, dict]) -> dict:
    """The snapshot sections (`iommu.units`, `groups`, `devices`, `vfio.nodes`, `holders`, `mdevs`, `pasid.users`) of table rows."""
    return {
        "units": [
            {"name": r["name"], "vendor": r["vendor"], "devices": r["devices"], "registers": r["registers"], "features": r["features"]}
            for _, r in sorted(rows["units"].items())
        ],
        "groups": [
            {"id": r["number"], "type": r["type"], "name": r["name"], "devices": r["member_bdfs"],
             "reserved_regions": r["reserved_regions"], "unit": r["unit"]}
            for _, r in sorted(rows["groups"].items())
        ],
        "devices": [
            {"bdf": r["bdf"], "vendor_id": r["vendor_id"], "device_id": r["device_id"], "subsystem_vendor_id": r["subsystem_vendor_id"],
             "subsystem_device_id": r["subsystem_device_id"], "class": r["class_code"], "revision": r["revision"], "driver": r["driver"],
             "driver_override": r["driver_override"], "iommu_group": r["group_number"], "iommu_unit": r["iommu_unit"],
             "parent": r["parent_bdf"], "path": r["path"], "numa_node": r["numa_node"], "link": r["link"], "is_bridge": r["is_bridge"],
             "header_type": r["header_type"], "multifunction": r["multifunction"], "sriov": r["sriov"], "capabilities": r["capabilities"]}
            for _, r in sorted(rows["devices"].items())
        ],
        "nodes": [
            {"path": r["path"], "kind": r["kind"], "group": r["group_number"], "mode": r["mode"], "uid": r["uid"], "gid": r["gid"],
             "rdev": r["rdev"], "device": r["device_bdf"]}
            for _, r in sorted(rows["vfio_nodes"].items())
        ],
        "holders": [
            {"pid": r["pid"], "name": r["name"], "user": r["user"], "uid": r["uid"], "cmdline": r["cmdline"], "nodes": r["nodes"],
             "device_fds": r["device_fds"], "groups": r["groups"], "devices": r["devices"], "kind": r["kind"], "vm": r["vm"],
             "workload": r["workload"], "cgroup": r["cgroup"], "vm_pinned_kb": r["vm_pinned_kb"], "start_time": r["start_time"]}
            for _, r in sorted(rows["holders"].items())
        ],
        "mdevs": [
            {"uuid": r["uuid"], "parent": r["parent"], "type": r["type"], "type_name": r["type_name"], "iommu_group": r["group_number"]}
            for _, r in sorted(rows["mdevs"].items())
        ],
        "pasid_users": [{"device": r["device_bdf"], "pid": r["pid"], "source": r["source"]} for r in rows["pasid_users"]],
    }


# Host text columns are NOT NULL with "" for unknown; the snapshot says null. "" and null map onto each other.
HOST_TEXT_FACTS = ("kernel", "kernel_version", "cmdline", "boot_time")
HOST_VALUE_FACTS = ("tainted", "cpu_count", "memory_bytes")


def host_columns_from_document(doc: dict) -> dict:
    """Host column values of a document's host-level facts (everything except identity and counts)."""
    facts = _dict(doc.get("host"))
    agent = _dict(doc.get("agent"))
    vfio = _dict(doc.get("vfio"))
    pasid = _dict(doc.get("pasid"))
    columns = {key: facts.get(key) or "" for key in HOST_TEXT_FACTS}
    columns.update({key: facts.get(key) for key in HOST_VALUE_FACTS})
    columns.update(
        cmdline_flags=_dict(facts.get("cmdline_flags")),
        dmi=_dict(facts.get("dmi")),
        agent_version=str(agent.get("version") or "")[:40],
        agent_euid=agent.get("euid") if isinstance(agent.get("euid"), int) and abs(agent["euid"]) < 2**31 else None,
        iommu_enabled=_dict(doc.get("iommu")).get("enabled"),
        vfio_noiommu=bool(vfio.get("noiommu")),
        vfio_iommufd=bool(vfio.get("iommufd")),
        vfio_parameters=_dict(vfio.get("parameters")),
        vfio_cdevs=_list(vfio.get("cdevs")),
        pasid_idxd=_list(pasid.get("idxd")),
        mdev_parents=_list(doc.get("mdev_parents")),
        warnings=_list(doc.get("warnings")),
    )
    return columns


def host_section(host) -> dict:
    """The snapshot's `host` object rebuilt from a Host row."""
    section = {"hostname": host.hostname, "machine_id": host.machine_id or None}
    section.update({key: getattr(host, key) or None for key in HOST_TEXT_FACTS})
    section.update({key: getattr(host, key) for key in HOST_VALUE_FACTS})
    section.update(cmdline_flags=host.cmdline_flags, dmi=host.dmi)
    return section


def iommu_mode(groups: list[dict], iommu_enabled: bool | None) -> str:
    """off / translated / passthrough / mixed, from the default domain types of the real (non-VFIO-synthetic) groups."""
    kinds = set()
    for group in groups:
        if group.get("name") == "vfio-noiommu":
            continue
        kind = group.get("type")
        if kind == "identity":
            kinds.add("passthrough")
        elif kind in ("DMA", "DMA-FQ"):
            kinds.add("translated")
    if len(kinds) > 1:
        return "mixed"
    if kinds:
        return kinds.pop()
    real = [g for g in groups if g.get("name") != "vfio-noiommu"]
    return "translated" if (iommu_enabled and real) else "off"


def document_collected_at(doc: dict) -> datetime | None:
    """The document's `collected_at` as an aware datetime, None when absent or unparsable."""
    value = doc.get("collected_at")
    try:
        parsed = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed
