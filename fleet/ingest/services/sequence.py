"""An operator's way out for a host whose sequence is wrong (issue 10 item 4).

Before seq was bounded, one report with seq 1e18 made every later report of its host `superseded`: the
host's applied_seq stays above anything its agent will ever send. `host_sequence_reset` sets it back
(to nothing, or to a given value) and re-queues the host's latest report when that was superseded, so
the host shows its real state again without waiting for a change. Audited: it overrides the ordering
the server otherwise trusts.
"""
from __future__ import annotations

from collections.abc import Callable

from django.db import transaction

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host

from ..models import Snapshot


@transaction.atomic
def host_sequence_reset(*, hostname: str, to: int | None = None, queue: Callable[[int], object] | None = None) -> dict:
    """Set the host's applied seq to `to` (None: the next report applies whatever its seq); re-queue its latest
    snapshot if superseded and above `to`. Returns {"before", "after", "requeued"}; Host.DoesNotExist when unknown."""
    host = Host.objects.select_for_update().get(hostname=hostname)
    before = host.applied_seq
    Host.objects.filter(pk=host.pk).update(applied_seq=to)
    latest = Snapshot.objects.filter(host=host).only("id", "seq", "status").order_by("-id").first()
    requeued = None
    if latest is not None and latest.status == Snapshot.Status.SUPERSEDED and (to is None or latest.seq > to):
        Snapshot.objects.filter(pk=latest.pk).update(status=Snapshot.Status.RECEIVED, processed_at=None, error="", attempts=0)
        requeued = latest.pk
        if queue is not None:
            transaction.on_commit(lambda: queue(requeued))
    result = {"before": before, "after": to, "requeued": requeued}
    audit_record(action="host.sequence_reset", subject=f"host {host.hostname}", before={"applied_seq": before},
                 after={"applied_seq": to, "requeued_snapshot": requeued})
    return result
