"""What an endpoint receives for an event: Alertmanager's alert list, or one generic JSON object.

Alertmanager identifies an alert by its labels, so they are the violation's identity only (host, rule,
subject), the same when it opens and when it resolves. An open violation is sent with `endsAt` one
FLEET_ALERT_FIRING_HOLD ahead (Alertmanager would otherwise resolve it after its resolve_timeout);
its resolution is sent with `endsAt` = the moment it resolved.
"""
from datetime import datetime, timedelta

from django.conf import settings
from django.urls import reverse

from . import events

ALERTNAME = "IommuFleetViolation"


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None


def host_url(hostname: str) -> str:
    """Absolute when FLEET_PUBLIC_URL is set (receivers are elsewhere), else the dashboard path."""
    return settings.FLEET_PUBLIC_URL.rstrip("/") + reverse("web:host-detail", args=[hostname])


def violation_facts(v, hostname: str, event: str, now: datetime) -> dict:
    """The violation as the event leaves it (a resolve is written by a bulk update, not on `v`)."""
    resolved = event == events.RESOLVED
    return {
        "id": v.pk, "host": hostname, "rule": v.rule, "severity": v.severity,
        "subject_kind": v.subject_kind, "subject_id": v.subject_id, "message": v.message, "remediation": v.remediation,
        "evidence": v.evidence, "status": "resolved" if resolved else "open", "opened_at": _iso(v.opened_at),
        "resolved_at": _iso(now) if resolved else None, "url": host_url(hostname),
    }


def alertmanager_alert(facts: dict, event: str, now: datetime) -> dict:
    ends = now if event == events.RESOLVED else now + timedelta(seconds=settings.FLEET_ALERT_FIRING_HOLD)
    return {
        "labels": {"alertname": ALERTNAME, "host": facts["host"], "rule": facts["rule"], "severity": facts["severity"],
                   "subject_kind": facts["subject_kind"], "subject_id": facts["subject_id"]},
        "annotations": {"summary": facts["message"], "remediation": facts["remediation"], "event": event},
        "startsAt": facts["opened_at"],
        "endsAt": _iso(ends),
        "generatorURL": facts["url"],
    }


def payload(kind: str, event: str, facts: list[dict], now: datetime):
    if kind == "alertmanager":
        return [alertmanager_alert(f, event, now) for f in facts]
    return {"event": event, "sent_at": _iso(now), "violations": facts}
