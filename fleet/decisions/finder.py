"""The capacity finder: N devices matching a device query, each with its whole free IOMMU group.

SQL makes the first cut (the query's terms and `group_free_q`) and ranks by how many endpoints the
group has (fewest companions first, then host and BDF); `assess_group` then checks each candidate's
group in Python with the same definitions, and one pick per group is kept. Work is bounded by the
count asked for (at most MAX_PICKS), never by the fleet's size, except for the per-host and per-label
counts, which the database aggregates.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from django.db.models import Count, IntegerField, OuterRef, Subquery
from django.db.models.functions import Coalesce

from fleet.inventory.models import Device
from fleet.web.device_query import DeviceQuery
from fleet.web.selectors.search import devices_matching

from .groups import assess_group, critical_violations, group_free_q

MAX_PICKS = 100
MAX_SUMMARY_ROWS = 200  # hosts / labels listed in the counts, most free groups first
_MEMBER_FIELDS = ("group_id", "bdf", "vendor_id", "device_id", "class_code", "driver", "is_bridge", "owner_pid", "owner_vm")
_CANDIDATE_FIELDS = ("id", "host_id", "host__hostname", "host__role", "group_id", "group_number", "bdf", "vendor_id",
                     "device_id", "class_code", "driver", "numa_node", "endpoints")


@dataclass
class Capacity:
    picks: list = field(default_factory=list)
    free_groups: int = 0            # free groups with at least one matching device, fleet-wide
    per_host: list = field(default_factory=list)   # [{host, role, groups}]
    per_label: list = field(default_factory=list)  # [{label, hosts, groups}]


def _endpoint_count():
    counted = (Device.objects.filter(group_id=OuterRef("group_id")).exclude(is_bridge=True)
               .order_by().values("group_id").annotate(n=Count("id")).values("n")[:1])
    return Coalesce(Subquery(counted, output_field=IntegerField()), 0)


def _critical_subjects(host_ids) -> dict[int, set]:
    out: dict[int, set] = {}
    rows = critical_violations().filter(host_id__in=list(host_ids)).values_list("host_id", "subject_kind", "subject_id")
    for host_id, kind, subject in rows:
        out.setdefault(host_id, set()).add((kind, "" if kind == "host" else subject))
    return out


def _member(m: dict) -> dict:
    return {"bdf": m["bdf"], "vendor_device": f"{m['vendor_id'] or '????'}:{m['device_id'] or '????'}",
            "class": m["class_code"], "driver": m["driver"], "is_bridge": bool(m["is_bridge"])}


def _picks(candidates: list[dict], seen_groups: set, want: int) -> list[dict]:
    members: dict[int, list] = {}
    for m in Device.objects.filter(group_id__in={c["group_id"] for c in candidates}).order_by("bdf").values(*_MEMBER_FIELDS):
        members.setdefault(m["group_id"], []).append(m)
    critical = _critical_subjects({c["host_id"] for c in candidates})
    out = []
    for c in candidates:
        if len(out) >= want:
            break
        if c["group_id"] in seen_groups:
            continue
        group = members.get(c["group_id"], [])
        judged = assess_group(c["bdf"], group, critical_subjects=critical.get(c["host_id"], set()), group_number=c["group_number"])
        if not judged.free:
            continue
        seen_groups.add(c["group_id"])
        out.append({
            "host": c["host__hostname"], "role": c["host__role"], "device": c["bdf"],
            "vendor_device": f"{c['vendor_id'] or '????'}:{c['device_id'] or '????'}", "class": c["class_code"],
            "driver": c["driver"], "numa_node": c["numa_node"], "group": c["group_number"],
            "devices": [c["bdf"], *judged.companions], "companions": judged.companions, "bridges": judged.bridges,
            "members": [_member(m) for m in group],
        })
    return out


def capacity_find(query: DeviceQuery, *, count: int, now: datetime | None = None) -> Capacity:
    """Up to `count` (≤ MAX_PICKS) picks, one per free group, fewest companions first; and the counts."""
    count = max(1, min(count, MAX_PICKS))
    base = devices_matching(query).filter(group_free_q(now=now))
    ranked = base.annotate(endpoints=_endpoint_count()).order_by("endpoints", "host__hostname", "bdf").values(*_CANDIDATE_FIELDS)
    result = Capacity()
    seen: set = set()
    offset, batch = 0, count * 2 + 16  # a batch's extra rows cover devices that share a group with an earlier pick
    while len(result.picks) < count:
        candidates = list(ranked[offset:offset + batch])
        if not candidates:
            break
        result.picks += _picks(candidates, seen, count - len(result.picks))
        offset += batch
    for rank, pick in enumerate(result.picks, 1):
        pick["rank"] = rank
    per_host = (base.order_by().values("host__hostname", "host__role").annotate(groups=Count("group_id", distinct=True))
                .order_by("-groups", "host__hostname"))
    result.per_host = [{"host": r["host__hostname"], "role": r["host__role"], "groups": r["groups"]} for r in per_host[:MAX_SUMMARY_ROWS]]
    result.free_groups = base.order_by().aggregate(n=Count("group_id", distinct=True))["n"]
    per_label = (base.order_by().filter(host__labels__isnull=False).values("host__labels__name")
                 .annotate(groups=Count("group_id", distinct=True), hosts=Count("host_id", distinct=True))
                 .order_by("-groups", "host__labels__name"))
    result.per_label = [{"label": r["host__labels__name"], "hosts": r["hosts"], "groups": r["groups"]}
                        for r in per_label[:MAX_SUMMARY_ROWS]]
    return result
