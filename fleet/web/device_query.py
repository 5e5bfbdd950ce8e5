"""The fleet device search language, parsed into plain terms (no Django, reusable by the API).

A query is whitespace-separated terms, all of which must hold:
    10de:*            vendor:device (either side may be *)
    vendor:15b3       device:101e     class:0302 | class:gpu
    driver:vfio-pci   driver:!vfio-pci   driver:none
    bdf:0000:02:00.0  (or a bare BDF, full or bus:dev.fn)
    group:12   vm:tenant-a-vm1   vm:*   vm:none   owner:userspace
    vf:yes  pf:yes   host:web-01   label:rack-12   role:gpu-passthrough   tenant:acme
    backend:iommufd | backend:legacy   as:shared | as:* | as:none   (the address spaces a device is attached to)
A bare word is a class name (gpu, nic, nvme…) when it is one, else a host-name fragment.
`key:!value` negates a term. Repeating a key ORs its values (`driver:vfio-pci driver:uio_pci_generic`);
repeating a negation excludes every value (`driver:!vfio-pci driver:!nvidia`: neither).

A query is bounded whatever it says: at most MAX_QUERY_LENGTH characters and MAX_TERMS terms, each
value at most MAX_VALUE_LENGTH, and at most MAX_VALUES values once class names are expanded. A
query past a bound is refused whole (QueryTooLarge, with the bound in its message), never cut.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from agent.bdf import parse_bdf

MAX_QUERY_LENGTH = 500
MAX_TERMS = 32
MAX_VALUES = 32
MAX_VALUE_LENGTH = 253  # the longest column a value is compared with (a hostname)

# Class names people type, mapped to class-code prefixes (base class + subclass, 2 or 4 hex digits).
CLASS_ALIASES: dict[str, tuple[str, ...]] = {
    "gpu": ("0300", "0302", "0380"),
    "display": ("03",),
    "nic": ("0200", "0207", "0280"),
    "network": ("02",),
    "ethernet": ("0200",),
    "infiniband": ("0207",),
    "nvme": ("010802",),
    "storage": ("01",),
    "bridge": ("0604", "0609"),
    "usb": ("0c03",),
    "accelerator": ("12",),
    "accel": ("12",),
    "audio": ("0403",),
}

FIELDS = {
    "vendor", "device", "id", "class", "driver", "bdf", "group", "vm", "owner",
    "vf", "pf", "host", "label", "role", "tenant", "backend", "as",
}
_ALIASES = {"vd": "id", "hostname": "host", "iommu_group": "group", "holder": "vm"}
_HEX4 = re.compile(r"^[0-9a-f]{4}$")
_ID = re.compile(r"^([0-9a-f]{4}|\*):([0-9a-f]{4}|\*)$")
_CLASS_HEX = re.compile(r"^[0-9a-f]{2}([0-9a-f]{2}([0-9a-f]{2})?)?$")
_OWNER_KINDS = {"host", "userspace", "unbound"}
BACKENDS = ("iommufd", "legacy")
SPACE_SHARING = ("shared", "*", "none")
_YES = {"yes", "y", "true", "1"}
_NO = {"no", "n", "false", "0"}


class QueryTooLarge(ValueError):
    """The query is past one of the bounds above; the message names it."""


@dataclass(frozen=True)
class Term:
    """One condition: `field` matches any of `values` (or none of them when `negate`)."""

    field: str
    values: tuple[str, ...]
    negate: bool = False


@dataclass
class DeviceQuery:
    terms: list[Term] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.terms


def _normalise(key: str, value: str) -> tuple[str, tuple[str, ...]] | str:
    """(field, values) for a valid term, or an error message."""
    v = value.strip().lower() if key not in {"host", "vm", "label", "role", "tenant"} else value.strip()
    if not v:
        return f"{key}: needs a value"
    if key == "id":
        m = _ID.match(v)
        if not m:
            return f"{value!r} is not vendor:device (4 hex digits or * each side)"
        return "id", (f"{m.group(1)}:{m.group(2)}",)
    if key in {"vendor", "device"}:
        if not _HEX4.match(v):
            return f"{key}:{value} needs 4 hex digits"
        return key, (v,)
    if key == "class":
        if v in CLASS_ALIASES:
            return "class", CLASS_ALIASES[v]
        if v.startswith("0x"):
            v = v[2:]
        if not _CLASS_HEX.match(v):
            names = ", ".join(sorted(CLASS_ALIASES))
            return f"class:{value} is neither 2/4/6 hex digits nor one of {names}"
        return "class", (v,)
    if key == "bdf":
        full = parse_bdf(v)
        if full is not None:
            return "bdf", (full,)
        return f"bdf:{value} is not dddd:bb:dd.f or bb:dd.f"
    if key == "group":
        if not (v.isascii() and v.isdigit()) or len(v) > 9:
            return f"group:{value} needs a group number"
        return "group", (str(int(v)),)
    if key == "owner":
        if v not in _OWNER_KINDS:
            return f"owner:{value} is one of host, userspace, unbound"
        return "owner", (v,)
    if key == "backend":
        if v not in BACKENDS:
            return f"backend:{value} is iommufd or legacy"
        return "backend", (v,)
    if key == "as":
        if v not in SPACE_SHARING:
            return f"as:{value} is shared, * (in any address space) or none"
        return "as", (v,)
    if key in {"vf", "pf"}:
        if v in _YES:
            return key, ("yes",)
        if v in _NO:
            return key, ("no",)
        return f"{key}:{value} is yes or no"
    return key, (v,)


def _bare(token: str) -> tuple[str, str]:
    low = token.lower()
    if parse_bdf(low) is not None:
        return "bdf", token
    if _ID.match(low):
        return "id", token
    if low in CLASS_ALIASES:
        return "class", token
    return "host", token


def parse_device_query(text: str) -> DeviceQuery:
    """Parse a search string. Invalid terms become `errors` (the rest still applies); past a bound, QueryTooLarge."""
    text = text or ""
    if len(text) > MAX_QUERY_LENGTH:
        raise QueryTooLarge(f"a query has at most {MAX_QUERY_LENGTH} characters (this one has {len(text)})")
    tokens = text.split()
    if len(tokens) > MAX_TERMS:
        raise QueryTooLarge(f"a query has at most {MAX_TERMS} terms (this one has {len(tokens)})")
    query = DeviceQuery()
    # Terms of one field merge: values OR together, negated values are all excluded (driver:!a driver:!b = neither).
    merged: dict[tuple[str, bool], list[str]] = {}
    for token in tokens:
        key, sep, value = token.partition(":")
        key_l = _ALIASES.get(key.lower(), key.lower())
        # No field name is spelt in hex digits, so a BDF or vendor:device never reads as a field term.
        if sep and key_l in FIELDS:
            field_name, raw = key_l, value
        else:
            field_name, raw = _bare(token)
        negate = raw.startswith("!")
        if negate:
            raw = raw[1:]
        if len(raw) > MAX_VALUE_LENGTH:
            raise QueryTooLarge(f"a value has at most {MAX_VALUE_LENGTH} characters ({field_name}: has {len(raw)})")
        result = _normalise(field_name, raw)
        if isinstance(result, str):
            query.errors.append(result)
            continue
        name, values = result
        merged.setdefault((name, negate), []).extend(values)
    for (name, negate), values in merged.items():
        query.terms.append(Term(name, tuple(dict.fromkeys(values)), negate))
    count = sum(len(t.values) for t in query.terms)
    if count > MAX_VALUES:
        raise QueryTooLarge(f"a query matches at most {MAX_VALUES} values once class names are expanded (this one {count})")
    return query
