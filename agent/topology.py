"""The PCI tree as a snapshot records it: each device's `parent` is the bridge above it."""
from __future__ import annotations

from collections.abc import Mapping


def upstream(bdf: str, by_bdf: Mapping[str, dict]) -> list[str]:
    """The bridges above `bdf`, nearest first, following `parent` fields; a loop (a hostile document)
    ends the walk instead of looping."""
    chain, seen = [], {bdf}
    parent = (by_bdf.get(bdf) or {}).get("parent")
    while parent and parent not in seen:
        seen.add(parent)
        chain.append(parent)
        parent = (by_bdf.get(parent) or {}).get("parent")
    return chain
