"""The host drawing's data: IOMMU units -> root complexes -> PCI bridge tree -> devices (and the mdevs carved
from them), plus groups (with their viability and why their members share them), holders (with their tenant)
and the holders' I/O address spaces with what each maps.

Shaped for d3.stratify ({id, parentId} rows); no raw snapshot reaches the browser.
"""
from __future__ import annotations

from fleet.inventory.models import Device, Group, Holder, Host, Mdev, Unit
from fleet.inventory.selectors import host_address_spaces
from fleet.web.pci_names import class_name, vendor_name
from fleet.web.selectors.host_facts import holder_tenants, host_ownership_facts
from fleet.web.selectors.violations import host_open_violations

ROOT_ID = "host"


def _flags(flags: dict | None) -> list[str]:
    return [k.upper() for k, v in (flags or {}).items() if v]


def _acs(acs) -> dict | None:
    if acs is None:
        return None
    if not acs.get("present"):
        return {"present": False}
    return {"present": True, "cap": _flags(acs.get("cap")), "ctl": _flags(acs.get("ctl"))}


def _device_caps(caps: dict) -> dict:
    return {
        "config_bytes": caps.get("config_bytes"),
        "extended_readable": caps.get("extended_readable"),
        "port_type": (caps.get("pcie") or {}).get("port_type"),
        "acs": _acs(caps.get("acs")),
        "ats": caps.get("ats"),
        "pri": caps.get("pri"),
        "pasid": caps.get("pasid"),
    }


def _sriov(device: Device) -> dict | None:
    if not device.sriov:
        return None
    s = device.sriov
    return {
        "role": "vf" if s.get("physfn") else "pf",
        "physfn": s.get("physfn"),
        "vfs": s.get("vfs") or [],
        "num_vfs": s.get("num_vfs"),
        "total_vfs": s.get("total_vfs"),
    }


def _root_complex(path: str) -> str:
    head = (path or "").split("/", 1)[0]
    return head if head.startswith("pci") else "pci?"


def host_topology(host: Host) -> dict:
    """Everything the host page draws, for one host."""
    devices = list(Device.objects.filter(host=host).order_by("bdf"))
    groups = list(Group.objects.filter(host=host).order_by("number"))
    units = list(Unit.objects.filter(host=host).order_by("name"))
    holders = list(Holder.objects.filter(host=host).order_by("pid"))
    mdevs = list(Mdev.objects.filter(host=host).order_by("parent", "uuid"))
    violations = host_open_violations(host)
    explained = host_ownership_facts(host)
    tenants = holder_tenants(holders)

    by_device: dict[str, list[str]] = {}
    by_group: dict[int, list[str]] = {}
    by_space: dict[str, list[str]] = {}
    for v in violations:
        if v["subject_kind"] == "address-space":
            by_space.setdefault(v["subject_id"], []).append(v["rule"])
        if v["device"]:
            by_device.setdefault(v["device"], []).append(v["rule"])
        if v["group"] is not None:
            by_group.setdefault(v["group"], []).append(v["rule"])

    bdfs = {d.bdf for d in devices}
    holder_of: dict[str, list[int]] = {}
    for h in holders:
        for bdf in h.devices or []:
            holder_of.setdefault(bdf, []).append(h.pid)

    mdevs_of_parent: dict[str, list[str]] = {}
    for m in mdevs:
        mdevs_of_parent.setdefault(m.parent, []).append(m.uuid)

    nodes: list[dict] = [{"id": ROOT_ID, "parentId": None, "kind": "host", "label": host.hostname}]
    unit_ids = {u.name for u in units}
    for u in units:
        nodes.append({
            "id": f"unit:{u.name}", "parentId": ROOT_ID, "kind": "unit", "label": u.name,
            "vendor": u.vendor, "features": u.features, "device_count": len(u.devices or []),
        })
    rc_seen: set[str] = set()
    for d in devices:
        top = d.parent_bdf is None or d.parent_bdf not in bdfs
        if top:
            unit = d.iommu_unit if d.iommu_unit in unit_ids else None
            unit_node = f"unit:{unit}" if unit else "unit:none"
            if unit is None and unit_node not in rc_seen:
                rc_seen.add(unit_node)
                nodes.append({"id": unit_node, "parentId": ROOT_ID, "kind": "unit",
                              "label": "no IOMMU unit", "vendor": None, "features": {}, "device_count": 0})
            rc = f"{unit_node}/{_root_complex(d.path)}"
            if rc not in rc_seen:
                rc_seen.add(rc)
                nodes.append({"id": rc, "parentId": unit_node, "kind": "rc", "label": _root_complex(d.path)})
            parent = rc
        else:
            parent = f"dev:{d.parent_bdf}"
        nodes.append({
            "id": f"dev:{d.bdf}", "parentId": parent, "kind": "device", "bdf": d.bdf,
            "label": class_name(d.class_code),
            "vendor_device": f"{d.vendor_id or '????'}:{d.device_id or '????'}",
            "vendor": vendor_name(d.vendor_id),
            "subsystem": f"{d.subsystem_vendor_id or '????'}:{d.subsystem_device_id or '????'}",
            "class": d.class_code, "revision": d.revision,
            "driver": d.driver, "driver_override": d.driver_override, "cdev": d.cdev,
            "owner_kind": d.owner_kind, "vm": d.owner_vm, "pid": d.owner_pid,
            "group": d.group_number, "unit": d.iommu_unit, "bridge": bool(d.is_bridge),
            "numa_node": d.numa_node, "link": d.link or {},
            "sriov": _sriov(d), "caps": _device_caps(d.capabilities or {}),
            "holders": holder_of.get(d.bdf, []), "mdevs": mdevs_of_parent.get(d.bdf, []),
            "violations": sorted(set(by_device.get(d.bdf, []))),
        })
    # A unit with no devices below it would be a dangling root in the drawing; keep it (it is a fact).
    group_rows = []
    members: dict[int, list[str]] = {}
    for d in devices:
        if d.group_number is not None:
            members.setdefault(d.group_number, []).append(d.bdf)
    # An mdev is held by whoever holds its group's node (/dev/vfio/N): VFIO hands its device fd out there.
    group_holders: dict[int, list[int]] = {}
    for h in holders:
        for gid in h.groups or []:
            group_holders.setdefault(gid, []).append(h.pid)
    mdev_rows = [{
        "id": f"mdev:{m.uuid}", "uuid": m.uuid, "parent": m.parent,
        "parentId": f"dev:{m.parent}" if m.parent in bdfs else None,
        "type": m.type, "type_name": m.type_name, "group": m.group_number,
        "holders": group_holders.get(m.group_number, []) if m.group_number is not None else [],
    } for m in mdevs]
    mdevs_of_group: dict[int, list[str]] = {}
    for m in mdev_rows:
        if m["group"] is not None:
            mdevs_of_group.setdefault(m["group"], []).append(m["uuid"])
    userspace_groups = {d.group_number for d in devices if d.owner_kind == Device.OwnerKind.USERSPACE}
    for g in groups:
        why = explained.get(g.number) or {}
        group_rows.append({
            "id": g.number, "type": g.type, "name": g.name, "unit": g.unit,
            "members": members.get(g.number, []),
            "mdevs": mdevs_of_group.get(g.number, []),
            "reserved_regions": g.reserved_regions or [],
            "violations": sorted(set(by_group.get(g.number, []))),
            "kind": why.get("kind"), "viable": why.get("viable"), "blockers": why.get("blockers") or {},
            "viability": why.get("viability"), "why_shared": why.get("why_shared") or [],
            # Viability matters once a member is given to userspace or a holder opens the group.
            "claimed": g.number in userspace_groups or g.number in group_holders,
        })
    holder_rows = [{
        "id": f"holder:{h.pid}", "pid": h.pid, "name": h.name, "kind": h.kind, "vm": h.vm,
        "workload": h.workload, "user": h.user, "uid": h.uid, "groups": h.groups or [],
        "nodes": h.nodes or [], "devices": h.devices or [], "device_fds": h.device_fds,
        "tenant": tenants.get(h.pid), "cgroup": h.cgroup,
        "mdevs": [m["uuid"] for m in mdev_rows if h.pid in m["holders"]],
    } for h in holders]
    edges = [{"source": f"dev:{bdf}", "target": f"holder:{h.pid}"}
             for h in holders for bdf in (h.devices or []) if bdf in bdfs]
    edges += [{"source": m["id"], "target": f"holder:{pid}"} for m in mdev_rows if m["parentId"] for pid in m["holders"]]
    return {
        "host": {
            "hostname": host.hostname, "kernel": host.kernel, "iommu_mode": host.iommu_mode,
            "iommu_enabled": host.iommu_enabled, "role": host.role, "stale": host.stale,
            "last_seen": host.last_seen.isoformat() if host.last_seen else None,
        },
        "nodes": nodes,
        "groups": group_rows,
        "holders": holder_rows,
        "mdevs": mdev_rows,
        "address_spaces": [{**space, "violations": sorted(set(by_space.get(space["key"], [])))}
                           for space in host_address_spaces(host)],
        "edges": edges,
        "violations": violations,
    }
