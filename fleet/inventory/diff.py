"""What changed between two states of a host, as change facts; pure (no database).

A state here is keyed rows (`rows.rows_from_document`) plus `"host"`, the host's fact columns
(`rows.host_columns_from_document`): the apply passes only the rows whose fingerprint moved, on
both sides, and `snapshot_changes` diffs two whole documents the same way.

A fact is `{"kind": Change.Kind value, "subject": str, "before": …, "after": …}`;
`before` is None for something that appeared and `after` None for something that left.
Volatile facts (link training, pinned memory, process start time, warnings) are not changes.
"""
from __future__ import annotations

from typing import Iterator

from agent.upgrade import upgrade

from .rows import host_columns_from_document, rows_from_document

DEVICE_SUMMARY = ("vendor_id", "device_id", "class", "driver")
DEVICE_IDENTITY = (
    "vendor_id", "device_id", "subsystem_vendor_id", "subsystem_device_id", "class", "revision",
    "parent", "path", "iommu_unit", "is_bridge", "header_type", "multifunction", "numa_node",
)
HOLDER_SUMMARY = ("name", "kind", "user", "uid", "vm", "workload", "groups", "devices")
HOLDER_TRACKED = ("name", "kind", "user", "uid", "vm", "workload", "groups", "devices", "nodes", "cmdline", "cgroup", "fds", "claims")
NODE_TRACKED = ("kind", "group", "mode", "uid", "gid", "rdev", "device")
UNIT_TRACKED = ("vendor", "devices", "features")
# Counters that move with every VM start; not a change of the unit.
UNIT_VOLATILE_FEATURES = ("domains_used",)


def _fact(kind: str, subject, before, after) -> dict:
    return {"kind": kind, "subject": str(subject)[:256], "before": before, "after": after}


def _pick(item: dict, keys) -> dict:
    return {key: item.get(key) for key in keys}


def _differing(before: dict, after: dict, keys) -> tuple[dict, dict]:
    changed = [key for key in keys if before.get(key) != after.get(key)]
    return _pick(before, changed), _pick(after, changed)


def _added_removed(old: dict, new: dict, kind_added: str, kind_removed: str, summary) -> Iterator[dict]:
    for key in sorted(new.keys() - old.keys(), key=str):
        yield _fact(kind_added, key, None, _pick(new[key], summary))
    for key in sorted(old.keys() - new.keys(), key=str):
        yield _fact(kind_removed, key, _pick(old[key], summary), None)


def _host_facts(old: dict, new: dict) -> Iterator[dict]:
    old_host, new_host = old["host"], new["host"]
    for column, kind in (("kernel", "kernel_changed"), ("cmdline", "cmdline_changed")):
        before, after = old_host.get(column) or None, new_host.get(column) or None  # "" in the column is the snapshot's null
        if before != after:
            yield _fact(kind, column, before, after)
    if old_host.get("software") != new_host.get("software"):
        yield _fact("other", "software", old_host.get("software"), new_host.get("software"))


def _iommu_facts(old: dict, new: dict) -> Iterator[dict]:
    before, after = old["host"].get("iommu_enabled"), new["host"].get("iommu_enabled")
    if before != after:
        yield _fact("iommu_changed", "iommu", {"enabled": before}, {"enabled": after})

    def stable(unit: dict) -> dict:
        features = {k: v for k, v in (unit.get("features") or {}).items() if k not in UNIT_VOLATILE_FEATURES}
        return {**_pick(unit, UNIT_TRACKED), "features": features}

    old_units = {k: stable(v) for k, v in old["units"].items()}
    new_units = {k: stable(v) for k, v in new["units"].items()}
    for name in sorted(old_units.keys() | new_units.keys(), key=str):
        before, after = old_units.get(name), new_units.get(name)
        if before is None or after is None:
            yield _fact("iommu_changed", f"unit {name}", before, after)
        elif before != after:
            yield _fact("iommu_changed", f"unit {name}", *_differing(before, after, UNIT_TRACKED))


def _group_facts(old: dict, new: dict) -> Iterator[dict]:
    old_groups, new_groups = old["groups"], new["groups"]
    yield from _added_removed(old_groups, new_groups, "group_added", "group_removed", ("type", "name", "devices"))
    for number in sorted(old_groups.keys() & new_groups.keys(), key=str):
        before, after = old_groups[number].get("type"), new_groups[number].get("type")
        if before != after:
            yield _fact("group_type_changed", number, before, after)


def _device_facts(old: dict, new: dict) -> Iterator[dict]:
    old_devices, new_devices = old["devices"], new["devices"]
    yield from _added_removed(old_devices, new_devices, "device_added", "device_removed", DEVICE_SUMMARY)
    for bdf in sorted(old_devices.keys() & new_devices.keys(), key=str):
        before, after = old_devices[bdf], new_devices[bdf]
        if before == after:
            continue
        if before.get("driver") != after.get("driver"):
            yield _fact("driver_changed", bdf, before.get("driver"), after.get("driver"))
        if before.get("driver_override") != after.get("driver_override"):
            yield _fact("driver_override_changed", bdf, before.get("driver_override"), after.get("driver_override"))
        if before.get("iommu_group") != after.get("iommu_group"):
            yield _fact("group_changed", bdf, before.get("iommu_group"), after.get("iommu_group"))
        if before.get("capabilities") != after.get("capabilities") or before.get("sriov") != after.get("sriov"):
            old_caps, new_caps = before.get("capabilities") or {}, after.get("capabilities") or {}
            b, a = _differing(old_caps, new_caps, sorted(old_caps.keys() | new_caps.keys()))
            if before.get("sriov") != after.get("sriov"):
                b["sriov_sysfs"], a["sriov_sysfs"] = before.get("sriov"), after.get("sriov")
            yield _fact("capability_changed", bdf, b, a)
        b, a = _differing(before, after, DEVICE_IDENTITY)
        if b or a:
            yield _fact("other", bdf, b, a)


def _holder_facts(old: dict, new: dict) -> Iterator[dict]:
    old_holders, new_holders = old["holders"], new["holders"]
    yield from _added_removed(old_holders, new_holders, "holder_added", "holder_removed", HOLDER_SUMMARY)
    for pid in sorted(old_holders.keys() & new_holders.keys(), key=str):
        b, a = _differing(old_holders[pid], new_holders[pid], HOLDER_TRACKED)
        if b or a:
            yield _fact("holder_changed", pid, b, a)


def _vfio_facts(old: dict, new: dict) -> Iterator[dict]:
    for key in ("noiommu", "iommufd", "parameters", "cdevs", "cdev_support", "modules"):
        before, after = old["host"].get(f"vfio_{key}"), new["host"].get(f"vfio_{key}")
        if before != after:
            yield _fact("vfio_changed", key, before, after)
    old_nodes, new_nodes = old["vfio_nodes"], new["vfio_nodes"]
    for path in sorted(old_nodes.keys() | new_nodes.keys(), key=str):
        before, after = old_nodes.get(path), new_nodes.get(path)
        if before is None or after is None:
            yield _fact("node_changed", path, before and _pick(before, NODE_TRACKED), after and _pick(after, NODE_TRACKED))
        else:
            b, a = _differing(before, after, NODE_TRACKED)
            if b or a:
                yield _fact("node_changed", path, b, a)


def _mdev_facts(old: dict, new: dict) -> Iterator[dict]:
    fields = ("parent", "type", "type_name", "iommu_group")
    old_mdevs, new_mdevs = old["mdevs"], new["mdevs"]
    for uuid in sorted(old_mdevs.keys() | new_mdevs.keys(), key=str):
        before, after = old_mdevs.get(uuid), new_mdevs.get(uuid)
        before, after = before and _pick(before, fields), after and _pick(after, fields)
        if before != after:
            yield _fact("mdev_changed", uuid, before, after)


def _pasid_facts(old: dict, new: dict) -> Iterator[dict]:
    def by_device(state):
        out: dict = {}
        for user in state["pasid_users"]:
            out.setdefault(user["device"], set()).add((user["pid"], user["source"]))
        return out

    old_users, new_users = by_device(old), by_device(new)
    for device in sorted(old_users.keys() | new_users.keys(), key=str):
        before, after = old_users.get(device, set()), new_users.get(device, set())
        if before != after:
            as_list = lambda users: [{"pid": pid, "source": source} for pid, source in sorted(users, key=str)] or None  # noqa: E731
            yield _fact("pasid_changed", device, as_list(before), as_list(after))


SPACE_SUMMARY = ("pid", "kind", "backend", "vm")


def _attached(attachments) -> list[dict]:
    return [{"group": a["group"], "certainty": a["certainty"]} if a["group"] is not None
            else {"device": a["device"], "certainty": a["certainty"]} for a in sorted(attachments, key=lambda a: a["key"])]


def _address_space_facts(old: dict, new: dict) -> Iterator[dict]:
    """An address space appeared or left (with what it maps), its attachments moved, a VM's backend moved.

    Pinned and locked memory move with every mapping: not changes. A VM restarted on the other backend
    leaves one space and opens another (a new pid): paired by the VM's name, that is one backend change.
    """
    old_spaces, new_spaces = old.get("address_spaces", {}), new.get("address_spaces", {})
    old_att, new_att = old.get("attachments", {}), new.get("attachments", {})
    by_space = lambda rows: {space: [a for a in rows.values() if a["space"] == space] for space in {a["space"] for a in rows.values()}}  # noqa: E731
    old_by, new_by = by_space(old_att), by_space(new_att)
    for key in sorted(new_spaces.keys() - old_spaces.keys(), key=str):
        yield _fact("address_space_added", key, None, {**_pick(new_spaces[key], SPACE_SUMMARY), "attached": _attached(new_by.get(key, []))})
    for key in sorted(old_spaces.keys() - new_spaces.keys(), key=str):
        yield _fact("address_space_removed", key, {**_pick(old_spaces[key], SPACE_SUMMARY), "attached": _attached(old_by.get(key, []))}, None)
    came_or_went = (new_spaces.keys() - old_spaces.keys()) | (old_spaces.keys() - new_spaces.keys())
    # Only the attachments that moved, so the apply (which passes only moved rows) and two whole documents agree.
    for key in sorted((old_by.keys() | new_by.keys()) - came_or_went, key=str):
        before = _attached([a for a in old_by.get(key, []) if new_att.get(a["key"]) != a])
        after = _attached([a for a in new_by.get(key, []) if old_att.get(a["key"]) != a])
        if before or after:
            yield _fact("address_space_changed", key, before, after)
    backends: dict = {}
    for spaces, side in ((old_spaces, 0), (new_spaces, 1)):
        for key in came_or_went & spaces.keys():
            if spaces[key].get("vm"):
                backends.setdefault(spaces[key]["vm"], (set(), set()))[side].add(spaces[key]["backend"])
    for vm, (before, after) in sorted(backends.items()):
        if before and after and before != after:
            yield _fact("address_space_backend_changed", vm, {"backends": sorted(before)}, {"backends": sorted(after)})


def rows_changes(old: dict, new: dict) -> list[dict]:
    """Every change fact from `old` to `new` (keyed rows and host columns), in a stable order
    (host, IOMMU, groups, devices, holders, address spaces, VFIO, mdev, PASID)."""
    facts: list[dict] = []
    for section in (_host_facts, _iommu_facts, _group_facts, _device_facts, _holder_facts, _address_space_facts, _vfio_facts,
                    _mdev_facts, _pasid_facts):
        facts.extend(section(old, new))
    return facts


def keyed_state(document: dict) -> dict:
    """A snapshot document (schema 1 or 2, upgraded as the apply does) as the diff reads it: its rows and host columns."""
    document = upgrade(document)
    return {"host": host_columns_from_document(document), **rows_from_document(document)}


def snapshot_changes(old: dict, new: dict) -> list[dict]:
    """Every change fact from one snapshot document to another (both through the tables' row mapping)."""
    return rows_changes(keyed_state(old), keyed_state(new))
