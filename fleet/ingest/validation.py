"""Is an incoming document a snapshot we can store? Schema first, then the limits of our columns.

The schema is the agent's own file (`agent/schema/snapshot-v1.schema.json`), so the agent's
tests and this check cannot drift. Validation uses jsonschema-rs: measured on this schema,
fastjsonschema's generated code took 33 ms for a 10-device snapshot and 1.5 s for a
480-device one (it calls `locals()` per item), jsonschema-rs 0.7 ms and 7 ms. A document
it refuses goes through its `iter_errors`, which lists every problem with its JSON path.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from pathlib import Path

import jsonschema_rs

from agent.snapshot import SCHEMA_PATH, SCHEMA_VERSION

log = logging.getLogger(__name__)

MAX_ERRORS = 50

# Used only while the agent's schema file does not exist yet: the shape the server itself relies on.
_MINIMAL_SCHEMA = {
    "type": "object",
    "required": ["schema", "seq", "host", "iommu", "groups", "devices", "vfio", "holders", "mdevs", "pasid"],
    "properties": {
        "schema": {"const": SCHEMA_VERSION},
        "seq": {"type": "integer", "minimum": 0},
        "collected_at": {"type": "string"},
        "host": {"type": "object", "required": ["hostname"], "properties": {"hostname": {"type": "string"}, "machine_id": {"type": ["string", "null"]}}},
        "iommu": {"type": "object", "properties": {"enabled": {"type": "boolean"}, "units": {"type": "array", "items": {"type": "object", "required": ["name"]}}}},
        "groups": {"type": "array", "items": {"type": "object", "required": ["id"], "properties": {"id": {"type": "integer"}, "devices": {"type": "array", "items": {"type": "string"}}}}},
        "devices": {"type": "array", "items": {"type": "object", "required": ["bdf"], "properties": {"bdf": {"type": "string"}, "driver": {"type": ["string", "null"]}, "iommu_group": {"type": ["integer", "null"]}}}},
        "vfio": {"type": "object"},
        "holders": {"type": "array", "items": {"type": "object", "required": ["pid"], "properties": {"pid": {"type": "integer"}}}},
        "mdevs": {"type": "array", "items": {"type": "object", "required": ["uuid"]}},
        "mdev_parents": {"type": "array"},
        "pasid": {"type": "object"},
        "warnings": {"type": "array", "items": {"type": "string"}},
    },
}

# (section, key, max length) for strings that land in bounded columns; the schema may not bound them.
_BOUNDED = [
    (("devices",), "bdf", 16), (("devices",), "vendor_id", 4), (("devices",), "device_id", 4),
    (("devices",), "subsystem_vendor_id", 4), (("devices",), "subsystem_device_id", 4),
    (("devices",), "class", 6), (("devices",), "revision", 2), (("devices",), "driver", 100),
    (("devices",), "driver_override", 100), (("devices",), "iommu_unit", 100), (("devices",), "parent", 16),
    (("devices",), "path", 512), (("devices",), "header_type", 16),
    (("groups",), "type", 32), (("groups",), "name", 100), (("groups",), "unit", 100),
    (("iommu", "units"), "name", 100), (("iommu", "units"), "vendor", 16),
    (("vfio", "nodes"), "path", 256), (("vfio", "nodes"), "kind", 16), (("vfio", "nodes"), "mode", 6),
    (("vfio", "nodes"), "rdev", 20), (("vfio", "nodes"), "device", 16),
    (("holders",), "name", 200), (("holders",), "user", 100), (("holders",), "kind", 16), (("holders",), "vm", 200),
    (("holders",), "workload", 200), (("holders",), "cgroup", 512), (("holders",), "start_time", 40),
    (("mdevs",), "uuid", 36), (("mdevs",), "parent", 100), (("mdevs",), "type", 200), (("mdevs",), "type_name", 200),
    (("pasid", "users"), "device", 100), (("pasid", "users"), "source", 32),
]
_BOUNDED_HOST = [("hostname", 253), ("machine_id", 64), ("kernel", 200), ("boot_time", 40)]
_INT_BOUNDS = (-(2**31), 2**31 - 1)
_BOUNDED_INTS = [(("devices",), "iommu_group"), (("devices",), "numa_node"), (("groups",), "id"), (("holders",), "pid"),
                 (("holders",), "uid"), (("holders",), "device_fds"), (("vfio", "nodes"), "uid"), (("vfio", "nodes"), "gid"),
                 (("vfio", "nodes"), "group"), (("mdevs",), "iommu_group"), (("pasid", "users"), "pid")]
_BIGINT_BOUNDS = (-(2**63), 2**63 - 1)
# Each is the key of a current-state table: two items with one key cannot both be current.
_UNIQUE_KEYS = [(("devices",), "bdf"), (("groups",), "id"), (("iommu", "units"), "name"), (("vfio", "nodes"), "path"),
                (("holders",), "pid"), (("mdevs",), "uuid")]


class _Validators:
    """The compiled schema, reloaded when the file changes (the agent's schema may land while the server runs)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._mtime: float | None = -1.0
        self._validator = None

    def get(self):
        try:
            mtime = SCHEMA_PATH.stat().st_mtime
        except OSError:
            mtime = None
        if mtime != self._mtime:
            with self._lock:
                if mtime != self._mtime:
                    schema = _load_schema(SCHEMA_PATH) if mtime is not None else None
                    if schema is None:
                        log.warning("snapshot schema %s not found: validating against the server's minimal schema", SCHEMA_PATH)
                        schema = _MINIMAL_SCHEMA
                    self._validator = jsonschema_rs.validator_for(schema)
                    self._mtime = mtime
        return self._validator


def _load_schema(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        log.exception("cannot read snapshot schema %s", path)
        return None


_validators = _Validators()


def json_path(parts) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(doc) -> list[dict]:
    """Every schema violation of `doc` as `{"path": "$.devices[3].bdf", "message": …}`; empty when valid."""
    if isinstance(doc, dict) and doc.get("schema") != SCHEMA_VERSION:
        found = doc.get("schema")
        return [{"path": "$.schema", "message": f"unknown schema version {str(found)[:40]!r}; this server reads version {SCHEMA_VERSION}"}]
    validator = _validators.get()
    if validator.is_valid(doc):
        return []
    problems = []
    for error in validator.iter_errors(doc):
        problems.append({"path": json_path(error.instance_path), "message": error.message[:300]})
        if len(problems) >= MAX_ERRORS:
            break
    problems.sort(key=lambda p: p["path"])
    return problems


def _items(doc: dict, section: tuple):
    node = doc
    for part in section:
        node = node.get(part) if isinstance(node, dict) else None
    if not isinstance(node, list):
        return
    for index, item in enumerate(node):
        if isinstance(item, dict):
            yield index, item


def _out_of_range(value, bounds) -> bool:
    """A number our integer column cannot hold. Floats count: JSON Schema calls 1e21 an integer, and the
    parser reads integers past 64 bits as floats."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return not bounds[0] <= value <= bounds[1] or (isinstance(value, float) and not value.is_integer())


def storage_problems(doc: dict) -> list[dict]:
    """Values the schema allows but our columns cannot hold (over-long strings, out-of-range ints)."""
    problems = []
    host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
    for key, limit in _BOUNDED_HOST:
        value = host.get(key)
        if isinstance(value, str) and len(value) > limit:
            problems.append({"path": f"$.host.{key}", "message": f"longer than {limit} characters"})
    for section, key, limit in _BOUNDED:
        for index, item in _items(doc, section):
            value = item.get(key)
            if isinstance(value, str) and len(value) > limit:
                problems.append({"path": f"{json_path(section)}[{index}].{key}", "message": f"longer than {limit} characters"})
    for section, key in _BOUNDED_INTS:
        for index, item in _items(doc, section):
            if _out_of_range(item.get(key), _INT_BOUNDS):
                problems.append({"path": f"{json_path(section)}[{index}].{key}", "message": "integer out of range"})
    for key, (low, high) in (("tainted", _BIGINT_BOUNDS), ("memory_bytes", _BIGINT_BOUNDS), ("cpu_count", _INT_BOUNDS)):
        if _out_of_range(host.get(key), (low, high)):
            problems.append({"path": f"$.host.{key}", "message": "integer out of range"})
    for index, item in _items(doc, ("holders",)):
        if _out_of_range(item.get("vm_pinned_kb"), _BIGINT_BOUNDS):
            problems.append({"path": f"$.holders[{index}].vm_pinned_kb", "message": "integer out of range"})
    for section, key in _UNIQUE_KEYS:
        seen: set = set()
        for index, item in _items(doc, section):
            value = item.get(key)
            if value in seen:
                problems.append({"path": f"{json_path(section)}[{index}].{key}", "message": f"duplicate {key} {str(value)[:40]!r}"})
            seen.add(value)
    if _out_of_range(doc.get("seq"), (0, _BIGINT_BOUNDS[1])):
        problems.append({"path": "$.seq", "message": "integer out of range"})
    return problems[:MAX_ERRORS]


def document_problems(doc) -> list[dict]:
    """Schema problems, then storage problems: empty means the document may be stored and applied."""
    if not isinstance(doc, dict):
        return [{"path": "$", "message": "a snapshot is a JSON object"}]
    return schema_problems(doc) or storage_problems(doc)


_SUSPECT_ESCAPE = re.compile(rb"\\u(?:0000|[dD][89abcdefABCDEF])")


def _bad_text(value: str) -> bool:
    return "\x00" in value or any("\ud800" <= ch <= "\udfff" for ch in value)


def text_problems(doc, raw: bytes) -> list[dict]:
    """NUL characters and lone surrogates: valid JSON, but PostgreSQL text and jsonb cannot store them.

    Raw JSON cannot hold these characters unescaped, so only a body with such an escape is walked.
    """
    if not _SUSPECT_ESCAPE.search(raw):
        return []
    problems: list[dict] = []
    stack = [((), doc)]
    while stack and len(problems) < MAX_ERRORS:
        path, node = stack.pop()
        if isinstance(node, dict):
            for key, value in node.items():
                if _bad_text(key):
                    problems.append({"path": json_path(path), "message": "a key holds a NUL character or a lone surrogate"})
                stack.append(((*path, key), value))
        elif isinstance(node, list):
            stack.extend(((*path, i), v) for i, v in enumerate(node))
        elif isinstance(node, str) and _bad_text(node):
            problems.append({"path": json_path(path), "message": "string holds a NUL character or a lone surrogate"})
    return problems
