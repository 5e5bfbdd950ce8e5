"""Applying stored snapshots: one host at a time (row lock), pending ones in seq order, policy in the same transaction.

`snapshot_apply(snapshot_id=…)` is what the apply task runs; it is idempotent (a re-run of a settled
snapshot only reads its status) and returns the snapshot's status afterwards.
"""
from __future__ import annotations

import logging
import orjson
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, transaction
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
    try:
        return _snapshot_apply_locked(snapshot_id=snapshot_id)
    except _ApplyFailed as failed:  # raised out of the apply's transaction, which rolled back
        return _snapshot_mark_failed(snapshot_id=failed.snapshot_id, error=failed.error)


def _policy_sync(host: Host, replaced: StateReplaced) -> None:
    """Evaluate policy on the state just written, inside the apply's transaction.

    Inside, not after: the violations commit with the state they describe (a lost commit loses both
    and the sweeper re-applies), without a WAL flush of their own to wait for, and the policy reads
    nothing back.
    A policy bug must not undo or block the apply: its own savepoint rolls back and it is logged;
    the host's next snapshot or a fleet sync evaluates it again.
    """
    try:
        policy_services.violations_sync_for_host(host=host, state=replaced.state(host))
    except (OperationalError, InterfaceError):
        raise  # database trouble: the task retries the whole (idempotent) apply
    except Exception:  # noqa: BLE001 - see above
        log.exception("policy evaluation of host %s failed after its snapshot applied", host.hostname)


class _ApplyFailed(Exception):
    def __init__(self, snapshot_id: int, error: str):
        super().__init__(error)
        self.snapshot_id, self.error = snapshot_id, error


# The document passed validation but cannot be applied: a bug to look at, not a reason to retry.
# (orjson.JSONDecodeError is a ValueError.)
_APPLY_ERRORS = (ValueError, TypeError, KeyError, AttributeError, DataError, IntegrityError)


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
            except _APPLY_ERRORS as exc:
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                raise _ApplyFailed(item.pk, _failure_text(exc)) from exc
        else:
            try:
                with transaction.atomic():
                    replaced = _apply_one(host, item)
            except _APPLY_ERRORS as exc:
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                host.refresh_from_db()  # the failed apply may have set attributes it did not save
                _mark(item, Snapshot.Status.FAILED, _failure_text(exc))
                continue
        _mark(item, Snapshot.Status.APPLIED)
    if replaced is not None:
        _policy_sync(host, replaced)
    return next(item.status for item in batch if item.pk == snapshot_id)


@transaction.atomic
def _snapshot_mark_failed(*, snapshot_id: int, error: str) -> str:
    """Record a failed apply (after its transaction rolled back), unless another worker settled it meanwhile."""
    host = _host_locked_for(snapshot_id)
    if host is None:
        return "missing"
    marked = Snapshot.objects.filter(pk=snapshot_id, status=Snapshot.Status.RECEIVED).update(
        status=Snapshot.Status.FAILED, processed_at=timezone.now(), error=error)
    return Snapshot.Status.FAILED if marked else Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).get()
