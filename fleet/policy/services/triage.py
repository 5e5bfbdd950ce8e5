"""Human decisions on violations: waive, revoke a waiver, acknowledge; and the expiry of waivers.

Each decision is recorded twice, on purpose: a `ViolationEvent` in the violation's own history
(what the pages show) and an audit entry (who, from where, before/after: what the audit log and its
exports show). Expiry is the clock, not a person: an event only.
"""
from __future__ import annotations

from datetime import datetime

from django.db import transaction
from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.alerts import events as alert_events
from fleet.alerts.services import alerts_raise
from fleet.inventory.models import Host

from ..models import Violation, ViolationEvent, Waiver
from .actors import actor_name, audit_actor

ENGINE = "policy"  # the `by` of what the engine and the clock do


class PolicyError(ValueError):
    """A request the policy services refuse (bad waiver, unknown host…); the message says why."""


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


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
    violation = Violation.objects.select_for_update().select_related("host").get(pk=violation.pk)
    waived_before = violation.waived_until
    waiver = Waiver.objects.create(violation=violation, justification=justification, expires_at=expires_at,
                                   created_by=actor_name(user), created_at=now)
    violation.waived_until = max(expires_at, violation.waived_until or expires_at)
    violation.save(update_fields=["waived_until"])
    ViolationEvent.objects.create(violation=violation, kind=ViolationEvent.Kind.WAIVED, at=now, by=actor_name(user),
                                  detail={"waiver": waiver.pk, "justification": justification, "expires_at": expires_at.isoformat()})
    audit_record(actor=audit_actor(user), action="waiver.create", subject=str(waiver),
                 before={"waived_until": _when(waived_before)},
                 after={"justification": justification, "expires_at": _when(expires_at), "waived_until": _when(violation.waived_until)})
    return waiver


def _refresh_waived_until(violation: Violation, now: datetime) -> None:
    active = violation.waivers.filter(revoked_at__isnull=True, expired_at__isnull=True, expires_at__gt=now)
    violation.waived_until = active.order_by("-expires_at").values_list("expires_at", flat=True).first()
    violation.save(update_fields=["waived_until"])


@transaction.atomic
def waiver_revoke(*, waiver: Waiver, user=None, by: str | None = None, now: datetime | None = None) -> Waiver:
    """End a waiver early; its violation shows in the open list again unless another waiver still covers it."""
    now = now or timezone.now()
    user = by or user
    if waiver.revoked_at or waiver.expired_at:
        return waiver
    waived_before = waiver.violation.waived_until
    waiver.revoked_at, waiver.revoked_by = now, actor_name(user)
    waiver.save(update_fields=["revoked_at", "revoked_by"])
    _refresh_waived_until(waiver.violation, now)
    ViolationEvent.objects.create(violation=waiver.violation, kind=ViolationEvent.Kind.WAIVER_REVOKED, at=now, by=actor_name(user),
                                  detail={"waiver": waiver.pk})
    audit_record(actor=audit_actor(user), action="waiver.revoke", subject=str(waiver),
                 before={"revoked_at": None, "waived_until": _when(waived_before)},
                 after={"revoked_at": _when(now), "revoked_by": waiver.revoked_by, "waived_until": _when(waiver.violation.waived_until)})
    return waiver


@transaction.atomic
def waiver_extend(*, waiver: Waiver, expires_at: datetime, user=None, by: str | None = None,
                  now: datetime | None = None) -> Waiver:
    """Move an active waiver's expiry (later or earlier, still in the future); the justification stays."""
    now = now or timezone.now()
    user = by or user
    waiver = Waiver.objects.select_for_update().select_related("violation").get(pk=waiver.pk)
    if waiver.revoked_at or waiver.expired_at or waiver.expires_at <= now:
        raise PolicyError("this waiver has ended; waive the violation again instead")
    if expires_at <= now:
        raise PolicyError("a waiver must expire in the future")
    before = waiver.expires_at
    waiver.expires_at = expires_at
    waiver.save(update_fields=["expires_at"])
    _refresh_waived_until(waiver.violation, now)
    # A waiver's new term is a waiving decision: the `waived` kind, its detail saying it extends one.
    ViolationEvent.objects.create(violation=waiver.violation, kind=ViolationEvent.Kind.WAIVED, at=now, by=actor_name(user),
                                  detail={"waiver": waiver.pk, "extended_from": before.isoformat(), "expires_at": expires_at.isoformat(),
                                          "justification": waiver.justification})
    audit_record(actor=audit_actor(user), action="waiver.extend", subject=str(waiver),
                 before={"expires_at": _when(before)}, after={"expires_at": _when(expires_at)})
    return waiver


@transaction.atomic
def waivers_expire(*, now: datetime | None = None, host: Host | None = None) -> int:
    """Mark waivers past their expiry; their violations show in the open list again (event `waiver_expired`)."""
    now = now or timezone.now()
    due = Waiver.objects.select_for_update().filter(revoked_at__isnull=True, expired_at__isnull=True, expires_at__lte=now)
    if host is not None:
        due = due.filter(violation__host=host)
    expired = []
    for waiver in due.select_related("violation"):
        waiver.expired_at = now
        waiver.save(update_fields=["expired_at"])
        _refresh_waived_until(waiver.violation, now)
        ViolationEvent.objects.create(violation=waiver.violation, kind=ViolationEvent.Kind.WAIVER_EXPIRED, at=now, by=ENGINE,
                                      detail={"waiver": waiver.pk, "expires_at": waiver.expires_at.isoformat(),
                                              "status": waiver.violation.status})
        expired.append(waiver.violation)
    alerts_raise(event=alert_events.WAIVER_EXPIRED, violations=list({v.pk: v for v in expired}.values()), now=now)
    return len(expired)


@transaction.atomic
def violation_acknowledge(*, violation: Violation, user=None, by: str | None = None, note: str = "",
                          now: datetime | None = None) -> Violation:
    """Record that a reviewer (`user` or `by`) has seen `violation` (it stays in the open list)."""
    now = now or timezone.now()
    user = by or user
    before = {"acknowledged_at": _when(violation.acknowledged_at), "acknowledged_by": violation.acknowledged_by}
    violation.acknowledged_at, violation.acknowledged_by = now, actor_name(user)
    violation.save(update_fields=["acknowledged_at", "acknowledged_by"])
    ViolationEvent.objects.create(violation=violation, kind=ViolationEvent.Kind.ACKNOWLEDGED, at=now, by=actor_name(user),
                                  detail={"note": note} if note else {})
    audit_record(actor=audit_actor(user), action="violation.acknowledge", subject=f"violation {violation.pk}: {violation.title}",
                 before=before, after={"acknowledged_at": _when(now), "acknowledged_by": violation.acknowledged_by, "note": note})
    return violation
