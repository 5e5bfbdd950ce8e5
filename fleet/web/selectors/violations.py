"""Violations (owned by fleet.policy), read and shaped for the pages and the drawing."""
from __future__ import annotations

from dataclasses import dataclass

from django.db.models import Case, Count, F, IntegerField, Q, QuerySet, Value, When, Window
from django.db.models.functions import RowNumber
from django.utils import timezone

from fleet.inventory.models import Device
from fleet.policy.models import Violation, ViolationEvent, Waiver
from fleet.policy.selectors import violations_open_unwaived, violations_open_waived
from fleet.policy.severity import SEVERITIES, SEVERITY_RANK
from fleet.web import params
from fleet.web.selectors.filters import QueryFilters
from fleet.web.selectors.history import event_note
from fleet.web.selectors.tenants import tenant_vm_q


def severity_rank():
    """SQL for SEVERITY_RANK: sorts violations by severity in the database (0 = critical)."""
    return Case(*[When(severity=s, then=Value(i)) for i, s in enumerate(SEVERITIES)],
                default=Value(len(SEVERITIES) - 1), output_field=IntegerField())


def violation_counts_by_host(host_ids: list[int]) -> dict[int, dict[str, int]]:
    out: dict[int, dict[str, int]] = {}
    rows = violations_open_unwaived().filter(host_id__in=host_ids).values("host_id", "severity").annotate(n=Count("id"))
    for r in rows:
        out.setdefault(r["host_id"], {})[r["severity"]] = r["n"]
    return out


def open_summary_by_host() -> dict[int, tuple[int, int]]:
    """host id -> (rank of its worst open severity (0 = critical), number of its open violations), in one grouped
    query; hosts without any are absent."""
    summary: dict[int, tuple[int, int]] = {}
    rows = violations_open_unwaived().order_by().values("host_id", "severity").annotate(n=Count("id")).values_list("host_id", "severity", "n")
    for host_id, severity, n in rows:
        worst, count = summary.get(host_id, (len(SEVERITIES), 0))
        summary[host_id] = (min(worst, SEVERITY_RANK.get(severity, len(SEVERITIES) - 1)), count + n)
    return summary


def _subject(v: Violation) -> tuple[str | None, int | None]:
    """(device BDF, group number) the violation points at on the drawing."""
    if v.subject_kind == "device":
        return v.subject_id, None
    if v.subject_kind == "group":
        try:
            return None, int(v.subject_id)
        except ValueError:
            return None, None
    return None, None


def violation_row(v: Violation) -> dict:
    device, group = _subject(v)
    return {
        "id": v.pk, "rule": v.rule, "severity": v.severity,
        "subject_kind": v.subject_kind, "subject_id": v.subject_id,
        "device": device, "group": group,
        "message": v.message, "remediation": v.remediation, "evidence": v.evidence,
        "opened_at": v.opened_at.isoformat() if v.opened_at else None,
        "acknowledged": bool(v.acknowledged_at),
    }


def host_open_violations(host) -> list[dict]:
    rows = [violation_row(v) for v in violations_open_unwaived().filter(host=host)]
    return sorted(rows, key=lambda r: (SEVERITY_RANK.get(r["severity"], 9), r["rule"], r["subject_id"]))


@dataclass
class ViolationFilters(QueryFilters):
    severity: str = ""
    rule: str = ""
    host: str = ""
    tenant: str = ""
    status: str = "open"  # open, waived, resolved, all

    def clean(self) -> None:
        self.status = params.choice(self.status, name="status", choices=("open", "waived", "resolved", "all"), default="open")
        self.severity = params.choice(self.severity, name="severity", choices=SEVERITIES)


def violations_filtered(filters: ViolationFilters) -> QuerySet:
    now = timezone.now()
    if filters.status == "open":
        qs = violations_open_unwaived()
    elif filters.status == "waived":
        qs = violations_open_waived(now=now)
    elif filters.status == "resolved":
        qs = Violation.objects.filter(status=Violation.Status.RESOLVED)
    else:
        qs = Violation.objects.all()
    if filters.severity:
        qs = qs.filter(severity=filters.severity)
    if filters.rule:
        qs = qs.filter(rule=filters.rule)
    if filters.host:
        qs = qs.filter(host__hostname=filters.host)
    if filters.tenant:
        owned = Device.objects.filter(tenant_vm_q(filters.tenant, field="owner_vm")).values("host_id")
        qs = qs.filter(Q(subject_kind="tenant", subject_id=filters.tenant) | Q(host_id__in=owned))
    # Worst first: the operator paged at 3 a.m. reads the critical ones before the rest.
    return qs.select_related("host").annotate(severity_rank=severity_rank()).order_by(
        "severity_rank", "host__hostname", "rule", "subject_id")


def violation_rules() -> list[str]:
    return list(Violation.objects.order_by("rule").values_list("rule", flat=True).distinct())


EVENTS_SHOWN = 20  # per violation on the list page; the host's history page has them all


def violation_events_for(violation_ids: list[int]) -> dict[int, list[ViolationEvent]]:
    """violation id -> its latest EVENTS_SHOWN events, oldest first, each with `note`: its detail in words
    (a waiver's reason, an ack's note). A violation that flapped for months has thousands: the page reads 20."""
    newest_first = Window(RowNumber(), partition_by=[F("violation_id")], order_by=[F("at").desc(), F("id").desc()])
    rows = ViolationEvent.objects.filter(violation_id__in=violation_ids).annotate(n=newest_first).filter(n__lte=EVENTS_SHOWN)
    out: dict[int, list] = {}
    for e in sorted(rows, key=lambda e: (e.at, e.id)):
        e.note = event_note(e.detail)
        out.setdefault(e.violation_id, []).append(e)
    return out


def active_waivers_for(violation_ids: list[int], *, now=None) -> dict[int, list[Waiver]]:
    """violation id -> its waivers in force (not revoked, not expired, not past their expiry), latest expiry first."""
    now = now or timezone.now()
    out: dict[int, list[Waiver]] = {}
    active = Waiver.objects.filter(violation_id__in=violation_ids, revoked_at__isnull=True, expired_at__isnull=True,
                                   expires_at__gt=now).order_by("-expires_at", "-id")
    for waiver in active:
        out.setdefault(waiver.violation_id, []).append(waiver)
    return out


EXPORT_FIELDS = ["id", "hostname", "rule", "severity", "subject_kind", "subject_id", "status", "opened_at",
                 "resolved_at", "waived_until", "acknowledged_by", "message", "remediation", "link"]


def _iso(value) -> str | None:
    return value.isoformat() if value else None


def violation_export_row(v: Violation, link: str) -> dict:
    """One violation for the CSV/JSON download; `link` is its card's absolute address."""
    return {"id": v.pk, "hostname": v.host.hostname, "rule": v.rule, "severity": v.severity,
            "subject_kind": v.subject_kind, "subject_id": v.subject_id, "status": v.status,
            "opened_at": _iso(v.opened_at), "resolved_at": _iso(v.resolved_at), "waived_until": _iso(v.waived_until),
            "acknowledged_by": v.acknowledged_by or None, "message": v.message, "remediation": v.remediation,
            "link": link}
