"""What the fleet page says before anything else: how many open violations of each severity, which rules
they come from, and the few to fix first — over the hosts the page's filters select."""
from __future__ import annotations

from django.db.models import Count, Min, QuerySet

from fleet.policy.selectors import violations_open_unwaived
from fleet.policy.severity import SEVERITIES
from fleet.web.selectors.violations import severity_rank

TOP_RULES = 8
FIX_FIRST = 5
URGENT = ("critical", "high")  # what "fix these first" lists; the rest waits for the violations page


def fleet_summary(hosts: QuerySet) -> dict:
    """Counts by severity (every severity, zeros too), the rules with the most open violations (worst
    severity first), and the oldest open critical/high violations: a fixed handful of grouped queries."""
    open_here = violations_open_unwaived().filter(host_id__in=hosts.order_by().values("pk"))
    by_severity = dict(open_here.order_by().values_list("severity").annotate(n=Count("id")))
    rules = (open_here.order_by().values("rule").annotate(n=Count("id"), worst=Min(severity_rank()))
             .order_by("worst", "-n", "rule")[:TOP_RULES])
    first = (open_here.filter(severity__in=URGENT).select_related("host")
             .annotate(rank=severity_rank()).order_by("rank", "opened_at", "id")[:FIX_FIRST])
    return {
        "total": sum(by_severity.values()),
        "severities": [(s, by_severity.get(s, 0)) for s in SEVERITIES],
        "rules": [{"rule": r["rule"], "count": r["n"], "worst": SEVERITIES[min(r["worst"], len(SEVERITIES) - 1)]}
                  for r in rules],
        "fix_first": list(first),
    }

