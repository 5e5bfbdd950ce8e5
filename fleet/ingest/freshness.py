"""Is what the server shows of a host its latest report? One definition for the host page, the fleet's table
and tiles, the read API and /metrics (issue 10 item 2).

A host that heartbeats is not stale, yet its shown state can still be old: its latest snapshot failed to
apply, or has waited longer than the sweeper's re-queue delay. Its state says so instead of `fresh`:
`apply-failed`, `apply-pending`, then `stale` (silent), else `fresh`.
"""
from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db.models import Case, CharField, OuterRef, Q, QuerySet, Subquery, Value, When
from django.utils import timezone

from fleet.inventory.models import Host

from .models import Snapshot

FRESH, STALE, APPLY_FAILED, APPLY_PENDING = "fresh", "stale", "apply-failed", "apply-pending"
STATES = (FRESH, STALE, APPLY_FAILED, APPLY_PENDING)


def _latest(field: str) -> Subquery:
    # Through the (host, -id) index: one row per host, however long its history.
    return Subquery(Snapshot.objects.filter(host=OuterRef("pk")).order_by("-id").values(field)[:1])


def _pending_cutoff():
    return timezone.now() - timedelta(seconds=getattr(settings, "FLEET_REQUEUE_AFTER", 120))


def with_report_state(hosts: QuerySet[Host]) -> QuerySet[Host]:
    """`hosts` annotated with `report_state` (one of STATES)."""
    return hosts.annotate(latest_report_status=_latest("status"), latest_report_received_at=_latest("received_at")).annotate(
        report_state=Case(
            When(latest_report_status=Snapshot.Status.FAILED, then=Value(APPLY_FAILED)),
            When(Q(latest_report_status=Snapshot.Status.RECEIVED, latest_report_received_at__lt=_pending_cutoff()),
                 then=Value(APPLY_PENDING)),
            When(stale=True, then=Value(STALE)),
            default=Value(FRESH), output_field=CharField()))


def host_report(host: Host) -> dict:
    """The host's state, and its latest report (id, seq, status, received_at, error) when that is not what is shown."""
    state = with_report_state(Host.objects.filter(pk=host.pk)).values_list("report_state", flat=True).get()
    latest = None
    if state in (APPLY_FAILED, APPLY_PENDING):
        latest = Snapshot.objects.filter(host=host).only("id", "seq", "status", "received_at", "error").order_by("-id").first()
    return {"state": state, "latest": latest}


def hosts_behind_count() -> int:
    """Hosts whose shown state is not their latest report (for /metrics)."""
    return with_report_state(Host.objects.all()).filter(report_state__in=(APPLY_FAILED, APPLY_PENDING)).count()
