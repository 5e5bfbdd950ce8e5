"""Is an incoming document a snapshot we can store? Schema first, then what our columns hold.

The schema is the agent's own file (`agent/schema/snapshot-v<N>.schema.json`, each version the server reads), so the agent's
tests and this check cannot drift. jsonschema-rs validates a 480-device snapshot in 7 ms where
fastjsonschema's generated code took 1.5 s; a refused document goes through its `iter_errors`,
which lists every problem with its JSON path.

The schema's caps are the agent's (what it can produce); the columns' (`fleet.inventory.limits`)
are checked here, for every field the row mapping stores, from the model field it lands in.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache

import jsonschema_rs
from django.db import models

from agent.snapshot import SCHEMA_PATH
from agent.upgrade import SUPPORTED
from fleet.inventory import limits
from fleet.inventory.models import Host
from fleet.inventory.rows import HOST_FACTS, TABLES
from fleet.policy.limits import HOLDER_REFS

MAX_ERRORS = 50


@lru_cache(maxsize=len(SUPPORTED))
def _validator(version: int):
    path = SCHEMA_PATH.with_name(f"snapshot-v{version}.schema.json")
    return jsonschema_rs.validator_for(json.loads(path.read_text(encoding="utf-8")))


def _column_bound(field) -> int | tuple[int, int] | None:
    """A text column's length, an integer column's range, None for the rest."""
    if isinstance(field, models.CharField):
        return field.max_length
    if isinstance(field, models.BigIntegerField):
        return limits.INT64
    if isinstance(field, models.IntegerField):
        return limits.INT32
    return None


@lru_cache(maxsize=1)
def _bounds() -> tuple[list, list, list]:
    """(section path, key, bound) of every list item field, (key, bound) of the host's, and (section path, key)
    of each table's key: unique per host, since two items with one key cannot both be current."""
    items, host, keys = [], [], []
    for table in TABLES:
        for f in table.fields:
            bound = _column_bound(table.model._meta.get_field(f.name))
            if bound is not None:
                items.append((table.path, f.key, bound))
        if table.key is not None:
            keys.append((table.path, table.key))
    for fact in HOST_FACTS:
        bound = _column_bound(Host._meta.get_field(fact.column))
        if bound is not None and fact.path[0] == "host":
            host.append((fact.path[1], bound))
    host += [("hostname", limits.HOSTNAME), ("machine_id", limits.MACHINE_ID)]
    return items, host, keys


def json_path(parts) -> str:
    out = "$"
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out


def schema_problems(doc) -> list[dict]:
    """Every schema violation of `doc` as `{"path": "$.devices[3].bdf", "message": …}`; empty when valid."""
    version = doc.get("schema") if isinstance(doc, dict) else None
    if isinstance(version, bool) or version not in SUPPORTED:
        readable = " and ".join(str(v) for v in SUPPORTED)
        return [{"path": "$.schema", "message": f"unknown schema version {str(version)[:40]!r}; this server reads versions {readable}"}]
    validator = _validator(version)
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


def _bound_problem(value, bound) -> str | None:
    if isinstance(bound, int):
        return f"longer than {bound} characters" if isinstance(value, str) and len(value) > bound else None
    return "integer out of range" if _out_of_range(value, bound) else None


def seq_problem(seq) -> str | None:
    """Why `seq` is not one the agent can produce (a JSON integer from 0 to MAX_SEQ), else None.

    Floats are refused even when whole: JSON Schema calls 1e18 an integer, and the agent never writes one."""
    if type(seq) is not int or not 0 <= seq <= limits.MAX_SEQ:
        return f"seq is a whole number from 0 to {limits.MAX_SEQ} (fleet.inventory.limits.MAX_SEQ), written without a fraction or exponent"
    return None


def storage_problems(doc: dict) -> list[dict]:
    """Values the schema allows but our columns cannot hold (over-long strings, out-of-range ints, repeated keys)."""
    problems = []
    item_bounds, host_bounds, unique_keys = _bounds()
    host = doc.get("host") if isinstance(doc.get("host"), dict) else {}
    for key, bound in host_bounds:
        message = _bound_problem(host.get(key), bound)
        if message:
            problems.append({"path": f"$.host.{key}", "message": message})
    for section, key, bound in item_bounds:
        for index, item in _items(doc, section):
            message = _bound_problem(item.get(key), bound)
            if message:
                problems.append({"path": f"{json_path(section)}[{index}].{key}", "message": message})
    for section, key in unique_keys:
        seen: set = set()
        for index, item in _items(doc, section):
            value = item.get(key)
            if value in seen:
                problems.append({"path": f"{json_path(section)}[{index}].{key}", "message": f"duplicate {key} {str(value)[:40]!r}"})
            seen.add(value)
    if seq_problem(doc.get("seq")):
        problems.append({"path": "$.seq", "message": seq_problem(doc.get("seq"))})
    return problems[:MAX_ERRORS]


def depth_problems(doc) -> list[dict]:
    """The first container nested deeper than MAX_JSON_DEPTH, walked without recursion: every later step
    (the schema, the content hash, the apply) may then recurse safely."""
    stack = [(doc, 1, ())]
    while stack:
        node, depth, path = stack.pop()
        if depth > limits.MAX_JSON_DEPTH:
            return [{"path": json_path(path),
                     "message": f"nested deeper than {limits.MAX_JSON_DEPTH} levels (fleet.inventory.limits.MAX_JSON_DEPTH)"}]
        children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        stack.extend((value, depth + 1, (*path, key)) for key, value in children if isinstance(value, (dict, list)))
    return []


# (section, cap, its name in fleet.inventory.limits, what is counted)
_SECTION_CAPS = (
    (("devices",), limits.MAX_DEVICES, "MAX_DEVICES", "devices"),
    (("groups",), limits.MAX_GROUPS, "MAX_GROUPS", "groups"),
    (("iommu", "units"), limits.MAX_UNITS, "MAX_UNITS", "IOMMU units"),
    (("vfio", "nodes"), limits.MAX_NODES, "MAX_NODES", "VFIO nodes"),
    (("holders",), limits.MAX_HOLDERS, "MAX_HOLDERS", "holders"),
    (("mdevs",), limits.MAX_MDEVS, "MAX_MDEVS", "mediated devices"),
    (("pasid", "users"), limits.MAX_PASID_USERS, "MAX_PASID_USERS", "PASID users"),
)

def _section(doc: dict, section: tuple) -> list:
    node = doc
    for part in section:
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, list) else []


def _cap_problem(path: str, count: int, cap: int, name: str, what: str) -> dict:
    return {"path": path, "message": f"{count} {what}; a host may report at most {cap} (fleet.inventory.limits.{name})"}


def cardinality_problems(doc: dict) -> list[dict]:
    """Lists longer than one host can really have (fleet.inventory.limits), each named with its path and cap."""
    problems = []
    for section, cap, name, what in _SECTION_CAPS:
        count = len(_section(doc, section))
        if count > cap:
            problems.append(_cap_problem(json_path(section), count, cap, name, what))
    # Before the schema: a driver may be anything here (the schema refuses what is not a string afterwards).
    drivers = {d.get("driver") for d in _section(doc, ("devices",)) if isinstance(d, dict) and isinstance(d.get("driver"), str)}
    if len(drivers) > limits.MAX_DRIVERS:
        problems.append(_cap_problem("$.devices[*].driver", len(drivers), limits.MAX_DRIVERS, "MAX_DRIVERS", "distinct driver names"))
    refs = sum(len(h[k]) for h in _section(doc, ("holders",)) if isinstance(h, dict) for k in HOLDER_REFS
               if isinstance(h.get(k), list))
    if refs > limits.MAX_HOLDER_REFS:
        problems.append(_cap_problem("$.holders[*]", refs, limits.MAX_HOLDER_REFS, "MAX_HOLDER_REFS",
                                     "groups, devices and nodes named by holders"))
    return problems


def document_problems(doc) -> list[dict]:
    """Shape (depth, then how many of each thing), schema, then storage: empty means the document may be
    stored and applied."""
    if not isinstance(doc, dict):
        return [{"path": "$", "message": "a snapshot is a JSON object"}]
    return depth_problems(doc) or cardinality_problems(doc) or schema_problems(doc) or storage_problems(doc)


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
