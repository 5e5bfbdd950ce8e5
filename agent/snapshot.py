"""The wire format: one JSON value per collection (see docs/snapshot.md).

`build()` runs every collector under one Root. A collector that raises yields an
empty section and a warning; the rest of the snapshot still goes out.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

try:  # a server dependency; the agent installs without it and hashes with json alone
    import orjson
except ImportError:  # pragma: no cover - depends on the install
    orjson = None

from . import __version__
from .collectors import config_space, groups, holders, host, iommu_units, libvirt, mdev, pasid, pci, vfio
from .paths import Root
from .sysfs import Reader, Warnings

SCHEMA_VERSION = 2
SCHEMA_PATH = Path(__file__).parent / "schema" / f"snapshot-v{SCHEMA_VERSION}.schema.json"

# Fields that change without the topology changing; left out of the content hash.
VOLATILE = {
    (): ("collected_at", "seq"),
    ("agent",): ("euid",),
    ("host",): ("boot_time", "memory_bytes"),
}
VOLATILE_HOLDER_FIELDS = ("start_time", "vm_pinned_kb", "vm_locked_kb")


def build(root: Root, *, seq: int = 0, now: datetime | None = None) -> dict:
    """Collect every subsystem under `root` into one snapshot document."""
    warnings = Warnings()
    rd = Reader(root, warnings)

    def _guard(name: str, fallback: Any, fn: Callable[[], Any]) -> Any:
        # The last resort: collectors isolate their items, so this only catches what nobody foresaw.
        return rd.isolated(f"collector {name}", "section left empty", fallback, fn)

    host_facts = _guard("host", host.empty(), lambda: host.collect(rd))
    units = _guard("iommu_units", [], lambda: iommu_units.collect(rd, host_facts.get("kernel")))
    devices = _guard("pci", [], lambda: pci.collect(rd))
    _guard("config_space", None, lambda: config_space.decorate(rd, devices))
    group_list = _guard("groups", [], lambda: groups.collect(rd, devices, units, host_facts.get("kernel")))
    vfio_facts = _guard("vfio", vfio.empty(), lambda: vfio.collect(rd, devices, group_list))
    libvirt_facts = _guard("libvirt", libvirt.empty(), lambda: libvirt.collect(rd))
    holder_list = _guard("holders", [],
                         lambda: holders.collect(rd, vfio_facts, libvirt_facts))
    mdevs, mdev_parents = _guard("mdev", ([], []), lambda: mdev.collect(rd))
    pasid_facts = _guard("pasid", {"idxd": [], "users": []}, lambda: pasid.collect(rd, devices))

    real_groups = [g for g in group_list if g.get("name") != "vfio-noiommu"]
    doc = {
        "schema": SCHEMA_VERSION,
        "collected_at": (now or datetime.now(timezone.utc)).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seq": seq,
        "agent": {"version": __version__, "euid": os.geteuid() if hasattr(os, "geteuid") else None, "root": str(root.base)},
        "host": host_facts,
        "iommu": {"enabled": bool(units or real_groups), "units": units},
        "groups": group_list,
        "devices": devices,
        "vfio": vfio_facts,
        "holders": holder_list,
        "mdevs": mdevs,
        "mdev_parents": mdev_parents,
        "pasid": pasid_facts,
        "libvirt": libvirt_facts,
        "warnings": warnings.as_list(),
    }
    return doc


def stable_view(doc: dict) -> dict:
    """The document without its volatile fields (what the content hash covers).

    Copies only the containers it drops keys from (the top level, `agent`, `host`, each holder);
    everything else is shared with `doc`, so treat the result as read-only. A deep copy of a
    480-device document took 40-200 ms, most of a large push's receive time.
    """
    out = dict(doc)
    for path, keys in VOLATILE.items():
        container = out
        for part in path:  # copy each dict on the way down before popping from it
            node = container.get(part)
            if not isinstance(node, dict):
                break
            container[part] = node = dict(node)
            container = node
        else:
            for key in keys:
                container.pop(key, None)
    holders = out.get("holders")
    if isinstance(holders, list):
        out["holders"] = [
            {k: v for k, v in holder.items() if k not in VOLATILE_HOLDER_FIELDS} if isinstance(holder, dict) else holder
            for holder in holders
        ]
    return out


# A float value (`"k":1.5`, `,1e-05`) in orjson's output: its spelling may differ from json's, so such a
# document takes the json path. The agent writes no floats; a rare false hit inside a string
# (`"a,1.5"`) only costs time. (`:` alone would hit every BDF: "0000:2b:00.0".)
_FLOAT_TOKEN = re.compile(rb'(?:":|[,\[])-?[0-9]+[.eE]')


def canonical_json(doc: dict) -> bytes:
    """Sorted keys, no spaces, UTF-8: byte for byte `json.dumps(doc, sort_keys=True, separators=(",", ":"),
    ensure_ascii=False).encode()`, which defines the content hash.

    orjson writes the same bytes ~10x faster for what documents hold (str keys, ints, strings, lists);
    anything it spells differently or refuses (floats, ints past 64 bits, non-str keys, lone surrogates)
    goes through json. NaN/Infinity are not JSON and never reach the server; orjson writes them as null.
    """
    try:
        out = orjson.dumps(doc, option=orjson.OPT_SORT_KEYS) if orjson is not None else None
    except TypeError:  # orjson.JSONEncodeError is a TypeError
        out = None
    if out is None or _FLOAT_TOKEN.search(out):
        return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return out


def content_hash(doc: dict) -> str:
    """sha256 of the canonical JSON of the stable view: equal for two collections of one state."""
    return hashlib.sha256(canonical_json(stable_view(doc))).hexdigest()


def to_json(doc: dict, *, pretty: bool = False) -> str:
    if pretty:
        return json.dumps(doc, indent=2, sort_keys=False, ensure_ascii=False)
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
