"""Putting a snapshot into the inventory the way ingest does, then syncing violations (helpers for DB tests)."""
from __future__ import annotations

from datetime import datetime

from fleet.inventory.models import Host
from fleet.inventory.services import host_state_replace
from fleet.policy.models import Violation
from fleet.policy.services import violations_sync_for_host


def host_named(hostname: str) -> Host:
    return Host.objects.create(hostname=hostname, enrollment=Host.Enrollment.ACTIVE)


def apply_and_sync(host: Host, document: dict, at: datetime) -> dict:
    host_state_replace(host=host, document=document, snapshot_id=None, seq=None, at=at)
    host.refresh_from_db()
    return violations_sync_for_host(host=host, now=at)


def open_keys(host: Host) -> set[tuple[str, str, str]]:
    return set(Violation.objects.filter(host=host, status=Violation.Status.OPEN).values_list("rule", "subject_kind", "subject_id"))
