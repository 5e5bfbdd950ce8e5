"""Raising violation events, inside the caller's transaction (policy's sync and waiver expiry).

`alerts_raise` only writes Delivery rows, one per enabled endpoint and batch of violations, and asks
for them to be sent once the transaction commits (`delivery.py`, through the task): no outbound call
ever happens inside an ingest or a request transaction, and a rolled-back sync sends nothing.
"""
from __future__ import annotations

from datetime import datetime

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from fleet.inventory.models import Host

from . import events, tasks
from .models import Delivery, Endpoint
from .payloads import payload, violation_facts


def alerts_raise(*, event: str, violations: list, now: datetime | None = None) -> int:
    """Queue `event` for `violations` to every enabled endpoint; returns the deliveries queued.

    A firing event leaves out violations a waiver still hides or that are no longer open.
    """
    if not violations:
        return 0
    now = now or timezone.now()
    if event in events.FIRING:
        violations = [v for v in violations if v.status == "open" and not (v.waived_until and v.waived_until > now)]
    endpoints = list(Endpoint.objects.filter(enabled=True)) if violations else []
    if not endpoints:
        return 0
    names = dict(Host.objects.filter(pk__in={v.host_id for v in violations}).values_list("pk", "hostname"))
    facts = [violation_facts(v, names[v.host_id], event, now) for v in violations]
    batch = settings.FLEET_ALERT_BATCH
    deliveries = [
        Delivery(endpoint=endpoint, event=event, violation_count=len(chunk), payload=payload(endpoint.kind, event, chunk, now), created_at=now)
        for endpoint in endpoints for chunk in (facts[i:i + batch] for i in range(0, len(facts), batch))
    ]
    created = Delivery.objects.bulk_create(deliveries)
    ids = [d.pk for d in created]
    transaction.on_commit(lambda: tasks.deliveries_queue(ids))
    return len(ids)
