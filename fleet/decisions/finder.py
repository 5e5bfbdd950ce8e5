"""The capacity finder: N devices matching a device query, each with its whole free IOMMU group.

SQL makes the first cut (the query's terms and `group_free_q`) and takes at most WINDOW matches,
unordered so the planner can use its most selective index and stop early (as the device search does);
`assess_group` then checks each one's group in Python with the same definitions, one pick per group,
ranked by fewest companions, then host and BDF. The per-host and per-label counts are over that window:
past it they are lower bounds (`exact` False), never a scan of the whole fleet.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from fleet.inventory.models import Device, Host
from fleet.web.device_query import DeviceQuery
from fleet.web.selectors.search import devices_matching

from .groups import assess_group, critical_violations, group_free_q

MAX_PICKS = 100
WINDOW = 1000  # matches judged per query: bounds the work whatever the fleet's size (2,000 took 280 ms on 10,000 hosts)
MAX_SUMMARY_ROWS = 200  # hosts / labels listed in the counts, most free groups first
_MEMBER_FIELDS = ("group_id", "bdf", "vendor_id", "device_id", "class_code", "driver", "is_bridge", "owner_pid", "owner_vm")
_CANDIDATE_FIELDS = ("host_id", "host__hostname", "host__role", "group_id", "group_number", "bdf", "vendor_id",
                     "device_id", "class_code", "driver", "numa_node")


@dataclass
class Capacity:
    picks: list = field(default_factory=list)
    free_groups: int = 0            # free groups with at least one matching device (in the window)
    exact: bool = True              # False: more matches than WINDOW, the counts are lower bounds
    per_host: list = field(default_factory=list)   # [{host, role, groups}]
    per_label: list = field(default_factory=list)  # [{label, hosts, groups}]


def _critical_subjects(host_ids) -> dict[int, set]:
    out: dict[int, set] = {}
    rows = critical_violations().filter(host_id__in=list(host_ids)).values_list("host_id", "subject_kind", "subject_id")
    for host_id, kind, subject in rows:
        out.setdefault(host_id, set()).add((kind, "" if kind == "host" else subject))
    return out


def _member(m: dict) -> dict:
    return {"bdf": m["bdf"], "vendor_device": f"{m['vendor_id'] or '????'}:{m['device_id'] or '????'}",
            "class": m["class_code"], "driver": m["driver"], "is_bridge": bool(m["is_bridge"])}


def _pick(c: dict, group: list, companions: list, bridges: list) -> dict:
    return {
        "host": c["host__hostname"], "role": c["host__role"], "device": c["bdf"],
        "vendor_device": f"{c['vendor_id'] or '????'}:{c['device_id'] or '????'}", "class": c["class_code"],
        "driver": c["driver"], "numa_node": c["numa_node"], "group": c["group_number"],
        "devices": [c["bdf"], *companions], "companions": companions, "bridges": bridges,
        "members": [_member(m) for m in group],
    }


def _labels(host_ids) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for host_id, name in Host.labels.through.objects.filter(host_id__in=list(host_ids)).values_list("host_id", "label__name"):
        out.setdefault(host_id, []).append(name)
    return out


def capacity_find(query: DeviceQuery, *, count: int, now: datetime | None = None) -> Capacity:
    """Up to `count` (≤ MAX_PICKS) picks, one per free group, fewest companions first; and the counts."""
    count = max(1, min(count, MAX_PICKS))
    window = list(devices_matching(query).filter(group_free_q(now=now)).order_by().values(*_CANDIDATE_FIELDS)[:WINDOW + 1])
    result = Capacity(exact=len(window) <= WINDOW)
    window = window[:WINDOW]
    members: dict[int, list] = {}
    for m in Device.objects.filter(group_id__in={c["group_id"] for c in window}).order_by("bdf").values(*_MEMBER_FIELDS):
        members.setdefault(m["group_id"], []).append(m)
    critical = _critical_subjects({c["host_id"] for c in window})
    free: dict[int, tuple] = {}  # group id -> (rank key, candidate, assessment): the group's best-placed matching device
    for c in window:
        group = members.get(c["group_id"], [])
        judged = assess_group(c["bdf"], group, critical_subjects=critical.get(c["host_id"], set()), group_number=c["group_number"])
        if not judged.free:
            continue
        key = (len(judged.companions), c["host__hostname"], c["bdf"])
        if c["group_id"] not in free or key < free[c["group_id"]][0]:
            free[c["group_id"]] = (key, c, judged)
    ranked = sorted(free.values(), key=lambda item: item[0])
    for rank, (_, c, judged) in enumerate(ranked[:count], 1):
        result.picks.append({"rank": rank, **_pick(c, members.get(c["group_id"], []), judged.companions, judged.bridges)})
    result.free_groups = len(free)
    hosts: dict[int, dict] = {}
    for _, c, _ in ranked:
        row = hosts.setdefault(c["host_id"], {"host": c["host__hostname"], "role": c["host__role"], "groups": 0})
        row["groups"] += 1
    result.per_host = sorted(hosts.values(), key=lambda r: (-r["groups"], r["host"]))[:MAX_SUMMARY_ROWS]
    labels: dict[str, dict] = {}
    for host_id, names in _labels(hosts).items():
        for name in names:
            row = labels.setdefault(name, {"label": name, "hosts": 0, "groups": 0})
            row["hosts"] += 1
            row["groups"] += hosts[host_id]["groups"]
    result.per_label = sorted(labels.values(), key=lambda r: (-r["groups"], r["label"]))[:MAX_SUMMARY_ROWS]
    return result
