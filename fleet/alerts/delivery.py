"""Delivering one Delivery: one signed POST, its outcome recorded, the next attempt's delay chosen.

The task retries with a bounded exponential backoff until FLEET_ALERT_MAX_ATTEMPTS, then the delivery
is `failed` (the delivery log in the admin shows each one's attempts, last status and error).
"""
from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from .models import Delivery, Endpoint
from .signing import signature

RESPONSE_READ_LIMIT = 64 * 1024  # a receiver's answer is only logged, never trusted to be small


def retry_delay(attempts: int) -> int:
    """Seconds before the next attempt after `attempts` failed ones: doubling from FLEET_ALERT_RETRY_BASE, capped."""
    return min(settings.FLEET_ALERT_RETRY_BASE * 2 ** (attempts - 1), settings.FLEET_ALERT_RETRY_MAX)


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # a redirect is answered as the failure it is: the body would not follow it


_OPENER = urllib.request.build_opener(_NoRedirects)


def _post(endpoint: Endpoint, delivery: Delivery) -> tuple[int | None, str]:
    """(HTTP status or None, error text) of one POST of the delivery's payload."""
    body = json.dumps(delivery.payload, sort_keys=True, separators=(",", ":")).encode()
    timestamp = int(time.time())
    request = urllib.request.Request(endpoint.url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": "iommu-fleet-alerts",
        "X-Fleet-Event": delivery.event, "X-Fleet-Delivery": str(delivery.pk),
        "X-Fleet-Timestamp": str(timestamp), "X-Fleet-Signature": signature(endpoint.secret, timestamp, body),
    })
    try:
        with _OPENER.open(request, timeout=settings.FLEET_ALERT_TIMEOUT) as response:
            response.read(RESPONSE_READ_LIMIT)
            return response.status, ""
    except urllib.error.HTTPError as exc:
        detail = exc.read(RESPONSE_READ_LIMIT).decode("utf-8", "replace")
        return exc.code, f"HTTP {exc.code}: {detail}".strip()
    except (urllib.error.URLError, OSError, ValueError) as exc:
        return None, f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}"


@dataclass
class Attempt:
    delivered: bool
    retry_in: int | None  # seconds, None: no further attempt (delivered, given up, or nothing to do)


def delivery_attempt(*, delivery_id: int, now: datetime | None = None) -> Attempt:
    """POST a pending delivery once and record how it went (no transaction is held open while sending)."""
    delivery = Delivery.objects.select_related("endpoint").filter(pk=delivery_id, status=Delivery.Status.PENDING).first()
    if delivery is None:
        return Attempt(False, None)
    if not delivery.endpoint.enabled:
        Delivery.objects.filter(pk=delivery.pk).update(status=Delivery.Status.FAILED, next_attempt_at=None, error="endpoint disabled")
        return Attempt(False, None)
    status, error = _post(delivery.endpoint, delivery)
    now = now or timezone.now()
    attempts = delivery.attempts + 1
    fields = {"attempts": attempts, "last_attempt_at": now, "response_status": status, "error": error[:500]}
    if status is not None and 200 <= status < 300:
        Delivery.objects.filter(pk=delivery.pk).update(**fields, status=Delivery.Status.DELIVERED, delivered_at=now, next_attempt_at=None)
        return Attempt(True, None)
    if attempts >= settings.FLEET_ALERT_MAX_ATTEMPTS:
        Delivery.objects.filter(pk=delivery.pk).update(**fields, status=Delivery.Status.FAILED, next_attempt_at=None)
        return Attempt(False, None)
    delay = retry_delay(attempts)
    Delivery.objects.filter(pk=delivery.pk).update(**fields, next_attempt_at=now + timedelta(seconds=delay))
    return Attempt(False, delay)


def deliveries_overdue(*, now: datetime | None = None, limit: int = 1000) -> list[int]:
    """Pending deliveries FLEET_ALERT_REQUEUE_AFTER seconds past their due attempt: their task was lost."""
    cutoff = (now or timezone.now()) - timedelta(seconds=settings.FLEET_ALERT_REQUEUE_AFTER)
    due = Q(next_attempt_at__lt=cutoff) | Q(next_attempt_at__isnull=True, created_at__lt=cutoff)
    return list(Delivery.objects.filter(due, status=Delivery.Status.PENDING).order_by("created_at").values_list("pk", flat=True)[:limit])
