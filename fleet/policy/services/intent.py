"""Writes of the declared intent: a whole import, a baseline acceptance, an admin edit.

Every intent write goes through `intent_record_change`, which gives the intent a new version token
(workers cache the parsed intent keyed by it: `selectors.intent_current`), keeps the TOML before and
after as an `IntentChange`, audits it, and queues the fleet re-evaluation once the write commits.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime

from django.db import transaction
from django.utils import timezone

from agent.identity import device_identity
from fleet.accounts.services import audit_record
from fleet.inventory.models import Host
from fleet.inventory.selectors import host_state

from .. import selectors, tasks
from ..intent import Intent, to_toml
from ..models import DeviceExpectation, GroupBaseline, HostRole, IntentChange, IntentSettings, IntentVersion, Tenant
from .actors import actor_name, audit_actor
from .triage import ENGINE


def intent_version_bump() -> None:
    """A new version token: from this write on (in this transaction first, everywhere once it commits)
    every cached intent is stale. Random, not a counter, so a rolled-back bump never lends its value
    to a later change that a worker might already have cached under it."""
    IntentVersion.objects.update_or_create(pk=1, defaults={"token": secrets.token_hex(16)})


def intent_record_change(*, before: str, by, source: str, summary: str = "", now: datetime | None = None) -> IntentChange | None:
    """Call after writing the intent tables: bump the version, keep and audit the change (TOML `before` and
    after), queue the fleet re-evaluation; no change row when the intent reads the same as `before`."""
    intent_version_bump()
    after = to_toml(selectors.intent_current())
    if after == before:
        return None
    change = IntentChange.objects.create(at=now or timezone.now(), by=actor_name(by), source=source, summary=summary[:300],
                                         before=before, after=after)
    audit_record(actor=audit_actor(by), action="intent.change", subject=f"intent ({source}): {change.summary}",
                 before={"toml": before}, after={"toml": after})
    transaction.on_commit(tasks.violations_sync_fleet_task.delay)
    return change


@transaction.atomic
def intent_edit(*, write: Callable[[], object], user, source: str, summary: str) -> IntentChange | None:
    """Run `write` (any change to the intent tables, e.g. an admin form's save) as one recorded intent change."""
    before = to_toml(selectors.intent_current())
    write()
    return intent_record_change(before=before, by=user, source=source, summary=summary)


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
                                                    identities=dict(b.identities),
                                                    accepted_at=datetime.fromisoformat(b.accepted_at) if b.accepted_at else None,
                                                    accepted_by=b.accepted_by) for b in intent.baselines)
    return intent_record_change(before=before, by=user, source=source, summary=summary, now=now)


def baseline_of(state: dict) -> tuple[list[list[str]], dict[str, str]]:
    """(groups as sorted BDF lists, BDF -> stable identity of every member) of a host state."""
    devices = {d["bdf"]: d for d in state.get("devices") or []}
    groups = sorted(sorted(g.get("devices") or []) for g in state.get("groups") or [] if g.get("devices"))
    return groups, {b: device_identity(b, devices) for g in groups for b in g}


@transaction.atomic
def baseline_accept(*, host: Host, user=None, state: dict | None = None, now: datetime | None = None) -> GroupBaseline:
    """Record `host`'s current IOMMU groups and their members' identities as its accepted baseline (audited; re-evaluates the fleet)."""
    now = now or timezone.now()
    state = host_state(host) if state is None else state
    before = to_toml(selectors.intent_current())
    groups, identities = baseline_of(state)
    baseline, _ = GroupBaseline.objects.update_or_create(
        hostname=host.hostname, defaults={"groups": groups, "identities": identities, "accepted_at": now,
                                          "accepted_by": actor_name(user)})
    intent_record_change(before=before, by=user, source="baseline-accept", summary=f"baseline accepted for {host.hostname}", now=now)
    return baseline


@transaction.atomic
def baseline_accept_first(*, host: Host, state: dict, now: datetime | None = None) -> GroupBaseline | None:
    """A host's first applied snapshot becomes its baseline, accepted by the engine (audited); None when it has one.

    Only this host's evaluation can change, and the caller evaluates it next: no fleet re-evaluation,
    no whole-intent TOML diff (which would cost every enrolment the size of the fleet's intent).
    """
    if GroupBaseline.objects.filter(hostname=host.hostname).exists():
        return None
    now = now or timezone.now()
    groups, identities = baseline_of(state)
    baseline, created = GroupBaseline.objects.get_or_create(
        hostname=host.hostname, defaults={"groups": groups, "identities": identities, "accepted_at": now, "accepted_by": ENGINE})
    if not created:
        return None
    intent_version_bump()
    audit_record(actor=ENGINE, action="baseline.accept", subject=f"baseline of {host.hostname} (first snapshot)",
                 after={"groups": groups})
    return baseline
