"""Applying stored snapshots: one host at a time (row lock), pending ones in seq order, policy in the same transaction.

`snapshot_apply(snapshot_id=…)` is what the apply task runs; it is idempotent (a re-run of a settled
snapshot only reads its status) and returns the snapshot's status afterwards.

Every apply ends: a snapshot whose apply raises anything (a bug, RecursionError, bad data the
validation let through, Celery's soft time limit) is marked `failed` with the error, and so is one
whose attempts (task runs, retries after database trouble, redeliveries after a killed worker) pass
FLEET_APPLY_MAX_ATTEMPTS. A failed snapshot is never in a later batch, so it cannot hold up the host's
next reports; the host shows as behind its reports until one applies (fleet.ingest.freshness).
"""
from __future__ import annotations

import logging

import orjson
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings
from django.db import InterfaceError, OperationalError, transaction
from django.db.models import F, QuerySet
from django.utils import timezone

from fleet.accounts.services import audit_record
from fleet.inventory.models import Host
from fleet.inventory.services import StateReplaced, host_state_replace
from fleet.policy import services as policy_services

from ..statements import commit_without_wal_wait
from ..models import Snapshot

log = logging.getLogger(__name__)


def snapshot_apply(*, snapshot_id: int) -> str:
    """Apply a stored snapshot (and any older pending ones of its host, in seq order); idempotent.

    Returns the snapshot's status afterwards. Policy is evaluated in the same transaction (`_policy_sync`).
    """
    attempts = _attempt_count(snapshot_id)
    if attempts > settings.FLEET_APPLY_MAX_ATTEMPTS:
        return _snapshot_mark_failed(snapshot_id=snapshot_id, error=f"gave up after {attempts - 1} attempts "
                                     "(each ended by database trouble, a time limit or a lost worker; see the worker log)")
    try:
        return _snapshot_apply_locked(snapshot_id=snapshot_id)
    except _ApplyFailed as failed:  # raised out of the apply's transaction, which rolled back
        status = _snapshot_mark_failed(snapshot_id=failed.snapshot_id, error=failed.error)
        if failed.snapshot_id == snapshot_id:
            return status
        # An older pending snapshot of the batch failed: this one is still `received` (the task queues it again).
        return Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).get()
    except SoftTimeLimitExceeded as exc:  # outside any one item's apply (the lock, the batch's bookkeeping)
        return _snapshot_mark_failed(snapshot_id=snapshot_id, error=_failure_text(exc))
    except _TRANSIENT as exc:
        if attempts < settings.FLEET_APPLY_MAX_ATTEMPTS:
            raise  # the task retries the whole (idempotent) apply
        return _snapshot_mark_failed(snapshot_id=snapshot_id, error=f"attempt {attempts} of {attempts}: {_failure_text(exc)}")


def _attempt_count(snapshot_id: int) -> int:
    """Count this attempt, committed before the apply starts (its rollback must not undo the count); 0 when settled."""
    Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RECEIVED).update(attempts=F("attempts") + 1)
    return Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RECEIVED).values_list("attempts", flat=True).first() or 0


def _policy_sync(host: Host, replaced: StateReplaced, snapshot_id: int) -> None:
    """Evaluate policy on the state just written, inside the apply's transaction.

    Inside, not after: the violations commit with the state they describe (a lost commit loses both
    and the sweeper re-applies), without a WAL flush of their own to wait for, and the policy reads
    nothing back.
    A policy bug must not undo or block the apply: its own savepoint rolls back and it is logged;
    the host's next snapshot or a fleet sync evaluates it again.
    """
    try:
        state = replaced.state(host)
        policy_services.baseline_accept_first(host=host, state=state)
        policy_services.violations_sync_for_host(host=host, state=state)
    except _TRANSIENT:
        raise  # database trouble: the task retries the whole (idempotent) apply
    except SoftTimeLimitExceeded as exc:
        raise _ApplyFailed(snapshot_id, f"policy evaluation: {_failure_text(exc)}") from exc
    except Exception:  # noqa: BLE001 - see above
        log.exception("policy evaluation of host %s failed after its snapshot applied", host.hostname)


class _ApplyFailed(Exception):
    def __init__(self, snapshot_id: int, error: str):
        super().__init__(error)
        self.snapshot_id, self.error = snapshot_id, error


# Database trouble: retried (the apply is idempotent), up to FLEET_APPLY_MAX_ATTEMPTS. Anything else an apply
# raises means this document cannot be applied (a bug to look at, not a reason to retry): the snapshot fails.
_TRANSIENT = (OperationalError, InterfaceError)


def pending_batch(host: Host, snapshot_id: int, seq: int) -> QuerySet[Snapshot]:
    """The snapshots to apply now, oldest first: for seq > 0 every pending one up to this seq."""
    pending = Snapshot.objects.filter(status=Snapshot.Status.RECEIVED)
    if seq == 0:
        return pending.filter(pk=snapshot_id)
    # Through the partial index ingest_snapshot_pending_idx: only the host's few pending rows, however long its history.
    return pending.filter(host=host, seq__gt=0, seq__lte=seq).order_by("seq")


def _mark(item: Snapshot, status: str, error: str = "") -> None:
    Snapshot.objects.filter(pk=item.pk).update(status=status, processed_at=timezone.now(), error=error)
    item.status = status


def _host_locked_for(snapshot_id: int) -> Host | None:
    """The snapshot's host, row-locked, with the snapshot's seq as `snapshot_seq`.

    One host's snapshots apply one at a time, whatever worker holds them. The transaction commits
    without waiting for the WAL flush: the snapshot itself was committed durably when received, and if
    this commit is lost its status is lost with it, so it is still `received` and the sweeper re-applies it.
    """
    commit_without_wal_wait()
    return (Host.objects.select_for_update(of=("self",)).filter(snapshots__id=snapshot_id)
            .annotate(snapshot_seq=F("snapshots__seq")).order_by().first())


def _host_activate(host: Host) -> None:
    """A pending host's first applied snapshot completes its enrollment: recorded in the audit log."""
    Host.objects.filter(pk=host.pk).update(enrollment=Host.Enrollment.ACTIVE)
    audit_record(action="host.update", subject=f"host {host.hostname}",
                 before={"enrollment": host.enrollment}, after={"enrollment": Host.Enrollment.ACTIVE.value})
    host.enrollment = Host.Enrollment.ACTIVE


def _apply_one(host: Host, item: Snapshot) -> StateReplaced:
    document = orjson.loads(item.document_bytes())
    replaced = host_state_replace(host=host, document=document, snapshot_id=item.pk, seq=item.seq, at=item.received_at,
                                  content_hash=item.content_hash)
    if host.enrollment == Host.Enrollment.PENDING:
        _host_activate(host)
    return replaced


def _failure_text(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:2000]


@transaction.atomic
def _snapshot_apply_locked(*, snapshot_id: int) -> str:
    host = _host_locked_for(snapshot_id)
    if host is None:
        return "missing"
    batch = list(pending_batch(host, snapshot_id, host.snapshot_seq))
    if snapshot_id not in {item.pk for item in batch}:
        return Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).get()
    replaced = None
    for item in batch:
        if item.seq > 0 and host.applied_seq is not None and item.seq <= host.applied_seq:
            _mark(item, Snapshot.Status.SUPERSEDED)
            continue
        if len(batch) == 1:
            # The usual case: no savepoint (two round trips). A failure leaves the whole transaction,
            # and snapshot_apply marks the snapshot failed in a fresh one.
            try:
                replaced = _apply_one(host, item)
            except _TRANSIENT:
                raise
            except Exception as exc:  # noqa: BLE001 - see _TRANSIENT
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                raise _ApplyFailed(item.pk, _failure_text(exc)) from exc
        else:
            try:
                with transaction.atomic():
                    replaced = _apply_one(host, item)
            except _TRANSIENT:
                raise
            except SoftTimeLimitExceeded as exc:  # no time left for the rest of the batch
                raise _ApplyFailed(item.pk, _failure_text(exc)) from exc
            except Exception as exc:  # noqa: BLE001 - see _TRANSIENT
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                host.refresh_from_db()  # the failed apply may have set attributes it did not save
                _mark(item, Snapshot.Status.FAILED, _failure_text(exc))
                continue
        _mark(item, Snapshot.Status.APPLIED)
        replaced_id = item.pk
    if replaced is not None:
        _policy_sync(host, replaced, replaced_id)
    return next(item.status for item in batch if item.pk == snapshot_id)


def _snapshot_mark_failed(*, snapshot_id: int, error: str) -> str:
    """Record a failed apply (after its transaction rolled back), unless another worker settled it meanwhile.

    Without the host's lock: the apply that failed may have failed waiting for it (a soft time limit),
    and the status condition is enough (a worker applying it holds the snapshot's row until it commits)."""
    marked = Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RECEIVED).update(
        status=Snapshot.Status.FAILED, processed_at=timezone.now(), error=error)
    if marked:
        log.error("snapshot %s marked failed: %s", snapshot_id, error[:300])
        return Snapshot.Status.FAILED
    return Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).first() or "missing"
