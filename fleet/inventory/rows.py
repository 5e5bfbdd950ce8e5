"""The one mapping between a snapshot document and the current-state tables, both ways.

A row is a dict keyed by the snapshot's own field names, plus the few columns the server derives
(a device's owner and group link), so the diff, the fingerprints and the policy state all speak the
snapshot's vocabulary. `Field.column` names the model field only where its name differs. Adding a
device attribute takes the schema, the model field and one `Field` in `DEVICES`.

`rows_from_document` is pure; `state_from_rows` rebuilds from rows (read back from the tables or
just built) the snapshot-shaped dict the policy engine evaluates exactly like the agent's document.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property

from django.utils.dateparse import parse_datetime

from agent.ownership import Ownership, ownership

from . import limits
from .models import AddressSpace, Attachment, Device, Group, Holder, Mdev, PasidUser, Unit, VfioNode


@dataclass(frozen=True)
class Field:
    """One snapshot key and the model field it is stored in."""

    key: str
    column: str = ""
    # A list or dict field holds an empty one when the document has anything else; `default`
    # replaces a missing or empty value (the column is NOT NULL).
    shape: type | None = None
    default: object = None

    @property
    def name(self) -> str:
        return self.column or self.key


@dataclass(frozen=True)
class Table:
    """A list section of the snapshot stored one row per item, keyed by `key` within a host."""

    name: str
    model: type
    path: tuple[str, ...]  # where the list sits in the document; () for a table the ownership model derives
    key: str | None  # None: no natural key, the rows are compared as a whole list
    fields: tuple[Field, ...]
    derived: tuple[str, ...] = ()  # columns the server computes; not part of the snapshot

    @cached_property
    def key_column(self) -> str | None:
        """The model field holding the key."""
        return next((f.name for f in self.fields if f.key == self.key), None)

    @cached_property
    def columns(self) -> tuple[str, ...]:
        """Model field names, in `fields` then `derived` order."""
        return (*(f.name for f in self.fields), *self.derived)

    @cached_property
    def keys(self) -> tuple[str, ...]:
        """Row keys, in the same order as `columns`."""
        return (*(f.key for f in self.fields), *self.derived)

    @cached_property
    def _snapshot_keys(self) -> tuple[str, ...]:
        return tuple(f.key for f in self.fields)

    @cached_property
    def _shaped(self) -> tuple[tuple[str, type], ...]:
        return tuple((f.key, f.shape) for f in self.fields if f.shape is not None)

    @cached_property
    def _defaulted(self) -> tuple[tuple[str, object], ...]:
        return tuple((f.key, f.default) for f in self.fields if f.default is not None)

    def row(self, item: dict) -> dict:
        # Runs for every item of every snapshot (~1,200 for a 480-device host): a plain comprehension, then
        # the few fields that need it fixed up.
        get = item.get
        out = {key: get(key) for key in self._snapshot_keys}
        for key, shape in self._shaped:
            if not isinstance(out[key], shape):
                out[key] = shape()
        for key, default in self._defaulted:
            if not out[key]:
                out[key] = default
        return out

    def item(self, row: dict) -> dict:
        """The snapshot item of a row (derived columns left out)."""
        return {f.key: row[f.key] for f in self.fields}

    def values(self, row: dict) -> dict:
        """model field -> value of a row."""
        return {column: row[key] for column, key in zip(self.columns, self.keys)}

    def values_row(self, instance) -> dict:
        """The row of a model instance (what `values` stored), keyed by the row's keys."""
        return {key: getattr(instance, column) for column, key in zip(self.columns, self.keys)}

    def instance(self, row: dict, **extra):
        return self.model(**self.values(row), **extra)


L, D = list, dict
UNITS = Table("units", Unit, ("iommu", "units"), "name", (
    Field("name"), Field("vendor", default="unknown"), Field("devices", shape=L), Field("registers", shape=D),
    Field("features", shape=D),
))
GROUPS = Table("groups", Group, ("groups",), "id", (
    Field("id", "number"), Field("type"), Field("name"), Field("devices", "member_bdfs", shape=L),
    Field("reserved_regions", shape=L), Field("unit"),
))
DEVICES = Table("devices", Device, ("devices",), "bdf", (
    Field("bdf"), Field("vendor_id"), Field("device_id"), Field("subsystem_vendor_id"), Field("subsystem_device_id"),
    Field("class", "class_code"), Field("revision"), Field("driver"), Field("driver_override"),
    Field("iommu_group", "group_number"), Field("iommu_unit"), Field("parent", "parent_bdf"), Field("path", default=""),
    Field("numa_node"), Field("link", shape=D), Field("is_bridge"), Field("header_type"), Field("multifunction"),
    Field("sriov"), Field("capabilities", shape=D),
), derived=("physfn_bdf", "owner_kind", "owner_vm", "owner_pid", "cdev", "group_id"))
VFIO_NODES = Table("vfio_nodes", VfioNode, ("vfio", "nodes"), "path", (
    Field("path"), Field("mode", default=""), Field("uid"), Field("gid"), Field("rdev"), Field("kind", default=""),
    Field("group", "group_number"), Field("device", "device_bdf"),
))
HOLDERS = Table("holders", Holder, ("holders",), "pid", (
    Field("pid"), Field("name", default=""), Field("user"), Field("uid"), Field("cmdline", shape=L), Field("nodes", shape=L),
    Field("device_fds", default=0), Field("groups", shape=L), Field("devices", shape=L), Field("kind", default="other"),
    Field("vm"), Field("workload"), Field("cgroup"), Field("vm_pinned_kb"), Field("start_time"),
    Field("vm_locked_kb"), Field("fds", shape=L), Field("claims", shape=L),
))
MDEVS = Table("mdevs", Mdev, ("mdevs",), "uuid", (
    Field("uuid"), Field("parent", default=""), Field("type", default=""), Field("type_name"),
    Field("iommu_group", "group_number"),
))
PASID_USERS = Table("pasid_users", PasidUser, ("pasid", "users"), None, (
    Field("device", "device_bdf"), Field("pid"), Field("source", default=""),
))

# Not in the document: built from `agent.ownership.AddressSpace` (its field names), one attachment row per
# attached group or device.
ADDRESS_SPACES = Table("address_spaces", AddressSpace, (), "key", (
    Field("key"), Field("pid"), Field("fd"), Field("kind"), Field("backend"), Field("attachment_known"),
    Field("pinned_kb"), Field("locked_kb"),
), derived=("vm",))
ATTACHMENTS = Table("attachments", Attachment, (), "key", (
    Field("key"), Field("space"), Field("group", "group_number"), Field("device", "device_bdf"), Field("certainty"),
))

# Groups first: device rows point at group rows by id.
DOCUMENT_TABLES = (GROUPS, DEVICES, UNITS, VFIO_NODES, HOLDERS, MDEVS)
KEYED_TABLES = (*DOCUMENT_TABLES, ADDRESS_SPACES, ATTACHMENTS)
# The tables the document's own lists are stored in (what ingest validation bounds).
TABLES = (*DOCUMENT_TABLES, PASID_USERS)


@dataclass(frozen=True)
class HostFact:
    """A host-level snapshot value stored in a Host column."""

    column: str
    path: tuple[str, ...]
    shape: type | None = None
    text: bool = False  # NOT NULL text column: "" stands for the snapshot's null

    def read(self, doc: dict):
        value = _at(doc, self.path)
        if self.shape is not None:
            return value if isinstance(value, self.shape) else self.shape()
        if self.text:
            return value or ""
        return value

    def item(self, value):
        return (value or None) if self.text else value


HOST_FACTS = (
    HostFact("kernel", ("host", "kernel"), text=True), HostFact("kernel_version", ("host", "kernel_version"), text=True),
    HostFact("cmdline", ("host", "cmdline"), text=True), HostFact("cmdline_flags", ("host", "cmdline_flags"), shape=D),
    HostFact("tainted", ("host", "tainted")), HostFact("cpu_count", ("host", "cpu_count")),
    HostFact("memory_bytes", ("host", "memory_bytes")), HostFact("boot_time", ("host", "boot_time"), text=True),
    HostFact("dmi", ("host", "dmi"), shape=D),
    HostFact("iommu_enabled", ("iommu", "enabled")),
    HostFact("vfio_noiommu", ("vfio", "noiommu")), HostFact("vfio_iommufd", ("vfio", "iommufd")),
    HostFact("vfio_parameters", ("vfio", "parameters"), shape=D), HostFact("vfio_cdevs", ("vfio", "cdevs"), shape=L),
    HostFact("vfio_cdev_support", ("vfio", "cdev_support")), HostFact("vfio_modules", ("vfio", "modules"), shape=D),
    HostFact("software", ("host", "software"), shape=D),
    HostFact("mdev_parents", ("mdev_parents",), shape=L),
    HostFact("pasid_idxd", ("pasid", "idxd"), shape=L),
    HostFact("warnings", ("warnings",), shape=L),
)


def _at(doc, path: tuple[str, ...]):
    for part in path:
        doc = doc.get(part) if isinstance(doc, dict) else None
    return doc


def _items(doc: dict, table: Table) -> list[dict]:
    found = _at(doc, table.path)
    return [item for item in found if isinstance(item, dict)] if isinstance(found, list) else []


USERSPACE, HOST, UNBOUND = Device.OwnerKind.USERSPACE.value, Device.OwnerKind.HOST.value, Device.OwnerKind.UNBOUND.value


def holder_vm(holder: dict | None) -> str | None:
    """The VM or workload a holder belongs to: what a device's owner_vm and an address space's vm hold."""
    return (holder.get("vm") or holder.get("workload")) if holder else None


def cdev_names(doc: dict) -> dict[str, str]:
    """BDF -> the name of its VFIO cdev (`vfio3`), from the document's `vfio.cdevs`."""
    cdevs = _at(doc, ("vfio", "cdevs"))
    return {c["device"]: c["name"] for c in (cdevs if isinstance(cdevs, list) else [])
            if isinstance(c, dict) and isinstance(c.get("device"), str) and isinstance(c.get("name"), str)
            and len(c["name"]) <= limits.CDEV_NAME}


def device_row(device: dict, holders_by_pid: dict[int, dict], model: Ownership, cdevs: dict[str, str]) -> dict:
    """A device's row: its snapshot fields, who can reach it (the ownership model), its PF and its cdev."""
    row = DEVICES.row(device)
    sriov = row["sriov"]
    # In DEVICES.derived order, so that a row read back from the table fingerprints the same.
    row["physfn_bdf"] = sriov.get("physfn") if isinstance(sriov, dict) else None
    owned = model.devices.get(row["bdf"])
    reach = owned.owner if owned is not None else None
    owner = holders_by_pid.get(reach.pid) if reach is not None else None
    row["owner_kind"] = owned.owner_kind if owned is not None else (HOST if row["driver"] else UNBOUND)
    row["owner_vm"] = holder_vm(owner)
    row["owner_pid"] = reach.pid if reach is not None else None
    row["cdev"] = cdevs.get(row["bdf"])
    row["group_id"] = None  # the Group row's id: only the apply knows it
    return row


def rows_from_document(doc: dict) -> dict:
    """table name -> {key: row} for the keyed tables; `pasid_users` -> a list of rows. `doc` in schema 2's shape."""
    holders = {h.get("pid"): h for h in _items(doc, HOLDERS)}
    model = ownership(doc)
    cdevs = cdev_names(doc)
    out: dict = {}
    for table in DOCUMENT_TABLES:
        if table is DEVICES:
            out["devices"] = {d.get("bdf"): device_row(d, holders, model, cdevs) for d in _items(doc, DEVICES)}
        else:
            out[table.name] = {item.get(table.key): table.row(item) for item in _items(doc, table)}
    out["address_spaces"], out["attachments"] = address_space_rows(model, holders)
    out["pasid_users"] = [PASID_USERS.row(item) for item in _items(doc, PASID_USERS)]
    return out


def address_space_rows(model: Ownership, holders_by_pid: dict[int, dict]) -> tuple[dict, dict]:
    """({key: address space row}, {key: attachment row}) of the ownership model's address spaces."""
    spaces, attachments = {}, {}
    for space in model.address_spaces:
        row = ADDRESS_SPACES.row(space.as_dict())
        if not (isinstance(row["fd"], int) and limits.INT32[0] <= row["fd"] <= limits.INT32[1]):
            # The schema bounds no fd number; a kernel's are far below 2**31, so a larger one is not an fd.
            row["fd"] = None
            row["key"] = f"{space.pid}:{space.kind}"
        row["vm"] = holder_vm(holders_by_pid.get(space.pid))
        spaces[row["key"]] = row
        for group, certainty in sorted(space.groups.items()):
            key = f"{row['key']}/group/{group}"
            attachments[key] = {"key": key, "space": row["key"], "group": group, "device": None, "certainty": certainty}
        for bdf, certainty in sorted(space.devices.items()):
            key = f"{row['key']}/device/{bdf}"
            attachments[key] = {"key": key, "space": row["key"], "group": None, "device": bdf, "certainty": certainty}
    return spaces, attachments


def host_columns_from_document(doc: dict) -> dict:
    """Host column values of a document's host-level facts (everything except identity, counts and bookkeeping)."""
    columns = {fact.column: fact.read(doc) for fact in HOST_FACTS}
    agent = doc.get("agent") if isinstance(doc.get("agent"), dict) else {}
    euid = agent.get("euid")
    columns["agent_version"] = str(agent.get("version") or "")[:limits.AGENT_VERSION]
    columns["agent_euid"] = euid if isinstance(euid, int) and limits.INT32[0] <= euid <= limits.INT32[1] else None
    columns["vfio_noiommu"], columns["vfio_iommufd"] = bool(columns["vfio_noiommu"]), bool(columns["vfio_iommufd"])
    return columns


def host_columns(host) -> dict:
    """The host-level fact columns of a Host row, as `host_columns_from_document` gives them for a document."""
    return {fact.column: getattr(host, fact.column) for fact in HOST_FACTS}


def _place(state: dict, path: tuple[str, ...], value) -> None:
    for part in path[:-1]:
        state = state.setdefault(part, {})
    state[path[-1]] = value


def state_from_rows(host, rows: dict) -> dict:
    """The host's state as a snapshot-shaped dict (docs/snapshot.md): Host columns plus table rows, sorted by key."""
    state: dict = {"host": {"hostname": host.hostname, "machine_id": host.machine_id or None}}
    for fact in HOST_FACTS:
        _place(state, fact.path, fact.item(getattr(host, fact.column)))
    for table in DOCUMENT_TABLES:
        _place(state, table.path, [table.item(row) for _, row in sorted(rows[table.name].items())])
    _place(state, PASID_USERS.path, [PASID_USERS.item(row) for row in rows["pasid_users"]])
    return state


def iommu_mode(groups, iommu_enabled: bool | None) -> str:
    """off / translated / passthrough / mixed, from the default domain types of the real (non-VFIO-synthetic) groups."""
    kinds = set()
    real = [g for g in groups if g.get("name") != "vfio-noiommu"]
    for group in real:
        kind = group.get("type")
        if kind == "identity":
            kinds.add("passthrough")
        elif kind in ("DMA", "DMA-FQ"):
            kinds.add("translated")
    if len(kinds) > 1:
        return "mixed"
    if kinds:
        return kinds.pop()
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
