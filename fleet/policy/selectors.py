"""Reads: the declared intent as a value, open violations, a violation's history, tenants' PASIDs against quota."""
from __future__ import annotations

from datetime import datetime

from django.db import connection
from django.db.models import Count, Q, QuerySet, Sum
from django.utils import timezone

from fleet.inventory.selectors import host_states as inventory_host_states

from .intent import Baseline, DeviceExpectation, Intent, Role, Tenant
from .models import DeviceExpectation as DeviceExpectationRow
from .models import GroupBaseline, HostRole, IntentSettings, IntentVersion, TenantPasidUsage, Violation
from .models import Tenant as TenantRow


# (database name, version token, intent): this process's last read of the intent tables.
_intent_cache: tuple[str, str, Intent] | None = None


def intent_current() -> Intent:
    """The intent stored in the database (what `policy export` writes).

    Re-read from the five intent tables only when the intent version token moved since this process
    last read them (one primary-key query otherwise). The intent services bump it in the transaction
    that writes the tables, so every task sees a change, one made earlier in its own transaction included.
    """
    global _intent_cache
    token = IntentVersion.objects.filter(pk=1).values_list("token", flat=True).first()
    database = connection.settings_dict["NAME"]
    cached = _intent_cache
    if token is not None and cached is not None and cached[:2] == (database, token):
        return cached[2]
    intent = _intent_read()
    # No row yet (nothing written through the services since the tables were emptied): nothing to key a cache on.
    _intent_cache = (database, token, intent) if token is not None else None
    return intent


def _intent_read() -> Intent:
    settings_row = IntentSettings.objects.order_by("id").first()
    return Intent(
        tenants=tuple(
            Tenant(name=t.name, vm_patterns=tuple(t.vm_patterns), cgroup_patterns=tuple(t.cgroup_patterns),
                   workload_patterns=tuple(t.workload_patterns), labels=tuple(t.labels), pasid_quota=t.pasid_quota)
            for t in TenantRow.objects.all()
        ),
        roles=tuple(
            Role(name=r.name, host_patterns=tuple(r.host_patterns), host_labels=tuple(r.host_labels),
                 expects_assignment=r.expects_assignment, expected_drivers=tuple(r.expected_drivers))
            for r in HostRole.objects.all()
        ),
        devices=tuple(
            DeviceExpectation(name=d.name, role=d.role, host_pattern=d.host_pattern, bdf=d.bdf, vendor_device=d.vendor_device,
                              class_prefix=d.class_prefix, driver=d.driver, owner=d.owner)
            for d in DeviceExpectationRow.objects.all()
        ),
        baselines=tuple(
            Baseline(hostname=b.hostname, groups=tuple(sorted(tuple(sorted(g)) for g in b.groups)),
                     identities=tuple(sorted((b.identities or {}).items())),
                     accepted_at=b.accepted_at.isoformat() if b.accepted_at else "", accepted_by=b.accepted_by)
            for b in GroupBaseline.objects.all()
        ),
        allowed_userspace_drivers=tuple(settings_row.allowed_userspace_drivers) if settings_row else (),
        host_pasid_quota=settings_row.host_pasid_quota if settings_row else None,
        stale_after_seconds=settings_row.stale_after_seconds if settings_row else None,
    )


def violations_open_unwaived(*, now: datetime | None = None) -> QuerySet[Violation]:
    """Open violations that no active waiver hides: what the open list, the fleet tiles and /metrics count.

    Unordered and without joins, so callers can aggregate it (`.values(...).annotate(...)`).
    """
    now = now or timezone.now()
    return Violation.objects.filter(status=Violation.Status.OPEN).filter(Q(waived_until__isnull=True) | Q(waived_until__lte=now))


def violations_open_waived(*, now: datetime | None = None) -> QuerySet[Violation]:
    """Open violations an active waiver hides: the complement of `violations_open_unwaived` among the open."""
    return Violation.objects.filter(status=Violation.Status.OPEN, waived_until__gt=now or timezone.now())


def violations_open(*, host=None, rule: str | None = None, severity: str | None = None,
                    now: datetime | None = None, include_waived: bool = False) -> QuerySet[Violation]:
    """Open violations, without those hidden by an active waiver unless `include_waived`, in listing order."""
    if include_waived:
        qs = Violation.objects.filter(status=Violation.Status.OPEN)
    else:
        qs = violations_open_unwaived(now=now)
    qs = qs.select_related("host")
    if host is not None:
        qs = qs.filter(host__hostname=host) if isinstance(host, str) else qs.filter(host=host)
    if rule:
        qs = qs.filter(rule=rule)
    if severity:
        qs = qs.filter(severity=severity)
    return qs.order_by("host__hostname", "rule", "subject_kind", "subject_id")


def violation_as_dict(v: Violation) -> dict:
    """The JSON shape of `manage.py violations --json` (and usable by API views)."""
    return {
        "id": v.id,
        "rule": v.rule,
        "severity": v.severity,
        "host": v.host.hostname,
        "subject": v.subject,
        "subject_kind": v.subject_kind,
        "subject_id": v.subject_id,
        "message": v.message,
        "evidence": v.evidence,
        "remediation": v.remediation,
        "status": v.status,
        "opened_at": v.opened_at.isoformat(),
        "last_seen_at": v.last_seen_at.isoformat(),
        "waived_until": v.waived_until.isoformat() if v.waived_until else None,
        "acknowledged_at": v.acknowledged_at.isoformat() if v.acknowledged_at else None,
        "acknowledged_by": v.acknowledged_by or None,
    }


def violation_history(violation: Violation) -> QuerySet:
    return violation.events.order_by("at", "id")


def host_states(hosts) -> dict[int, dict]:
    """host pk -> the same dict as `inventory.selectors.host_state(host)`, for many hosts at once.

    One query per inventory table for the whole batch instead of one per table per host:
    a fleet-wide re-evaluation after an intent change rebuilds 1,000 states this way.
    """
    return inventory_host_states(hosts)


def tenant_pasids(intent: Intent | None = None) -> list[dict]:
    """Per declared tenant: PASID users across the fleet (each host's count at its last evaluation), on how many
    hosts, and its fleet-wide quota (None: no quota); `over` when the quota is exceeded (what `pasid-quota` reports)."""
    intent = intent or intent_current()
    used = {t: (n, hosts) for t, n, hosts in TenantPasidUsage.objects.order_by().values("tenant")
            .annotate(n=Sum("count"), hosts=Count("host", distinct=True)).values_list("tenant", "n", "hosts")}
    out = []
    for tenant in sorted(intent.tenants, key=lambda t: t.name):
        n, hosts = used.get(tenant.name, (0, 0))
        out.append({"tenant": tenant.name, "used": n, "hosts": hosts, "quota": tenant.pasid_quota,
                    "over": tenant.pasid_quota is not None and n > tenant.pasid_quota})
    return out
