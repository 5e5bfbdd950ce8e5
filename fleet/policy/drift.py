"""How a host's IOMMU groups differ from its accepted baseline, compared on stable identity.

A group is the multiset of its members' identities (`agent.identity`), so a group whose devices only
got new bus numbers is the same group. What is left after pairing equal groups is cut into changes:
the baseline and current groups that share a member identity belong to one change (a split, a merge,
a replaced member…), each reported once. A baseline recorded before identities existed (no
`identities`) is compared on BDFs, as it was accepted, until it is accepted again; one whose identities carry
no serial number (an older agent) is compared without the current serial numbers.
"""
from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from agent.identity import SERIAL_MARK, device_identities, device_identity, without_serial

from .intent import Baseline


@dataclass(frozen=True)
class GroupChange:
    kind: str  # split, merged, replaced, gained, lost, regrouped, appeared, gone
    before: tuple[tuple[tuple[str, str], ...], ...]  # baseline groups, each sorted (identity, bdf) pairs
    after: tuple[tuple[object, tuple[tuple[str, str], ...]], ...]  # (current group id, members) pairs

    @property
    def bdfs(self) -> set[str]:
        return {b for g in self.before for _, b in g} | {b for _, g in self.after for _, b in g}


def _kind(before, after) -> str:
    if not after:
        return "gone"
    if not before:
        return "appeared"
    if len(before) == 1 and len(after) > 1:
        return "split"
    if len(before) > 1 and len(after) == 1:
        return "merged"
    if len(before) == 1:
        old, new = {i for i, _ in before[0]}, {i for i, _ in after[0][1]}
        if old < new:
            return "gained"
        if new < old:
            return "lost"
        return "replaced"
    return "regrouped"


def current_groups(devices: dict, groups: dict, *, by_identity: bool = True,
                   serials: bool = True) -> list[tuple[object, tuple[tuple[str, str], ...]]]:
    """(group id, sorted (identity, bdf) pairs) of every current group; the identity is the BDF when not `by_identity`,
    without serial numbers when not `serials`."""
    identities = device_identities(devices) if by_identity else {}

    def key(b: str) -> str:
        if not by_identity:
            return b
        identity = identities.get(b) or device_identity(b, devices)
        return identity if serials else without_serial(identity)

    out = []
    for gid in sorted(groups, key=str):
        members = [b for b in (groups[gid].get("devices") or []) if isinstance(b, str)]
        out.append((gid, tuple(sorted((key(b), b) for b in members))))
    return out


def group_drift(baseline: Baseline, devices: dict, groups: dict) -> list[GroupChange]:
    """The changes from `baseline` to the current `groups` (id -> group) of `devices` (bdf -> device), in a stable order."""
    known = dict(baseline.identities)
    by_identity = bool(known)
    before = [tuple(sorted((known.get(b, b) if by_identity else b, b) for b in g)) for g in baseline.groups]
    # A baseline from an agent that did not read serial numbers is compared without them (an agent upgrade is no change).
    serials = any(SERIAL_MARK in i for i in known.values())
    after = current_groups(devices, groups, by_identity=by_identity, serials=serials)
    key = lambda members: tuple(i for i, _ in members)  # noqa: E731
    unmatched_before: dict[tuple, list] = defaultdict(list)
    for g in before:
        unmatched_before[key(g)].append(g)
    left_after = []
    for gid, members in after:
        if unmatched_before.get(key(members)):
            unmatched_before[key(members)].pop()
        else:
            left_after.append((gid, members))
    left_before = [g for gs in unmatched_before.values() for g in gs]
    # Union-find over the identities: baseline and current groups sharing one are one change.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for members in [*left_before, *(m for _, m in left_after)]:
        ids = [i for i, _ in members]
        for i in ids[1:]:
            parent[find(i)] = find(ids[0])
    components: dict[str, tuple[list, list]] = {}
    for g in left_before:  # a group without PCI functions (platform devices only) has nothing to compare
        if g:
            components.setdefault(find(g[0][0]), ([], []))[0].append(g)
    for gid, members in left_after:
        if members:
            components.setdefault(find(members[0][0]), ([], []))[1].append((gid, members))
    changes = [GroupChange(_kind(b, a), tuple(sorted(b)), tuple(sorted(a, key=lambda x: (x[1], str(x[0])))))
               for b, a in components.values()]
    return sorted(changes, key=lambda c: sorted(c.bdfs))
