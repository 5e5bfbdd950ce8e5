"""Writes: the violation lifecycle, waivers, acknowledgements, intent changes with their audit rows.

Rules are pure (`engine.evaluate`); this module turns their findings into rows:
open new ones, update those that keep firing, resolve those that stopped — per host, in
one transaction, so a reader never sees half a sync.
"""
from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta
from functools import lru_cache

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Sum
from django.utils import timezone

from fleet.inventory.models import Host
from fleet.sqlrows import fetch_models, model_columns

from . import selectors
from .engine import evaluate
from .facts import HostContext
from .intent import Intent, to_toml
from .models import (
    DeviceExpectation, GroupBaseline, HostRole, IntentChange, IntentSettings, Tenant, TenantPasidUsage, Violation,
    ViolationEvent, Waiver,
)
from .rules.pasid import tenant_pasid_usage

ENGINE = "policy"


class PolicyError(ValueError):
    """A request the policy services refuse (bad waiver, unknown host…); the message says why."""


def _who(user) -> str:
    if user is None:
        return "cli"
    if isinstance(user, str):
        return user or "cli"
    return user.get_username()


def fingerprint(host: Host, rule: str, subject_kind: str, subject_id: str) -> str:
    return hashlib.sha256(f"{host.pk}\x00{rule}\x00{subject_kind}\x00{subject_id}".encode()).hexdigest()


def host_context(host: Host, now: datetime, *, tenant_pasids_elsewhere: dict | None = None, intent: Intent | None = None) -> HostContext:
    """The host facts rules need besides its state; given `intent`, the labels (a query) only when a role matches on them."""
    labels_needed = intent is None or any(role.host_labels for role in intent.roles)
    return HostContext(
        hostname=host.hostname,
        role=host.role,
        labels=tuple(label.name for label in host.labels.all()) if labels_needed else (),
        now=now,
        last_seen=host.last_seen,
        default_stale_after_seconds=settings.FLEET_REPORT_INTERVAL * settings.FLEET_STALE_AFTER_INTERVALS,
        tenant_pasids_elsewhere=tenant_pasids_elsewhere or {},
    )


# --- Fleet-wide tenant PASID quotas -------------------------------------------------------


def _quotas(intent: Intent) -> dict[str, int]:
    return {t.name: t.pasid_quota for t in intent.tenants if t.pasid_quota is not None}


def tenant_pasids_elsewhere(*, host: Host, intent: Intent) -> dict[str, int]:
    """PASIDs each quota-bound tenant uses on the other hosts, as of their last evaluation."""
    quotas = _quotas(intent)
    if not quotas:
        return {}
    rows = (TenantPasidUsage.objects.filter(tenant__in=quotas).exclude(host=host)
            .values("tenant").annotate(n=Sum("count")).values_list("tenant", "n"))
    return {tenant: n for tenant, n in rows if n}


def _pasid_usage_store(*, host: Host, usage: dict[str, int], now: datetime) -> dict[str, int]:
    """Replace `host`'s per-tenant PASID counts; returns the previous ones."""
    previous = dict(TenantPasidUsage.objects.filter(host=host).values_list("tenant", "count"))
    if previous != usage:
        TenantPasidUsage.objects.filter(host=host).delete()
        TenantPasidUsage.objects.bulk_create(TenantPasidUsage(host=host, tenant=t, count=n, updated_at=now) for t, n in usage.items())
    return previous


def _hosts_to_recheck(*, host: Host, intent: Intent, before: dict, after: dict, elsewhere: dict) -> list[int]:
    """Other hosts whose tenant quota finding this host's change affects (crossed, or an over-quota total moved)."""
    tenants = []
    for tenant, quota in _quotas(intent).items():
        old, new = before.get(tenant, 0) + elsewhere.get(tenant, 0), after.get(tenant, 0) + elsewhere.get(tenant, 0)
        if old != new and (old > quota or new > quota):
            tenants.append(tenant)
    if not tenants:
        return []
    return sorted(set(TenantPasidUsage.objects.filter(tenant__in=tenants).exclude(host=host).values_list("host_id", flat=True)))


def _queue_host_resyncs(host_ids: list[int]) -> None:
    from .tasks import violations_sync_for_host_task

    for host_id in host_ids:
        violations_sync_for_host_task.delay(host_id)


def _normalised(evidence: dict) -> dict:
    # What the JSON column will give back (tuples become lists…), so unchanged evidence compares equal.
    return json.loads(json.dumps(evidence, default=str))


@transaction.atomic
def violations_sync_for_host(*, host: Host, now: datetime | None = None, state: dict | None = None,
                             intent: Intent | None = None) -> dict:
    """Evaluate every rule for `host`'s current state and open/update/resolve its violations.

    `state` lets the apply service pass the snapshot it just applied (saves rebuilding it
    from the tables). Returns counts: {"opened", "reopened", "updated", "resolved", "open"}.
    """
    now = now or timezone.now()
    if state is None:
        from fleet.inventory.selectors import host_state

        state = host_state(host)
    intent = intent if intent is not None else selectors.intent_current()
    if not _quotas(intent):  # no tenant quota: nothing fleet-wide to count (a fleet sync recounts when one is added)
        return _sync_hosts([host], states={host.pk: state}, intent=intent, now=now, expire_waivers=True)
    usage = tenant_pasid_usage(state, intent)
    elsewhere = tenant_pasids_elsewhere(host=host, intent=intent)
    counts = _sync_hosts([host], states={host.pk: state}, intent=intent, now=now, pasid_elsewhere={host.pk: elsewhere},
                         expire_waivers=True)
    previous = _pasid_usage_store(host=host, usage=usage, now=now)
    recheck = _hosts_to_recheck(host=host, intent=intent, before=previous, after=usage, elsewhere=elsewhere)
    if recheck:
        # Their findings quote the tenant's fleet total; they are re-evaluated once this commit is visible.
        transaction.on_commit(lambda: _queue_host_resyncs(recheck))
    return counts


FLEET_CHUNK = 200


def violations_sync_fleet(*, now: datetime | None = None, intent: Intent | None = None) -> dict:
    """Re-evaluate every reporting host (after an intent change), in batches of hosts, one transaction each."""
    now = now or timezone.now()
    intent = intent if intent is not None else selectors.intent_current()
    waivers_expire(now=now)
    totals = {"hosts": 0, "opened": 0, "reopened": 0, "updated": 0, "resolved": 0, "open": 0}
    hosts = (Host.objects.exclude(enrollment=Host.Enrollment.RETIRED).filter(last_seen__isnull=False)
             .prefetch_related("labels").order_by("pk"))
    ids = list(hosts.values_list("pk", flat=True))
    elsewhere = _fleet_pasid_usage_refresh(hosts=hosts, intent=intent, now=now)
    for i in range(0, len(ids), FLEET_CHUNK):
        chunk = list(hosts.filter(pk__in=ids[i:i + FLEET_CHUNK]))
        with transaction.atomic():
            counts = _sync_hosts(chunk, states=selectors.host_states(chunk), intent=intent, now=now, pasid_elsewhere=elsewhere)
        totals["hosts"] += len(chunk)
        for key, value in counts.items():
            totals[key] += value
    return totals


@transaction.atomic
def _fleet_pasid_usage_refresh(*, hosts, intent: Intent, now: datetime) -> dict[int, dict[str, int]]:
    """Recount every host's tenant PASIDs under `intent` (its patterns may have changed) before any host is
    evaluated, so each sees the exact fleet totals; returns host pk -> the other hosts' counts per tenant."""
    from fleet.inventory.models import PasidUser

    usage: dict[int, dict[str, int]] = {}
    if _quotas(intent):
        with_users = sorted(set(PasidUser.objects.filter(host__in=hosts).values_list("host_id", flat=True)))
        for i in range(0, len(with_users), FLEET_CHUNK):
            chunk = list(hosts.filter(pk__in=with_users[i:i + FLEET_CHUNK]))
            for pk, state in selectors.host_states(chunk).items():
                if counted := tenant_pasid_usage(state, intent):
                    usage[pk] = counted
    TenantPasidUsage.objects.all().delete()
    TenantPasidUsage.objects.bulk_create(TenantPasidUsage(host_id=pk, tenant=t, count=n, updated_at=now)
                                         for pk, counted in usage.items() for t, n in counted.items())
    quotas = _quotas(intent)
    totals = {t: sum(c.get(t, 0) for c in usage.values()) for t in quotas}
    # Only hosts where a tenant has PASIDs can report its quota, so only they need the others' counts.
    return {pk: {t: totals[t] - c.get(t, 0) for t in quotas if totals[t] - c.get(t, 0)} for pk, c in usage.items()}


@lru_cache(maxsize=64)
def _violations_locked_sql(vendor: str, host_count: int) -> str:
    """The hosts' violations, locked, in Meta ordering: the statement the ORM's
    `select_for_update().filter(host__in=...)` produces (joined hosts locked too), built once per
    host count instead of on every sync (~0.4 ms of a changed 480-device apply); its rows become instances
    through `fleet.sqlrows` (RawQuerySet resolved columns and converters on every query)."""
    q = connection.ops.quote_name
    v, h = q(Violation._meta.db_table), q(Host._meta.db_table)
    columns = model_columns(Violation, alias=v)
    order = ", ".join([f"{h}.{q('hostname')} ASC"] + [f"{v}.{q(c)} ASC" for c in ("rule", "subject_kind", "subject_id")])
    lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
    return (f"SELECT {columns} FROM {v} INNER JOIN {h} ON ({v}.{q('host_id')} = {h}.{q('id')}) "
            f"WHERE {v}.{q('host_id')} IN ({', '.join(['%s'] * host_count)}) ORDER BY {order}{lock}")


def _sync_hosts(hosts: list[Host], *, states: dict[int, dict], intent: Intent, now: datetime,
                pasid_elsewhere: dict | None = None, expire_waivers: bool = False) -> dict:
    """Diff the engine's findings for `hosts` against their stored violations and write the difference.

    Call inside a transaction: the hosts' violation rows are locked while the diff is written.
    `expire_waivers`: first expire the hosts' due waivers (`waivers_expire`) when a loaded violation's
    `waived_until` has passed — found in the rows this loads anyway, so a sync with nothing due (almost
    all of them) spends no query on waivers; the beat tick expires the rest fleet-wide.
    """
    existing: dict[str, Violation] = {
        v.fingerprint: v for v in fetch_models(Violation, _violations_locked_sql(connection.vendor, len(hosts)), [h.pk for h in hosts])
    } if hosts else {}
    if expire_waivers and any(v.waived_until is not None and v.waived_until <= now for v in existing.values()):
        for host in hosts:
            waivers_expire(now=now, host=host)
    counts = {"opened": 0, "reopened": 0, "updated": 0, "resolved": 0, "open": 0}
    create, rewrite, still, reopen_same, events = [], [], [], [], []
    seen: set[str] = set()
    for host in hosts:
        elsewhere = (pasid_elsewhere or {}).get(host.pk, {})
        findings = evaluate(states[host.pk], intent, context=host_context(host, now, tenant_pasids_elsewhere=elsewhere, intent=intent))
        for f in findings:
            fp = fingerprint(host, f.rule, f.subject_kind, f.subject_id)
            if fp in seen:
                continue
            seen.add(fp)
            evidence = _normalised(f.evidence)
            v = existing.get(fp)
            if v is None:
                create.append(Violation(
                    host=host, rule=f.rule, severity=f.severity, subject_kind=f.subject_kind, subject_id=f.subject_id[:512],
                    message=f.message, evidence=evidence, remediation=f.remediation, status=Violation.Status.OPEN,
                    opened_at=now, updated_at=now, last_seen_at=now, fingerprint=fp,
                ))
                counts["opened"] += 1
                continue
            changed = (v.message, v.evidence, v.remediation, v.severity) != (f.message, evidence, f.remediation, f.severity)
            if v.status == Violation.Status.RESOLVED:
                v.status, v.opened_at, v.resolved_at = Violation.Status.OPEN, now, None
                events.append(ViolationEvent(violation=v, kind=ViolationEvent.Kind.REOPENED, at=now, by=ENGINE))
                counts["reopened"] += 1
                if not changed:
                    # The same finding coming back (e.g. an intent change undone): one UPDATE for all of them, below.
                    reopen_same.append(v.pk)
                    continue
            elif changed:
                events.append(ViolationEvent(violation=v, kind=ViolationEvent.Kind.UPDATED, at=now, by=ENGINE,
                                             detail={"before": {"message": v.message, "evidence": v.evidence}}))
                counts["updated"] += 1
            else:
                still.append(v.pk)
                continue
            v.message, v.evidence, v.remediation, v.severity = f.message, evidence, f.remediation, f.severity
            v.updated_at = v.last_seen_at = now
            rewrite.append(v)
    resolved = [v for fp, v in existing.items() if fp not in seen and v.status == Violation.Status.OPEN]
    events.extend(ViolationEvent(violation=v, kind=ViolationEvent.Kind.RESOLVED, at=now, by=ENGINE,
                                 detail={"last_message": v.message}) for v in resolved)
    counts["resolved"] = len(resolved)
    counts["open"] = len(seen)

    # Most syncs change nothing: one UPDATE for those rows, full writes only for the few that changed.
    if still:
        Violation.objects.filter(pk__in=still).update(last_seen_at=now)
    if resolved:
        Violation.objects.filter(pk__in=[v.pk for v in resolved]).update(
            status=Violation.Status.RESOLVED, resolved_at=now, updated_at=now)
    if reopen_same:
        Violation.objects.filter(pk__in=reopen_same).update(status=Violation.Status.OPEN, opened_at=now, resolved_at=None,
                                                             updated_at=now, last_seen_at=now)
    for v in rewrite:
        v.save(update_fields=["status", "opened_at", "updated_at", "last_seen_at", "resolved_at",
                              "message", "evidence", "remediation", "severity"])
    created = Violation.objects.bulk_create(create, batch_size=500)
    if created and created[0].pk is None:  # backends without RETURNING
        by_fp = dict(Violation.objects.filter(fingerprint__in=[c.fingerprint for c in created]).values_list("fingerprint", "pk"))
        for c in created:
            c.pk = by_fp[c.fingerprint]
    events.extend(ViolationEvent(violation=v, kind=ViolationEvent.Kind.OPENED, at=now, by=ENGINE) for v in created)
    if events:
        ViolationEvent.objects.bulk_create(events, batch_size=1000)
    return counts


def stale_hosts_sync(*, now: datetime | None = None) -> int:
    """Evaluate hosts that went quiet and have no open stale-host violation yet (beat task)."""
    now = now or timezone.now()
    intent = selectors.intent_current()
    threshold = intent.stale_after_seconds or settings.FLEET_REPORT_INTERVAL * settings.FLEET_STALE_AFTER_INTERVALS
    cutoff = now - timedelta(seconds=threshold)
    flagged = Violation.objects.filter(rule="stale-host", status=Violation.Status.OPEN).values("host_id")
    hosts = Host.objects.filter(last_seen__lt=cutoff).exclude(enrollment=Host.Enrollment.RETIRED).exclude(pk__in=flagged)
    count = 0
    for host in hosts:
        violations_sync_for_host(host=host, now=now, intent=intent)
        count += 1
    return count


# --- Waivers and acknowledgements --------------------------------------------------------


@transaction.atomic
def violation_waive(*, violation: Violation, justification: str, expires_at: datetime, user=None, by: str | None = None,
                    now: datetime | None = None) -> Waiver:
    """Hide `violation` from the open list until `expires_at`, recording who (`user` or `by`) and why."""
    now = now or timezone.now()
    user = by or user
    justification = (justification or "").strip()
    if not justification:
        raise PolicyError("a waiver needs a justification")
    if expires_at <= now:
        raise PolicyError("a waiver must expire in the future")
    violation = Violation.objects.select_for_update().get(pk=violation.pk)
    waiver = Waiver.objects.create(violation=violation, justification=justification, expires_at=expires_at,
                                   created_by=_who(user), created_at=now)
    violation.waived_until = max(expires_at, violation.waived_until or expires_at)
    violation.save(update_fields=["waived_until"])
    ViolationEvent.objects.create(violation=violation, kind=ViolationEvent.Kind.WAIVED, at=now, by=_who(user),
                                  detail={"waiver": waiver.pk, "justification": justification, "expires_at": expires_at.isoformat()})
    return waiver


def _refresh_waived_until(violation: Violation, now: datetime) -> None:
    active = violation.waivers.filter(revoked_at__isnull=True, expired_at__isnull=True, expires_at__gt=now)
    latest = active.order_by("-expires_at").values_list("expires_at", flat=True).first()
    violation.waived_until = latest
    violation.save(update_fields=["waived_until"])


@transaction.atomic
def waiver_revoke(*, waiver: Waiver, user=None, by: str | None = None, now: datetime | None = None) -> Waiver:
    now = now or timezone.now()
    user = by or user
    if waiver.revoked_at or waiver.expired_at:
        return waiver
    waiver.revoked_at, waiver.revoked_by = now, _who(user)
    waiver.save(update_fields=["revoked_at", "revoked_by"])
    _refresh_waived_until(waiver.violation, now)
    ViolationEvent.objects.create(violation=waiver.violation, kind=ViolationEvent.Kind.WAIVER_REVOKED, at=now, by=_who(user),
                                  detail={"waiver": waiver.pk})
    return waiver


@transaction.atomic
def waivers_expire(*, now: datetime | None = None, host: Host | None = None) -> int:
    """Mark waivers past their expiry; their violations show in the open list again (event `waiver_expired`)."""
    now = now or timezone.now()
    due = Waiver.objects.select_for_update().filter(revoked_at__isnull=True, expired_at__isnull=True, expires_at__lte=now)
    if host is not None:
        due = due.filter(violation__host=host)
    count = 0
    for waiver in due.select_related("violation"):
        waiver.expired_at = now
        waiver.save(update_fields=["expired_at"])
        _refresh_waived_until(waiver.violation, now)
        ViolationEvent.objects.create(violation=waiver.violation, kind=ViolationEvent.Kind.WAIVER_EXPIRED, at=now, by=ENGINE,
                                      detail={"waiver": waiver.pk, "expires_at": waiver.expires_at.isoformat(),
                                              "status": waiver.violation.status})
        count += 1
    return count


@transaction.atomic
def violation_acknowledge(*, violation: Violation, user=None, by: str | None = None, note: str = "",
                          now: datetime | None = None) -> Violation:
    """Record that a reviewer (`user` or `by`) has seen `violation` (it stays in the open list)."""
    now = now or timezone.now()
    user = by or user
    violation.acknowledged_at, violation.acknowledged_by = now, _who(user)
    violation.save(update_fields=["acknowledged_at", "acknowledged_by"])
    ViolationEvent.objects.create(violation=violation, kind=ViolationEvent.Kind.ACKNOWLEDGED, at=now, by=_who(user),
                                  detail={"note": note} if note else {})
    return violation


# --- Intent ------------------------------------------------------------------------------


def intent_record_change(*, before: str, by: str, source: str, summary: str = "", now: datetime | None = None) -> IntentChange | None:
    """Audit an intent change (TOML before/after) and queue the fleet re-evaluation; no-op when nothing changed."""
    after = to_toml(selectors.intent_current())
    if after == before:
        return None
    change = IntentChange.objects.create(at=now or timezone.now(), by=by, source=source, summary=summary[:300],
                                         before=before, after=after)
    transaction.on_commit(_queue_fleet_resync)
    return change


def _queue_fleet_resync() -> None:
    from .tasks import violations_sync_fleet_task

    violations_sync_fleet_task.delay()


@transaction.atomic
def intent_replace(*, intent: Intent, user=None, source: str = "import", summary: str = "",
                   now: datetime | None = None) -> IntentChange | None:
    """Make the stored intent equal to `intent` (a whole-file import), audited with who/when."""
    before = to_toml(selectors.intent_current())
    IntentSettings.objects.all().delete()
    IntentSettings.objects.create(allowed_userspace_drivers=list(intent.allowed_userspace_drivers),
                                  host_pasid_quota=intent.host_pasid_quota, stale_after_seconds=intent.stale_after_seconds)
    Tenant.objects.all().delete()
    Tenant.objects.bulk_create(Tenant(name=t.name, vm_patterns=list(t.vm_patterns), cgroup_patterns=list(t.cgroup_patterns),
                                      workload_patterns=list(t.workload_patterns), labels=list(t.labels), pasid_quota=t.pasid_quota)
                               for t in intent.tenants)
    HostRole.objects.all().delete()
    HostRole.objects.bulk_create(HostRole(name=r.name, host_patterns=list(r.host_patterns), host_labels=list(r.host_labels),
                                          expects_assignment=r.expects_assignment, expected_drivers=list(r.expected_drivers))
                                 for r in intent.roles)
    DeviceExpectation.objects.all().delete()
    DeviceExpectation.objects.bulk_create(DeviceExpectation(name=d.name, role=d.role, host_pattern=d.host_pattern, bdf=d.bdf,
                                                            vendor_device=d.vendor_device, class_prefix=d.class_prefix,
                                                            driver=d.driver, owner=d.owner) for d in intent.devices)
    GroupBaseline.objects.all().delete()
    GroupBaseline.objects.bulk_create(GroupBaseline(hostname=b.hostname, groups=[list(g) for g in b.groups],
                                                    accepted_at=datetime.fromisoformat(b.accepted_at) if b.accepted_at else None,
                                                    accepted_by=b.accepted_by) for b in intent.baselines)
    return intent_record_change(before=before, by=_who(user), source=source, summary=summary, now=now)


@transaction.atomic
def baseline_accept(*, host: Host, user=None, state: dict | None = None, now: datetime | None = None) -> GroupBaseline:
    """Record `host`'s current IOMMU groups as its accepted baseline (audited; re-evaluates the fleet)."""
    now = now or timezone.now()
    if state is None:
        from fleet.inventory.selectors import host_state

        state = host_state(host)
    before = to_toml(selectors.intent_current())
    groups = sorted(sorted(g.get("devices") or []) for g in state.get("groups") or [] if g.get("devices"))
    baseline, _ = GroupBaseline.objects.update_or_create(
        hostname=host.hostname, defaults={"groups": groups, "accepted_at": now, "accepted_by": _who(user)})
    intent_record_change(before=before, by=_who(user), source="baseline-accept", summary=f"baseline accepted for {host.hostname}", now=now)
    return baseline
