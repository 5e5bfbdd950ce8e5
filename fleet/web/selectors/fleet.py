"""The fleet overview: hosts with their counts, filtered and sorted in the database, one page at a time."""
from __future__ import annotations

from dataclasses import dataclass

from django.core.exceptions import BadRequest
from django.core.paginator import Paginator
from django.db.models import Exists, IntegerField, OuterRef, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce

from fleet.ingest.freshness import FRESH, with_report_state
from fleet.inventory.models import Device, Host, Label
from fleet.policy.selectors import violations_open_unwaived
from fleet.web import params
from fleet.web.selectors.filters import QueryFilters
from fleet.web.selectors.tenants import tenant_vm_q
from fleet.web.selectors.violations import (
    SEVERITIES, open_summary_by_host, severity_rank, violation_counts_by_host)

PAGE_SIZE = 50
SORTS = {
    "hostname": "hostname", "-hostname": "-hostname",
    "last_seen": "last_seen", "-last_seen": "-last_seen",
    "kernel": "kernel", "-kernel": "-kernel",
    "devices": "device_count", "-devices": "-device_count",
    "groups": "group_count", "-groups": "-group_count",
    "assigned": "assigned_count", "-assigned": "-assigned_count",
    # Worst open severity first (critical, high, …, none), or the reverse; hostname breaks ties.
    "worst": "worst_rank", "-worst": "-worst_rank",
}
# Short names people type into the address bar; the column header is the canonical spelling.
SORT_ALIASES = {"host": "hostname", "-host": "-hostname"}


def worst_rank():
    """Rank of a host's worst open violation (0 = critical, len(SEVERITIES) = none), one indexed subquery per host."""
    worst = violations_open_unwaived().filter(host_id=OuterRef("pk")).annotate(rank=severity_rank()).order_by("rank").values("rank")[:1]
    return Coalesce(Subquery(worst, output_field=IntegerField()), Value(len(SEVERITIES)))


# The host table's header: (label, sort key or None, sort of the first click, numeric column).
COLUMNS = [
    ("Host", "hostname", "hostname", False), ("Status", None, None, False), ("Kernel", "kernel", "kernel", False),
    ("IOMMU", None, None, False), ("Groups", "groups", "-groups", True), ("Devices", "devices", "-devices", True),
    ("Assigned", "assigned", "-assigned", True), ("Open violations", "worst", "worst", False),
    ("Last report", "last_seen", "-last_seen", False),
]


def fleet_columns(sort: str) -> list[dict]:
    """Header cells: where each link sorts next (a second click reverses), and which one is sorted, which way."""
    out = []
    for label, key, first, numeric in COLUMNS:
        cell = {"label": label, "numeric": numeric, "sort": None, "arrow": "", "aria_sort": None}
        if key:
            reverse = first[1:] if first.startswith("-") else f"-{first}"
            cell["sort"] = reverse if sort == first else first
            if sort.lstrip("-") == key:
                descending = sort.startswith("-") != (key == "worst")  # worst = most severe first
                cell["aria_sort"] = "descending" if descending else "ascending"
                cell["arrow"] = "▼ worst first" if sort == "worst" else ("▼" if descending else "▲")
        out.append(cell)
    return out


@dataclass
class FleetFilters(QueryFilters):
    q: str = ""
    label: str = ""
    role: str = ""
    tenant: str = ""
    severity: str = ""
    rule: str = ""
    stale: str = ""  # "", "yes", "no"
    # Worst-first by default: whoever opens the overview at 3 a.m. wants the hosts in trouble on top.
    sort: str = "worst"

    def clean(self) -> None:
        self.sort = SORT_ALIASES.get(self.sort, self.sort) or "worst"
        if self.sort not in SORTS:
            names = ", ".join(sorted({k.lstrip("-") for k in SORTS} | set(SORT_ALIASES)))
            raise BadRequest(f"sort: {self.sort[:40]!r} is not a column; sort by one of {names} (a leading - reverses)")
        self.severity = params.choice(self.severity, name="severity", choices=SEVERITIES)
        self.stale = params.choice(self.stale, name="stale", choices=("yes", "no"))


def hosts_filtered(filters: FleetFilters) -> QuerySet:
    qs = Host.objects.all()
    if filters.q:
        qs = qs.filter(hostname__icontains=filters.q) if "*" not in filters.q else \
            qs.filter(hostname__startswith=filters.q.rstrip("*"))
    if filters.label:
        qs = qs.filter(Exists(Host.labels.through.objects.filter(host_id=OuterRef("pk"), label__name=filters.label)))
    if filters.role:
        qs = qs.filter(role=filters.role)
    # Fresh means its latest report is what is shown (fleet.ingest.freshness): a host whose latest report
    # failed or still waits is not fresh, however recent its heartbeat.
    if filters.stale == "yes":
        qs = with_report_state(qs).exclude(report_state=FRESH)
    elif filters.stale == "no":
        qs = with_report_state(qs).filter(report_state=FRESH)
    if filters.tenant:
        owned = Device.objects.filter(host_id=OuterRef("pk")).filter(tenant_vm_q(filters.tenant))
        qs = qs.filter(Exists(owned))
    if filters.severity or filters.rule:
        v = violations_open_unwaived().filter(host_id=OuterRef("pk"))
        if filters.severity:
            v = v.filter(severity=filters.severity)
        if filters.rule:
            v = v.filter(rule=filters.rule)
        qs = qs.filter(Exists(v))
    if filters.sort.lstrip("-") == "worst":
        return qs.annotate(worst_rank=worst_rank()).order_by(SORTS[filters.sort], "hostname", "pk")
    return qs.order_by(SORTS[filters.sort], "pk")


def fleet_page(filters: FleetFilters, page_number) -> dict:
    """One page of hosts with per-severity open-violation counts; 2-3 queries whatever the fleet size."""
    paginator = Paginator(
        with_report_state(hosts_filtered(filters)).only(
            "hostname", "role", "kernel", "iommu_mode", "iommu_enabled", "stale", "last_seen",
            "device_count", "group_count", "assigned_count"),
        PAGE_SIZE)
    page = paginator.get_page(params.page_number(page_number))
    hosts = list(page.object_list)
    counts = violation_counts_by_host([h.pk for h in hosts])
    rows = []
    for h in hosts:
        c = counts.get(h.pk, {})
        rows.append({"host": h, "counts": [(s, c.get(s, 0)) for s in SEVERITIES],
                     "worst": next((s for s in SEVERITIES if c.get(s)), "")})
    return {"page": page, "rows": rows, "total": paginator.count}


def fleet_facets() -> dict:
    """Values offered in the filter drop-downs."""
    return {
        "roles": list(Host.objects.exclude(role="").order_by("role").values_list("role", flat=True).distinct()[:200]),
        "labels": list(Label.objects.order_by("name").values_list("name", flat=True)[:500]),
        "severities": SEVERITIES,
    }


def fleet_tiles(filters: FleetFilters | None = None) -> dict:
    """Compact per-host worst open severity (and open count) for the tile grid, for the hosts the page's filters
    select; worst first, then by hostname, so the tiles come grouped by severity. Parallel arrays to stay small
    at 10,000 hosts."""
    summary = open_summary_by_host()
    none = (len(SEVERITIES), 0)
    hosts = with_report_state(hosts_filtered(filters or FleetFilters()).order_by()).values_list("pk", "hostname", "report_state")
    ordered = sorted(hosts, key=lambda h: (summary.get(h[0], none)[0], h[1]))
    names, codes, opened, stale = [], [], [], []
    # A host whose shown state is not its latest report is drawn as stale: not fresh.
    for pk, hostname, state in ordered:
        worst, count = summary.get(pk, none)
        names.append(hostname)
        codes.append(worst)
        opened.append(count)
        stale.append(0 if state == FRESH else 1)
    return {"severities": [*SEVERITIES, "none"], "hostnames": names, "worst": codes, "open": opened, "stale": stale}
