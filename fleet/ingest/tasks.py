"""Celery adapters: fetch by id, call the service, retry on transient database trouble; and the queueing of an id."""
import gc
import logging

from celery import shared_task
from celery.signals import task_postrun, task_prerun, worker_process_init, worker_ready
from django.conf import settings
from django.db import InterfaceError, OperationalError, close_old_connections

from .models import Snapshot
from .services.apply import snapshot_apply
from .services.sweep import hosts_mark_stale, snapshots_requeue_stuck
from .time_limits import arm, disarm

log = logging.getLogger(__name__)

# Publishing to a broker that is down: give up fast (the sweeper re-queues), do not hold the agent's request.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


@shared_task(
    acks_late=True,
    autoretry_for=(OperationalError, InterfaceError),
    retry_backoff=True,
    retry_backoff_max=300,
    retry_jitter=True,
    max_retries=10,  # the service gives up earlier, after FLEET_APPLY_MAX_ATTEMPTS
    ignore_result=True,
    # What one snapshot may cost a worker (issue 10 item 5). At the soft limit the apply rolls back and the
    # snapshot is marked failed; the hard limit kills a worker stuck past it (the message comes back, and the
    # snapshot's attempt count ends it).
    soft_time_limit=settings.FLEET_APPLY_SOFT_TIME_LIMIT,
    time_limit=settings.FLEET_APPLY_TIME_LIMIT,
)
def snapshot_apply_task(snapshot_id: int) -> str:
    """Apply one stored snapshot; a re-delivery or re-run of an applied one does nothing. One left `received`
    (an older pending snapshot of its batch failed) is queued again at once."""
    status = snapshot_apply(snapshot_id=snapshot_id)
    if status == Snapshot.Status.RECEIVED:
        snapshot_queue_apply(snapshot_id)
    return status


def snapshot_queue_apply(snapshot_id: int) -> bool:
    """Hand a stored snapshot's id to the apply task; False (logged) when the broker cannot take it.

    A broker outage must not turn an accepted, committed snapshot into an error for the agent:
    the row stays `received` and the sweeper queues it again once the broker is back.
    """
    try:
        snapshot_apply_task.apply_async((snapshot_id,), retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; every one means "not queued"
        log.warning("snapshot %s stored but not queued (%s: %s); the sweeper will queue it", snapshot_id, exc.__class__.__name__, exc)
        return False
    return True


@shared_task(ignore_result=True)
def sweep() -> dict:
    """Re-queue snapshots left unprocessed and mark silent hosts stale (beat schedule in settings)."""
    requeued = snapshots_requeue_stuck(older_than_seconds=getattr(settings, "FLEET_REQUEUE_AFTER", 120), queue=snapshot_queue_apply)
    return {"requeued": len(requeued), "stale": hosts_mark_stale()}


@task_prerun.connect
@task_postrun.connect
def _close_old_connections(**kwargs) -> None:
    """What Django does around a request: drop connections past CONN_MAX_AGE or broken, keep the rest.

    Celery's own fixup would close every connection around every task (settings.CELERY_DB_REUSE_MAX
    turns that off): a new PostgreSQL session per task cost ~5% of a changed 480-device apply.
    Eager tasks run inside the caller's request or transaction; their connection is the caller's.
    """
    task = kwargs.get("task") or kwargs.get("sender")
    if getattr(getattr(task, "request", None), "is_eager", False):
        return
    close_old_connections()


@task_prerun.connect
def _time_limits_arm(sender=None, **kwargs) -> None:
    if getattr(sender, "name", None) == snapshot_apply_task.name and not getattr(sender.request, "is_eager", False):
        arm(sender)


@task_postrun.connect
def _time_limits_disarm(**kwargs) -> None:
    disarm()


@worker_process_init.connect
@worker_ready.connect
def _freeze_startup_objects(**kwargs) -> None:
    """Move everything loaded at start-up (Django, Celery, the schema) out of the collector's sight.

    A task's objects are freed by reference counting when it ends; a young generation of 50,000 lets a
    480-device apply (~100k allocations) run with a few collections instead of ~140 full ones over the
    start-up objects: 2-4 ms less per changed apply (bench/ingest.py).
    """
    gc.freeze()
    gc.set_threshold(*WORKER_GC_THRESHOLD)


WORKER_GC_THRESHOLD = (50_000, 20, 100)
