"""Which part of a host `fleet-agent show --group N --bdf B` is asked about."""
from __future__ import annotations

from dataclasses import dataclass

from .bdf import parse_bdf


@dataclass(frozen=True)
class Selection:
    groups: frozenset = frozenset()  # group numbers
    bdfs: frozenset = frozenset()    # full BDFs

    @classmethod
    def of(cls, groups: list[int] | None, bdfs: list[str] | None) -> Selection | None:
        """None when nothing is asked for (show everything); ValueError naming a BDF that is not one."""
        if not groups and not bdfs:
            return None
        full = []
        for text in bdfs or []:
            bdf = parse_bdf(text)
            if bdf is None:
                raise ValueError(f"--bdf {text!r} is not a PCI address (dddd:bb:dd.f or bb:dd.f)")
            full.append(bdf)
        return cls(frozenset(groups or ()), frozenset(full))

    def keeps_group(self, group: dict, members: list[str]) -> bool:
        return group.get("id") in self.groups or bool(self.bdfs & set(members))

    def keeps_device(self, bdf) -> bool:
        return bdf in self.bdfs

    def describe(self) -> str:
        parts = [f"group {g}" for g in sorted(self.groups)] + sorted(self.bdfs)
        return ", ".join(parts)
