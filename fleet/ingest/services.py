"""Ingest decisions as plain functions; the API views and Celery tasks are thin adapters over these.

Entry points other apps call:
- `snapshot_receive(*, token, body, content_encoding, remote_addr=None) -> ReceiveResult`:
  one HTTP push from an agent (the whole decision: auth, limits, parse, validate, dedupe, store).
- `heartbeat_receive(*, token, body, content_encoding, remote_addr=None) -> ReceiveResult`:
  `{"content_hash": …, "seq": n}`; 200 when the server has that state, 409 when the agent must send it.
- `snapshot_receive_document(*, host: Host, document: dict, remote_addr=None) -> ReceiveResult`:
  trusted in-process callers (import_capture, the demo): same validation, storage and task path, no token.
  The hostname in the document is not checked against `host` (callers may rename a capture).
- `snapshot_queue_apply(*, snapshot_id) -> bool`: hand a stored id to the apply task (False when the broker is down).
- `snapshot_apply(*, snapshot_id: int) -> str`: what the apply task runs.
- `snapshots_requeue_stuck(*, older_than_seconds) -> list[int]`, `hosts_mark_stale(*, now=None) -> int`: the sweeper.
- `host_token_create / host_token_revoke / host_token_rotate`: the token lifecycle.

Answers (`ReceiveResult.http_status`, body): 202 `{"id", "status": "received"}` stored and queued;
200 `{"id", "status": "duplicate"}` same (host, seq), or same content as the latest stored one while it
is pending; 200 `{"id", "status": "unchanged"}` equal to the applied state with nothing pending (only
last_seen moves); 400/413/415 `{"errors": [{"path", "message"}…]}`; 401 bad token; 403 identity mismatch.

Sequence numbers: seq > 0 orders a host's snapshots; a late one is recorded `superseded`.
seq 0 (one-shot collects, imports) carries no order and applies in arrival order.
Rejected input is never stored (status `rejected` exists for completeness and is not written).
"""
from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache

import orjson
from django.conf import settings
from django.db import DataError, IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.utils import timezone

from agent.snapshot import canonical_json, content_hash
from fleet.inventory.models import Host, Label
from fleet.inventory.rows import document_collected_at
from fleet.inventory.services import AppliedDocument, host_apply_document
from fleet.sqlrows import fetch_models, model_columns

from .bodies import BodyTooLarge, BodyUnreadable, body_decode
from .models import HostToken, Snapshot
from .tokens import token_generate, token_hash
from .validation import document_problems, text_problems

log = logging.getLogger(__name__)

# Refreshing last_used_at on every push would double the writes of the unchanged fast path.
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
# The unchanged heartbeat (one a minute per host) refreshes it more rarely still.
HEARTBEAT_TOKEN_TOUCH_EVERY = timedelta(minutes=15)
HEARTBEAT_MAX_BYTES = 4096
# Publishing to a broker that is down: give up fast (the sweeper re-queues), do not hold the agent's request.
PUBLISH_RETRY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}


@dataclass(frozen=True)
class ReceiveResult:
    """What to answer: an HTTP status and a JSON-able body."""

    http_status: int
    body: dict = field(default_factory=dict)

    @classmethod
    def problems(cls, http_status: int, errors: list[dict]) -> "ReceiveResult":
        return cls(http_status, {"errors": errors})

    @classmethod
    def problem(cls, http_status: int, message: str, path: str = "$") -> "ReceiveResult":
        return cls(http_status, {"errors": [{"path": path, "message": message}]})


# --- tokens -------------------------------------------------------------------------------------


def host_authenticate(token: str | None) -> tuple[Host | None, ReceiveResult | None]:
    """The host a bearer token belongs to, or the 401 to answer."""
    if not token or len(token) > 200:
        return None, ReceiveResult.problem(401, "missing or malformed bearer token")
    digest = token_hash(token)
    row = HostToken.objects.select_related("host").filter(token_hash=digest).first()
    # The lookup is by hash already; compare_digest keeps the final check constant-time regardless.
    if row is None or not hmac.compare_digest(row.token_hash, digest) or row.revoked_at is not None:
        return None, ReceiveResult.problem(401, "unknown or revoked token")
    if row.host.enrollment == Host.Enrollment.RETIRED:
        return None, ReceiveResult.problem(403, "host is retired")
    now = timezone.now()
    if row.last_used_at is None or now - row.last_used_at > TOKEN_TOUCH_EVERY:
        HostToken.objects.filter(pk=row.pk).update(last_used_at=now)
    return row.host, None


@transaction.atomic
def host_token_create(*, hostname: str, role: str | None = None, labels: list[str] | None = None) -> tuple[Host, str]:
    """A new token for `hostname` (creating the host, pending enrollment). The secret is returned, never stored."""
    host, _ = Host.objects.get_or_create(hostname=hostname)
    if role is not None:
        host.role = role
        host.save(update_fields=["role"])
    for name in labels or []:
        label, _ = Label.objects.get_or_create(name=name)
        host.labels.add(label)
    secret = token_generate()
    HostToken.objects.create(host=host, token_hash=token_hash(secret))
    return host, secret


@transaction.atomic
def host_token_revoke(*, hostname: str) -> int:
    """Revoke every active token of the host; returns how many."""
    tokens = list(HostToken.objects.select_for_update().filter(host__hostname=hostname, revoked_at__isnull=True))
    for token in tokens:  # save(), not update(): the audit log (fleet.accounts) records each revocation from post_save
        token.revoked_at = timezone.now()
        token.save(update_fields=["revoked_at"])
    return len(tokens)


@transaction.atomic
def host_token_rotate(*, hostname: str) -> str:
    host = Host.objects.get(hostname=hostname)
    host_token_revoke(hostname=hostname)
    secret = token_generate()
    HostToken.objects.create(host=host, token_hash=token_hash(secret))
    return secret


# --- receiving ----------------------------------------------------------------------------------


def _decode(body: bytes, content_encoding: str | None, max_body: int, max_document: int) -> tuple[bytes, ReceiveResult | None]:
    try:
        return body_decode(body, content_encoding, max_body=max_body, max_document=max_document), None
    except BodyTooLarge as exc:
        return b"", ReceiveResult.problem(413, str(exc))
    except BodyUnreadable as exc:
        return b"", ReceiveResult.problem(exc.http_status, str(exc))


def _parse(raw: bytes) -> tuple[object, ReceiveResult | None]:
    # orjson here and in the apply task: one parser, so what was accepted is what gets applied. It is also
    # stricter than json (no NaN/Infinity, no lone surrogates, nesting capped at 1024).
    try:
        return orjson.loads(raw), None
    except orjson.JSONDecodeError as exc:
        return None, ReceiveResult.problem(400, f"body is not JSON: {str(exc)[:200]}")


def snapshot_receive(*, token: str | None, body: bytes, content_encoding: str | None, remote_addr: str | None = None) -> ReceiveResult:
    """One agent push: authenticate, bound, parse, validate, check identity, then store (or recognise) it."""
    host, refusal = host_authenticate(token)
    if refusal:
        return refusal
    raw, refusal = _decode(body, content_encoding, settings.FLEET_MAX_BODY_BYTES, settings.FLEET_MAX_SNAPSHOT_BYTES)
    if refusal:
        return refusal
    doc, refusal = _parse(raw)
    if refusal:
        return refusal
    problems = document_problems(doc) or text_problems(doc, raw)
    if problems:
        return ReceiveResult.problems(400, problems)
    facts = doc["host"]
    if facts.get("hostname") != host.hostname:
        return ReceiveResult.problem(403, "hostname does not match the token's host", "$.host.hostname")
    machine_id = facts.get("machine_id")
    if host.machine_id and machine_id != host.machine_id:
        return ReceiveResult.problem(403, "machine id does not match the token's host", "$.host.machine_id")
    return _store(host=host, doc=doc, raw=raw, remote_addr=remote_addr)


def snapshot_receive_document(*, host: Host, document: dict, remote_addr: str | None = None) -> ReceiveResult:
    """A document from a trusted in-process caller: validated and stored exactly like a pushed one."""
    raw = canonical_json(document)
    problems = document_problems(document) or text_problems(document, raw)
    if problems:
        return ReceiveResult.problems(400, problems)
    return _store(host=host, doc=document, raw=raw, remote_addr=remote_addr)


def heartbeat_receive(*, token: str | None, body: bytes, content_encoding: str | None, remote_addr: str | None = None) -> ReceiveResult:
    """`{"content_hash", "seq"}` from an agent whose state did not change: 200 if we hold that state, else 409.

    The common case is one statement: the UPDATE of last_seen finds the host through the
    (unrevoked) token and the current hash together, and refreshes the token's last_used_at
    when it is older than HEARTBEAT_TOKEN_TOUCH_EVERY. Anything else takes the full path.
    """
    if not token or len(token) > 200:
        return ReceiveResult.problem(401, "missing or malformed bearer token")
    raw, refusal = _decode(body, content_encoding, HEARTBEAT_MAX_BYTES, HEARTBEAT_MAX_BYTES)
    if refusal is None:
        doc, refusal = _parse(raw)
    if refusal is None:
        digest = doc.get("content_hash") if isinstance(doc, dict) else None
        seq = doc.get("seq", 0) if isinstance(doc, dict) else None
        if not isinstance(digest, str) or len(digest) != 64 or not isinstance(seq, int) or isinstance(seq, bool):
            refusal = ReceiveResult.problem(400, 'a heartbeat is {"content_hash": "<64 hex>", "seq": <int>}')
    if refusal is not None:
        # Say 401 rather than 400 to a client that is not even authenticated.
        _host, auth_refusal = host_authenticate(token)
        return auth_refusal or refusal
    now = timezone.now()
    if _heartbeat_touch(token_digest=token_hash(token), content_digest=digest, now=now):
        return ReceiveResult(200, {"status": "unchanged"})
    host, refusal = host_authenticate(token)
    if refusal:
        return refusal
    if Host.objects.filter(pk=host.pk, content_hash=digest).update(last_seen=now, stale=False):
        return ReceiveResult(200, {"status": "unchanged", "id": host.applied_snapshot_id})
    latest = Snapshot.objects.filter(host=host).only("id", "content_hash", "status").order_by("-id").first()
    if latest is not None and latest.content_hash == digest and latest.status == Snapshot.Status.RECEIVED:
        Host.objects.filter(pk=host.pk).update(last_seen=now, stale=False)
        return ReceiveResult(200, {"status": "unchanged", "id": latest.pk})
    return ReceiveResult(409, {"status": "unknown", "errors": [{"path": "$.content_hash", "message": "the server does not hold this state; send the full snapshot"}]})


@lru_cache(maxsize=None)
def _heartbeat_touch_sql(vendor: str) -> tuple[str, ...]:
    """The heartbeat's statements: one on PostgreSQL (the token's refresh as a data-modifying CTE), two elsewhere."""
    qn = connection.ops.quote_name
    host, token = Host._meta, HostToken._meta
    column = lambda meta, name: qn(meta.get_field(name).column)  # noqa: E731
    seen = (
        f"UPDATE {qn(host.db_table)} SET {column(host, 'last_seen')} = %s, {column(host, 'stale')} = %s "
        f"WHERE {column(host, 'content_hash')} = %s AND {column(host, 'enrollment')} <> %s AND {qn(host.pk.column)} IN "
        f"(SELECT {column(token, 'host')} FROM {qn(token.db_table)} WHERE {column(token, 'token_hash')} = %s "
        f"AND {column(token, 'revoked_at')} IS NULL)"
    )
    used = (
        f"UPDATE {qn(token.db_table)} SET {column(token, 'last_used_at')} = %s WHERE {column(token, 'token_hash')} = %s "
        f"AND {column(token, 'revoked_at')} IS NULL AND ({column(token, 'last_used_at')} IS NULL OR {column(token, 'last_used_at')} < %s)"
    )
    if vendor == "postgresql":
        # A lost last_seen is harmless (the next heartbeat sets it): skip the WAL flush this one-statement
        # transaction would otherwise wait for.
        return (f"WITH used AS ({used} RETURNING 1) {seen} RETURNING set_config('synchronous_commit', 'off', true)",)
    return used, seen


def _heartbeat_touch(*, token_digest: str, content_digest: str, now: datetime) -> bool:
    """The unchanged heartbeat's one statement: last_seen of the unrevoked token's host, if it holds that state,
    and the token's last_used_at when older than HEARTBEAT_TOKEN_TOUCH_EVERY.

    Written as SQL once: building the same UPDATE through the ORM (a join, an exclude) took
    ~0.7 ms of the ~1.5 ms a heartbeat costs in process.
    """
    at = connection.ops.adapt_datetimefield_value(now)
    used = [at, token_digest, connection.ops.adapt_datetimefield_value(now - HEARTBEAT_TOKEN_TOUCH_EVERY)]
    seen = [at, False, content_digest, Host.Enrollment.RETIRED.value, token_digest]
    statements = _heartbeat_touch_sql(connection.vendor)
    with connection.cursor() as cursor:
        if len(statements) == 1:
            cursor.execute(statements[0], used + seen)
            return cursor.rowcount > 0
        cursor.execute(statements[0], used)
        cursor.execute(statements[1], seen)
        return cursor.rowcount > 0


def _store(*, host: Host, doc: dict, raw: bytes, remote_addr: str | None) -> ReceiveResult:
    try:
        return _store_once(host=host, doc=doc, raw=raw, remote_addr=remote_addr)
    except IntegrityError:
        # A concurrent push of the same (host, seq) won the insert: it is now a duplicate.
        return _store_once(host=host, doc=doc, raw=raw, remote_addr=remote_addr)


def snapshot_queue_apply(*, snapshot_id: int) -> bool:
    """Hand a stored snapshot's id to the apply task; False (logged) when the broker cannot take it.

    A broker outage must not turn an accepted, committed snapshot into an error for the agent:
    the row stays `received` and the sweeper queues it again once the broker is back.
    """
    from .tasks import apply_snapshot  # tasks import services

    try:
        apply_snapshot.apply_async((snapshot_id,), retry=True, retry_policy=PUBLISH_RETRY)
    except Exception as exc:  # noqa: BLE001 - kombu/redis raise many types; every one means "not queued"
        log.warning("snapshot %s stored but not queued (%s: %s); the sweeper will queue it", snapshot_id, exc.__class__.__name__, exc)
        return False
    return True


def _host_seen(host: Host, seen: dict) -> None:
    """Move last_seen for a push that stores nothing new; like the heartbeat's, without waiting for the WAL flush."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config('synchronous_commit', 'off', true)")
    Host.objects.filter(pk=host.pk).update(**seen)


@transaction.atomic
def _store_once(*, host: Host, doc: dict, raw: bytes, remote_addr: str | None) -> ReceiveResult:
    now = timezone.now()
    seq = doc["seq"]
    digest = content_hash(doc)
    seen = {"last_seen": now, "stale": False}
    if seq > 0:
        same_seq = Snapshot.objects.filter(host=host, seq=seq).only("id", "status").first()
        if same_seq is not None:
            _host_seen(host, seen)
            return ReceiveResult(200, {"id": same_seq.pk, "status": "duplicate"})
    # Only the latest stored snapshot counts as "the same": A → B → A must apply A again.
    latest = Snapshot.objects.filter(host=host).only("id", "content_hash", "status").order_by("-id").first()
    pending = latest is not None and latest.status == Snapshot.Status.RECEIVED
    # The applied hash is read after `latest`, never from the Host the caller authenticated earlier: an
    # apply committing in between would otherwise pair the old applied hash with a no-longer-pending
    # latest, and a real change back to the old state (A, B pending, then A) would be dropped as
    # "unchanged" while B gets applied (seen in the e2e outage test under load).
    applied_hash, applied_id = Host.objects.filter(pk=host.pk).values_list("content_hash", "applied_snapshot_id").get()
    if applied_hash == digest and not pending:
        _host_seen(host, seen)
        return ReceiveResult(200, {"id": applied_id, "status": "unchanged"})
    if latest is not None and latest.content_hash == digest and latest.status in (Snapshot.Status.RECEIVED, Snapshot.Status.FAILED):
        _host_seen(host, seen)
        return ReceiveResult(200, {"id": latest.pk, "status": "duplicate"})
    updates = dict(seen)
    machine_id = doc["host"].get("machine_id")
    if not host.machine_id and machine_id:
        updates["machine_id"] = machine_id
    snapshot = Snapshot.objects.create(
        host=host, raw=Snapshot.compress(raw), size=len(raw), content_hash=digest, seq=seq,
        collected_at=document_collected_at(doc), received_at=now, status=Snapshot.Status.RECEIVED, remote_addr=remote_addr,
    )
    Host.objects.filter(pk=host.pk).update(**updates)
    snapshot_id = snapshot.pk
    transaction.on_commit(lambda: snapshot_queue_apply(snapshot_id=snapshot_id))
    return ReceiveResult(202, {"id": snapshot_id, "status": "received"})


# --- applying -----------------------------------------------------------------------------------


def snapshot_apply(*, snapshot_id: int) -> str:
    """Apply a stored snapshot (and any older pending ones of its host, in seq order); idempotent.

    Returns the snapshot's status afterwards. Policy is evaluated in the same transaction (`_policy_sync`).
    """
    try:
        return _snapshot_apply_locked(snapshot_id=snapshot_id)
    except _ApplyFailed as failed:  # raised out of the apply's transaction, which rolled back
        return _snapshot_mark_failed(snapshot_id=failed.snapshot_id, error=failed.error)


def _policy_sync(host: Host, applied: AppliedDocument) -> None:
    """Evaluate policy on the state just written, inside the apply's transaction.

    Inside, not after: the violations commit with the state they describe (a lost commit loses both
    and the sweeper re-applies), the commit skips the WAL flush like the apply's (a separate
    transaction waited for one: several ms per task), and the policy reads nothing back.
    A policy bug must not undo or block the apply: its own savepoint rolls back and it is logged;
    the host's next snapshot or a fleet sync evaluates it again.
    """
    from fleet.policy.services import violations_sync_for_host

    try:
        violations_sync_for_host(host=host, state=applied.state(host))
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


def _pending_batch(host: Host, snapshot_id: int, seq: int) -> list[Snapshot]:
    """The snapshots to apply now, oldest first: for seq > 0 every pending one up to this seq."""
    sql = _apply_sql(connection.vendor)
    if seq == 0:
        return fetch_models(Snapshot, sql.batch_one, [Snapshot.Status.RECEIVED, snapshot_id])
    return fetch_models(Snapshot, sql.batch_upto, [host.pk, seq])


def _mark(item: Snapshot, status: str, error: str = "") -> None:
    processed_at = connection.ops.adapt_datetimefield_value(timezone.now())  # what the ORM's update() stores
    with connection.cursor() as cursor:
        cursor.execute(_apply_sql(connection.vendor).mark, [status, processed_at, error, item.pk])
    item.status = status


def _host_locked_for(snapshot_id: int) -> Host | None:
    """The snapshot's host, row-locked, with the snapshot's seq as `_snapshot_seq`: one statement.

    One host's snapshots apply one at a time, whatever worker holds them. On PostgreSQL the same
    statement turns synchronous_commit off for this transaction: the snapshot itself was committed
    durably when received, and if this commit is lost its status is lost with it, so it is still
    `received` and the sweeper re-applies it.
    """
    found = fetch_models(Host, _apply_sql(connection.vendor).host_lock, [snapshot_id], extra=("_snapshot_seq",))
    return found[0] if found else None


@dataclass(frozen=True)
class _ApplySQL:
    host_lock: str
    batch_one: str
    batch_upto: str
    mark: str


@lru_cache(maxsize=None)
def _apply_sql(vendor: str) -> _ApplySQL:
    """The apply's own statements (lock, batch, status) as raw SQL, built once per vendor.

    The ORM built them anew on every task (join, annotations, select_for_update): ~1.2 ms of a changed
    480-device apply's ~19 ms, for statements whose text never changes. Their rows become instances
    through `fleet.sqlrows` (RawQuerySet resolved columns and converters on every query: ~0.6 ms more).
    """
    q = connection.ops.quote_name
    hosts, snapshots = q(Host._meta.db_table), q(Snapshot._meta.db_table)
    host_columns = model_columns(Host, alias="h")
    snapshot_columns = model_columns(Snapshot)
    if vendor == "postgresql":
        commit_off, lock = ", set_config('synchronous_commit', 'off', true) AS _commit", " FOR UPDATE OF h"
    else:  # no row locks (SQLite serialises writers itself)
        commit_off, lock = "", ""
    return _ApplySQL(
        host_lock=(f"SELECT {host_columns}, s.{q('seq')} AS _snapshot_seq{commit_off} FROM {hosts} h "
                   f"INNER JOIN {snapshots} s ON s.{q('host_id')} = h.{q('id')} WHERE s.{q('id')} = %s{lock}"),
        batch_one=f"SELECT {snapshot_columns} FROM {snapshots} WHERE {q('status')} = %s AND {q('id')} = %s",
        # The status as a literal: the planner matches it to the partial index ingest_snapshot_pending_idx.
        batch_upto=(f"SELECT {snapshot_columns} FROM {snapshots} WHERE {q('status')} = '{Snapshot.Status.RECEIVED.value}' "
                    f"AND {q('host_id')} = %s AND {q('seq')} > 0 AND {q('seq')} <= %s ORDER BY {q('seq')}"),
        mark=f"UPDATE {snapshots} SET {q('status')} = %s, {q('processed_at')} = %s, {q('error')} = %s WHERE {q('id')} = %s",
    )


def _apply_one(host: Host, item: Snapshot) -> AppliedDocument:
    document = orjson.loads(item.document_bytes())
    return host_apply_document(host=host, document=document, snapshot_id=item.pk, seq=item.seq, at=item.received_at, content_hash=item.content_hash)


def _failure_text(exc: Exception) -> str:
    return f"{exc.__class__.__name__}: {exc}"[:2000]


@transaction.atomic
def _snapshot_apply_locked(*, snapshot_id: int) -> str:
    host = _host_locked_for(snapshot_id)
    if host is None:
        return "missing"
    batch = _pending_batch(host, snapshot_id, host._snapshot_seq)
    if snapshot_id not in {item.pk for item in batch}:
        return Snapshot.objects.filter(pk=snapshot_id).values_list("status", flat=True).get()
    applied = None
    for item in batch:
        if item.seq > 0 and host.applied_seq is not None and item.seq <= host.applied_seq:
            _mark(item, Snapshot.Status.SUPERSEDED)
            continue
        if len(batch) == 1:
            # The usual case: no savepoint (two round trips). A failure leaves the whole transaction,
            # and snapshot_apply marks the snapshot failed in a fresh one.
            try:
                applied = _apply_one(host, item)
            except _APPLY_ERRORS as exc:
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                raise _ApplyFailed(item.pk, _failure_text(exc)) from exc
        else:
            try:
                with transaction.atomic():
                    applied = _apply_one(host, item)
            except _APPLY_ERRORS as exc:
                log.exception("snapshot %s of host %s failed to apply", item.pk, host.hostname)
                host.refresh_from_db()  # the failed apply may have set attributes it did not save
                _mark(item, Snapshot.Status.FAILED, _failure_text(exc))
                continue
        _mark(item, Snapshot.Status.APPLIED)
    if applied is not None:
        _policy_sync(host, applied)
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


# --- sweeping -----------------------------------------------------------------------------------


def snapshots_requeue_stuck(*, older_than_seconds: int, limit: int = 1000) -> list[int]:
    """Queue again the snapshots still `received` after `older_than_seconds` (lost task, broker or worker)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(
        Snapshot.objects.filter(status=Snapshot.Status.RECEIVED, received_at__lt=cutoff).order_by("received_at").values_list("id", flat=True)[:limit]
    )
    for snapshot_id in ids:
        if not snapshot_queue_apply(snapshot_id=snapshot_id):
            break  # broker still down: the next sweep tries again
    if ids:
        log.warning("re-queued %d snapshots left unprocessed for more than %ss", len(ids), older_than_seconds)
    return ids


def hosts_mark_stale(*, now: datetime | None = None) -> int:
    """Mark stale every reporting host silent for FLEET_STALE_AFTER_INTERVALS × FLEET_REPORT_INTERVAL."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.FLEET_STALE_AFTER_INTERVALS * settings.FLEET_REPORT_INTERVAL)
    return Host.objects.filter(stale=False, last_seen__lt=cutoff).exclude(enrollment=Host.Enrollment.RETIRED).update(stale=True)


__all__ = [
    "ReceiveResult", "heartbeat_receive", "host_authenticate", "host_token_create", "host_token_revoke", "host_token_rotate",
    "hosts_mark_stale", "snapshot_apply", "snapshot_receive", "snapshot_receive_document", "snapshots_requeue_stuck",
]
