"""The sweeper's two jobs: queue again what a lost task left `received`, and mark silent hosts stale."""
from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.utils import timezone

from fleet.inventory.models import Host

from ..models import Snapshot

log = logging.getLogger(__name__)


def snapshots_requeue_stuck(*, older_than_seconds: int, queue: Callable[[int], bool], limit: int = 1000) -> list[int]:
    """Hand `queue` (`tasks.snapshot_queue_apply`) the snapshots still `received` after `older_than_seconds`
    (lost task, broker or worker); stops at the first one it cannot take."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        Snapshot.objects.filter(status=Snapshot.Status.RECEIVED, received_at__lt=cutoff).order_by("received_at").values_list("id", flat=True)[:limit]
    )
    for snapshot_id in ids:
        if not queue(snapshot_id):
            break  # broker still down: the next sweep tries again
    if ids:
        log.warning("re-queued %d snapshots left unprocessed for more than %ss", len(ids), older_than_seconds)
    return ids


def hosts_mark_stale(*, now: datetime | None = None) -> int:
    """Mark stale every reporting host silent for FLEET_STALE_AFTER_INTERVALS × FLEET_REPORT_INTERVAL."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FLEET_STALE_AFTER_INTERVALS * settings.FLEET_REPORT_INTERVAL)
    return Host.objects.filter(stale=False, last_seen__lt=cutoff).exclude(enrollment=Host.Enrollment.RETIRED).update(stale=True)
