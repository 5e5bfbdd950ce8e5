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
    if _out_of_range(doc.get("seq"), (0, limits.INT64[1])):
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
