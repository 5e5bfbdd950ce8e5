"""Receiving agent reports: authenticate, bound, parse, validate, recognise or store, hand the id on.

- `host_authenticate(token) -> (host, refusal)`: the view calls it before reading a snapshot's body.
- `snapshot_receive(*, host, body, content_encoding, remote_addr=None, queue=None) -> ReceiveResult`:
  one HTTP push from an authenticated agent (limits, parse, validate, dedupe, store).
- `heartbeat_receive(*, token, body, content_encoding, remote_addr=None) -> ReceiveResult`:
  `{"content_hash": …, "seq": n}`; 200 when the server has that state, 409 when the agent must send it.
- `snapshot_receive_document(*, host, document, remote_addr=None, queue=None) -> ReceiveResult`:
  trusted in-process callers (import_capture, the demo): same validation and storage, no token.
  The hostname in the document is not checked against `host` (callers may rename a capture).

`queue` is called with a stored snapshot's id once its transaction commits (`tasks.snapshot_queue_apply`
hands it to the apply task); without one the snapshot waits, `received`, for the caller to apply it or
for the sweeper to queue it.

Answers (`ReceiveResult.http_status`, body): 202 `{"id", "status": "received"}` stored (and queued);
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
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import orjson
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Q
from django.utils import timezone

from agent.snapshot import canonical_json, content_hash
from fleet.inventory.models import Host
from fleet.inventory.rows import document_collected_at

from ..bodies import BodyTooLarge, BodyUnreadable, body_decode
from ..models import HostToken, Snapshot
from ..statements import commit_without_wal_wait, heartbeat_seen
from ..tokens import token_hash
from ..validation import document_problems, seq_problem, text_problems

log = logging.getLogger(__name__)

# Refreshing last_used_at on every push would double the writes of the unchanged fast path.
TOKEN_TOUCH_EVERY = timedelta(minutes=1)
# The unchanged heartbeat (one a minute per host) refreshes it more rarely still.
HEARTBEAT_TOKEN_TOUCH_EVERY = timedelta(minutes=15)
HEARTBEAT_MAX_BYTES = 4096
_HEX64 = re.compile(r"[0-9a-f]{64}")

Queue = Callable[[int], object]


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


def token_malformed(token: str | None) -> ReceiveResult | None:
    """The 401 for a token no host can have (absent, over-long, not printable ASCII), without touching the database."""
    if not token or len(token) > 200 or not token.isascii() or not token.isprintable():
        return ReceiveResult.problem(401, "missing or malformed bearer token")
    return None


def host_authenticate(token: str | None) -> tuple[Host | None, ReceiveResult | None]:
    """The host a bearer token belongs to, or the 401 to answer."""
    refusal = token_malformed(token)
    if refusal:
        return None, refusal
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


def snapshot_receive(
    *, host: Host, body: bytes, content_encoding: str | None, remote_addr: str | None = None, queue: Queue | None = None
) -> ReceiveResult:
    """One push of an authenticated agent (`host_authenticate`): bound, parse, validate, check identity, then
    store (or recognise) it."""
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
    return _store(host=host, doc=doc, raw=raw, remote_addr=remote_addr, queue=queue)


def snapshot_receive_document(*, host: Host, document: dict, remote_addr: str | None = None, queue: Queue | None = None) -> ReceiveResult:
    """A document from a trusted in-process caller: validated and stored exactly like a pushed one."""
    problems = document_problems(document)
    if problems:
        return ReceiveResult.problems(400, problems)
    raw = canonical_json(document)
    problems = text_problems(document, raw)
    if problems:
        return ReceiveResult.problems(400, problems)
    return _store(host=host, doc=document, raw=raw, remote_addr=remote_addr, queue=queue)


def heartbeat_receive(*, token: str | None, body: bytes, content_encoding: str | None, remote_addr: str | None = None) -> ReceiveResult:
    """`{"content_hash", "seq"}` from an agent whose state did not change: 200 if we hold that state, else 409.

    The common case is one statement (`_heartbeat_seen`): the UPDATE of last_seen finds the host
    through the (unrevoked) token and the current hash together. Anything else takes the full path.
    """
    refusal = token_malformed(token)
    if refusal:
        return refusal
    raw, refusal = _decode(body, content_encoding, HEARTBEAT_MAX_BYTES, HEARTBEAT_MAX_BYTES)
    if refusal is None:
        doc, refusal = _parse(raw)
    if refusal is None:
        # Strictly 64 lowercase hex (what content_hash writes) before the digest goes near SQL: a NUL in it made
        # PostgreSQL raise, and the request a 500.
        digest = doc.get("content_hash") if isinstance(doc, dict) else None
        seq = doc.get("seq", 0) if isinstance(doc, dict) else None
        if not isinstance(digest, str) or not _HEX64.fullmatch(digest) or seq_problem(seq):
            refusal = ReceiveResult.problem(400, 'a heartbeat is {"content_hash": "<64 lowercase hex>", "seq": <int 0..2^53-1>}')
    if refusal is not None:
        # Say 401 rather than 400 to a client that is not even authenticated.
        _host, auth_refusal = host_authenticate(token)
        return auth_refusal or refusal
    now = timezone.now()
    if _heartbeat_seen(token_digest=token_hash(token), content_digest=digest, now=now):
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


def _heartbeat_seen(*, token_digest: str, content_digest: str, now: datetime) -> bool:
    """last_seen of the unrevoked token's host if it holds that state, and the token's last_used_at when older
    than HEARTBEAT_TOKEN_TOUCH_EVERY; True when the host was found so. One SQL statement on PostgreSQL."""
    touch_before = now - HEARTBEAT_TOKEN_TOUCH_EVERY
    if connection.vendor == "postgresql":
        return heartbeat_seen(token_digest=token_digest, content_digest=content_digest, now=now, touch_before=touch_before)
    return _heartbeat_seen_orm(token_digest=token_digest, content_digest=content_digest, now=now, touch_before=touch_before)


def _heartbeat_seen_orm(*, token_digest: str, content_digest: str, now: datetime, touch_before: datetime) -> bool:
    """What `statements.heartbeat_seen` does, in two ORM statements: the reference, and the path on SQLite."""
    token = HostToken.objects.filter(token_hash=token_digest, revoked_at__isnull=True)
    token.filter(Q(last_used_at__isnull=True) | Q(last_used_at__lt=touch_before)).update(last_used_at=now)
    hosts = Host.objects.filter(pk__in=token.values("host_id"), content_hash=content_digest).exclude(enrollment=Host.Enrollment.RETIRED)
    return hosts.update(last_seen=now, stale=False) > 0


def _store(*, host: Host, doc: dict, raw: bytes, remote_addr: str | None, queue: Queue | None) -> ReceiveResult:
    try:
        return _store_once(host=host, doc=doc, raw=raw, remote_addr=remote_addr, queue=queue)
    except IntegrityError:
        # A concurrent push of the same (host, seq) won the insert: it is now a duplicate.
        return _store_once(host=host, doc=doc, raw=raw, remote_addr=remote_addr, queue=queue)


def _host_seen(host: Host, seen: dict) -> None:
    """Move last_seen for a push that stores nothing new, without waiting for the WAL flush."""
    commit_without_wal_wait()
    Host.objects.filter(pk=host.pk).update(**seen)


@transaction.atomic
def _store_once(*, host: Host, doc: dict, raw: bytes, remote_addr: str | None, queue: Queue | None) -> ReceiveResult:
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
    if queue is not None:
        transaction.on_commit(lambda: queue(snapshot_id))
    return ReceiveResult(202, {"id": snapshot_id, "status": "received"})
