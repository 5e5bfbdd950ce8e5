"""The violation lifecycle: evaluate the rules for hosts and write what changed.

Rules are pure (`engine.evaluate`); a sync turns their findings into rows, per host or per chunk of
hosts, in one transaction so a reader never sees half of it: each finding's violation is opened,
kept, updated or reopened; each open violation no finding names any more is resolved. `SyncPlan`
decides all of that before anything is written.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.alerts import events as alert_events
from fleet.alerts.services import alerts_raise
from fleet.inventory.models import Host
from fleet.inventory.selectors import host_state

from .. import selectors, tasks
from ..engine import evaluate
from ..facts import HostContext
from ..findings import Finding
from ..intent import Intent
from ..models import Violation, ViolationEvent
from ..rules.pasid import tenant_pasid_usage
from . import quotas
from .triage import ENGINE, waivers_expire

CONTENT_FIELDS = ("message", "evidence", "remediation", "severity")
# What an update or a reopening writes back (bulk_update: one statement however many rows).
REWRITTEN_FIELDS = ("status", "opened_at", "resolved_at", "updated_at", "last_seen_at", *CONTENT_FIELDS)


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


def _normalised(evidence: dict) -> dict:
    # What the JSON column will give back (tuples become lists…), so unchanged evidence compares equal.
    return json.loads(json.dumps(evidence, default=str))


@dataclass
class SyncPlan:
    """One sync's decisions, made in memory before anything is written (`write`)."""

    now: datetime
    opened: list[Violation] = field(default_factory=list)  # new rows
    kept: list[int] = field(default_factory=list)  # still firing as they were: only last_seen_at moves
    rewritten: list[Violation] = field(default_factory=list)  # updated, or resolved and firing again
    resolved: list[Violation] = field(default_factory=list)
    events: list[ViolationEvent] = field(default_factory=list)  # of kept rows; those of new rows follow their insert
    seen: set[str] = field(default_factory=set)  # fingerprints found this time

    @classmethod
    def between(cls, stored: dict[str, Violation], findings: list[tuple[Host, Finding]], now: datetime) -> "SyncPlan":
        plan = cls(now)
        for host, finding in findings:
            fp = fingerprint(host, finding.rule, finding.subject_kind, finding.subject_id)
            if fp not in plan.seen:  # one row per subject, whatever a rule returned twice
                plan.seen.add(fp)
                plan._found(host, finding, fp, stored.get(fp))
        for fp, violation in stored.items():
            if fp not in plan.seen and violation.status == Violation.Status.OPEN:
                plan._resolve(violation)
        return plan

    def _found(self, host: Host, f: Finding, fp: str, v: Violation | None) -> None:
        now, evidence = self.now, _normalised(f.evidence)
        if v is None:
            self.opened.append(Violation(
                host=host, rule=f.rule, severity=f.severity, subject_kind=f.subject_kind, subject_id=f.subject_id[:512],
                message=f.message, evidence=evidence, remediation=f.remediation, status=Violation.Status.OPEN,
                opened_at=now, updated_at=now, last_seen_at=now, fingerprint=fp))
            return
        changed = (v.message, v.evidence, v.remediation, v.severity) != (f.message, evidence, f.remediation, f.severity)
        if v.status == Violation.Status.RESOLVED:
            self.events.append(ViolationEvent(violation=v, kind=ViolationEvent.Kind.REOPENED, at=now, by=ENGINE))
            v.status, v.opened_at, v.resolved_at = Violation.Status.OPEN, now, None
        elif changed:
            self.events.append(ViolationEvent(violation=v, kind=ViolationEvent.Kind.UPDATED, at=now, by=ENGINE,
                                              detail={"before": {"message": v.message, "evidence": v.evidence}}))
        else:
            self.kept.append(v.pk)
            return
        v.message, v.evidence, v.remediation, v.severity = f.message, evidence, f.remediation, f.severity
        v.updated_at = v.last_seen_at = now
        self.rewritten.append(v)

    def _resolve(self, v: Violation) -> None:
        self.resolved.append(v)
        self.events.append(ViolationEvent(violation=v, kind=ViolationEvent.Kind.RESOLVED, at=self.now, by=ENGINE,
                                          detail={"last_message": v.message}))

    def write(self) -> None:
        now = self.now
        if self.kept:
            Violation.objects.filter(pk__in=self.kept).update(last_seen_at=now)
        if self.resolved:
            Violation.objects.filter(pk__in=[v.pk for v in self.resolved]).update(
                status=Violation.Status.RESOLVED, resolved_at=now, updated_at=now)
        if self.rewritten:
            Violation.objects.bulk_update(self.rewritten, REWRITTEN_FIELDS, batch_size=500)
        created = Violation.objects.bulk_create(self.opened, batch_size=500)
        if created and created[0].pk is None:  # backends without RETURNING
            by_fp = dict(Violation.objects.filter(fingerprint__in=[c.fingerprint for c in created]).values_list("fingerprint", "pk"))
            for c in created:
                c.pk = by_fp[c.fingerprint]
        events = self.events + [ViolationEvent(violation=v, kind=ViolationEvent.Kind.OPENED, at=now, by=ENGINE) for v in created]
        if events:
            ViolationEvent.objects.bulk_create(events, batch_size=1000)
        reopened = [e.violation for e in self.events if e.kind == ViolationEvent.Kind.REOPENED]
        alerts_raise(event=alert_events.OPENED, violations=created + reopened, now=now)
        alerts_raise(event=alert_events.RESOLVED, violations=self.resolved, now=now)

    def counts(self) -> dict:
        kinds = [e.kind for e in self.events]
        return {"opened": len(self.opened), "reopened": kinds.count(ViolationEvent.Kind.REOPENED),
                "updated": kinds.count(ViolationEvent.Kind.UPDATED), "resolved": len(self.resolved), "open": len(self.seen)}


def _sync_hosts(hosts: list[Host], *, states: dict[int, dict], intent: Intent, now: datetime,
                pasid_elsewhere: dict | None = None, expire_waivers: bool = False) -> dict:
    """Evaluate `hosts` and write the difference with their stored violations. Call inside a transaction.

    `expire_waivers`: first expire the hosts' due waivers when a stored violation's `waived_until` has
    passed — seen in the rows loaded anyway, so the usual sync (nothing due) spends no query on waivers;
    the beat tick expires the rest fleet-wide.
    """
    if not hosts:
        return SyncPlan(now).counts()
    # Locked while the diff is written. Only the violation rows (`of`): an apply holds its host's row already.
    stored = {v.fingerprint: v for v in Violation.objects.select_for_update(of=("self",)).filter(host__in=hosts)}
    if expire_waivers and any(v.waived_until is not None and v.waived_until <= now for v in stored.values()):
        for host in hosts:
            waivers_expire(now=now, host=host)
    findings = []
    for host in hosts:
        context = host_context(host, now, tenant_pasids_elsewhere=(pasid_elsewhere or {}).get(host.pk, {}), intent=intent)
        findings.extend((host, f) for f in evaluate(states[host.pk], intent, context=context))
    plan = SyncPlan.between(stored, findings, now)
    plan.write()
    return plan.counts()


@transaction.atomic
def violations_sync_for_host(*, host: Host, now: datetime | None = None, state: dict | None = None,
                             intent: Intent | None = None) -> dict:
    """Evaluate every rule for `host`'s current state and open/update/resolve its violations.

    `state` lets the apply service pass the snapshot it just applied (saves rebuilding it
    from the tables). Returns counts: {"opened", "reopened", "updated", "resolved", "open"}.
    """
    now = now or timezone.now()
    state = host_state(host) if state is None else state
    intent = intent if intent is not None else selectors.intent_current()
    if not quotas.quotas(intent):  # no tenant quota: nothing fleet-wide to count (a fleet sync recounts when one is added)
        return _sync_hosts([host], states={host.pk: state}, intent=intent, now=now, expire_waivers=True)
    usage = tenant_pasid_usage(state, intent)
    elsewhere = quotas.tenant_pasids_elsewhere(host=host, intent=intent)
    counts = _sync_hosts([host], states={host.pk: state}, intent=intent, now=now, pasid_elsewhere={host.pk: elsewhere},
                         expire_waivers=True)
    previous = quotas.pasid_usage_store(host=host, usage=usage, now=now)
    recheck = quotas.hosts_to_recheck(host=host, intent=intent, before=previous, after=usage, elsewhere=elsewhere)
    if recheck:
        # Their findings quote the tenant's fleet total; they are re-evaluated once this commit is visible.
        transaction.on_commit(lambda: _queue_host_syncs(recheck))
    return counts


def _queue_host_syncs(host_ids: list[int]) -> None:
    for host_id in host_ids:
        tasks.violations_sync_for_host_task.delay(host_id)


def violations_sync_fleet(*, now: datetime | None = None, intent: Intent | None = None) -> dict:
    """Re-evaluate every reporting host (after an intent change), in chunks of hosts, one transaction each."""
    now = now or timezone.now()
    intent = intent if intent is not None else selectors.intent_current()
    waivers_expire(now=now)
    totals = {"hosts": 0, "opened": 0, "reopened": 0, "updated": 0, "resolved": 0, "open": 0}
    hosts = (Host.objects.exclude(enrollment=Host.Enrollment.RETIRED).filter(last_seen__isnull=False)
             .prefetch_related("labels").order_by("pk"))
    ids = list(hosts.values_list("pk", flat=True))
    elsewhere = quotas.fleet_pasid_usage_refresh(hosts=hosts, intent=intent, now=now)
    for i in range(0, len(ids), quotas.FLEET_CHUNK):
        chunk = list(hosts.filter(pk__in=ids[i:i + quotas.FLEET_CHUNK]))
        with transaction.atomic():
            counts = _sync_hosts(chunk, states=selectors.host_states(chunk), intent=intent, now=now, pasid_elsewhere=elsewhere)
        totals["hosts"] += len(chunk)
        for key, value in counts.items():
            totals[key] += value
    return totals


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
