"""The agent's push loop: collect every interval, send what changed, heartbeat otherwise; what each
answer means for the spool (outcome), and how long to wait after a failure (backoff).

Every changed snapshot is written to the on-disk spool *before* it is sent and deleted only after
a 2xx: a crash, a kill -9 or a power cut between collecting and delivering loses nothing, and
replay in seq order is the one delivery path. A heartbeat (`{"content_hash", "seq"}`) stands for an
unchanged collection; 409 means "send the full snapshot".
"""
from __future__ import annotations

import enum
import gzip
import json
import logging
import random
import signal
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

from .http import Client, Response
from .paths import Root
from .snapshot import build, content_hash, to_json
from .spool import Entry, Spool
from .terminal import clean

log = logging.getLogger("agent.push")

EXIT_OK = 0
EXIT_UNDELIVERED = 1


class Outcome(enum.Enum):
    DELIVERED = "delivered"    # 2xx: the server has it
    REJECTED = "rejected"      # 400/413/422: this document is refused; resending it cannot help
    AUTH = "auth"              # 401/403 or an unusable token file: fixed by an operator (rotation)
    MISCONFIGURED = "misconfigured"  # 3xx, 404, 405, other 4xx: wrong --server URL or a proxy in the way
    RETRY = "retry"            # unreachable, timeout, TLS failure, 408, 429, 5xx


# Only answers about the document itself drop it; a wrong URL answering 404 for every snapshot must
# not empty the spool into rejected/, so those are held like a refused token until someone fixes it.
REJECTING_STATUSES = frozenset({400, 413, 422})


def classify(status: int | None) -> Outcome:
    if status is None:
        return Outcome.RETRY
    if 200 <= status < 300:
        return Outcome.DELIVERED
    if status in (401, 403):
        return Outcome.AUTH
    if status in (408, 429) or status >= 500:
        return Outcome.RETRY
    if status in REJECTING_STATUSES:
        return Outcome.REJECTED
    return Outcome.MISCONFIGURED


def outcome(resp: Response) -> Outcome:
    return Outcome.AUTH if resp.token_problem else classify(resp.status)


@dataclass
class Backoff:
    """Exponential backoff with full jitter (delay uniform in [0, min(cap, base·2ⁿ)]), reset on success."""

    base: float = 1.0
    cap: float = 300.0
    rng: random.Random = field(default_factory=random.Random)
    failures: int = 0

    def next_delay(self, *, at_least: float = 0.0) -> float:
        ceiling = min(self.cap, self.base * (2 ** min(self.failures, 32)))
        self.failures += 1
        return max(at_least, self.rng.uniform(0, ceiling))

    def reset(self) -> None:
        self.failures = 0


@dataclass
class LoopConfig:
    root: Root
    interval: float = 60.0
    once: bool = False
    max_iterations: int | None = None
    # After the last collection (--once, --max-iterations), keep retrying the spool this long.
    drain_timeout: float = 0.0
    # How long to leave a server alone that refuses our token: an operator has to act first.
    auth_retry: float = 300.0


def snapshot_body(doc: dict) -> bytes:
    # mtime=0: the same document always compresses to the same bytes.
    return gzip.compress(to_json(doc).encode("utf-8"), mtime=0)


def _default_collect(root: Root, seq: int) -> dict:
    return build(root, seq=seq)


class Pusher:
    """The loop. Plain object so tests drive it in a thread against a real HTTP peer."""

    def __init__(self, config: LoopConfig, *, spool: Spool, client: Client, backoff: Backoff | None = None,
                 stop: threading.Event | None = None,
                 collect: Callable[[Root, int], dict] = _default_collect,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.config = config
        self.spool = spool
        self.client = client
        self.backoff = backoff or Backoff()
        self.stop = stop or threading.Event()
        self.collect = collect
        self.clock = clock
        self.next_attempt = 0.0
        # (seq, hash, body) of the newest collection when it equals what the server already has.
        self.heartbeat_due: tuple[int, str, bytes] | None = None
        self.last_failure: Outcome | None = None

    # --- one collection ------------------------------------------------------------
    def collect_once(self) -> None:
        seq = self.spool.next_seq()
        started = self.clock()
        doc = self.collect(self.config.root, seq)
        digest = content_hash(doc)
        body = snapshot_body(doc)
        pending = self.spool.pending()
        newest_known = pending[-1].content_hash if pending else self.spool.accepted_hash
        took = self.clock() - started
        if digest == newest_known:
            if pending:
                log.info("collected seq=%d unchanged (%d devices, %.2fs); %d snapshot(s) still spooled",
                         seq, len(doc.get("devices") or []), took, len(pending))
                self.heartbeat_due = None
            else:
                log.info("collected seq=%d unchanged (%d devices, %.2fs): heartbeat", seq,
                         len(doc.get("devices") or []), took)
                self.heartbeat_due = (seq, digest, body)
            return
        self.heartbeat_due = None
        self.spool.put(seq=seq, content_hash=digest, body=body)
        log.info("collected seq=%d changed hash=%s (%d devices, %d warnings, %.2fs, %d bytes gzip): spooled for sending",
                 seq, digest[:12], len(doc.get("devices") or []), len(doc.get("warnings") or []), took, len(body))

    # --- delivery ---------------------------------------------------------------------
    def _fail(self, result: Outcome, resp: Response, what: str) -> None:
        self.last_failure = result
        if result is Outcome.AUTH:
            delay = self.backoff.next_delay(at_least=self.config.auth_retry)
            answer = resp.json()
            detail = clean(answer)[:500] if answer else ""  # the server's words reach a terminal
            log.error("server refused the token for %s (%s%s); check or rotate the token file %s. "
                      "Snapshots stay spooled; next try in %.0fs",
                      what, resp.describe(), f": {detail}" if detail else "", self.client.token_file, delay)
        elif result is Outcome.MISCONFIGURED:
            delay = self.backoff.next_delay(at_least=self.config.auth_retry)
            where = f" to {clean(resp.location)[:500]}" if resp.location else ""
            log.error("server answered %s%s for %s: is --server %s the fleet server's base URL? "
                      "Snapshots stay spooled; next try in %.0fs", resp.describe(), where, what,
                      self.client.base_url, delay)
        else:
            delay = self.backoff.next_delay(at_least=resp.retry_after or 0.0)
            pending = len(self.spool.pending())
            log.warning("%s not delivered: %s%s; %d snapshot(s) spooled, next try in %.1fs", what,
                        resp.describe(), f" (Retry-After {resp.retry_after:g}s)" if resp.retry_after is not None else "",
                        pending, delay)
        self.next_attempt = self.clock() + delay

    def _send_entry(self, entry: Entry) -> bool:
        resp = self.client.send_snapshot(entry.body())
        result = outcome(resp)
        if result is Outcome.DELIVERED:
            answer = resp.json()
            self.spool.delete(entry)
            self.spool.set_accepted_hash(entry.content_hash)
            ident = answer.get("id") if isinstance(answer, dict) else None
            status = answer.get("status") if isinstance(answer, dict) else None
            log.info("delivered seq=%d: HTTP %d%s%s", entry.seq, resp.status,
                     f" id={clean(ident)[:40]}" if ident is not None else "",
                     f" status={clean(status)[:40]}" if status else "")
            return True
        if result is Outcome.REJECTED:
            answer = resp.json()
            errors = answer.get("errors", answer) if isinstance(answer, dict) else resp.body[:2000].decode("utf-8", "replace")
            kept = self.spool.reject(entry, status=resp.status or 0, errors=errors)
            log.error("server rejected seq=%d with HTTP %s: %s; dropped from the queue, kept in %s",
                      entry.seq, resp.status, json.dumps(errors, default=str)[:1000], kept)
            return True
        self._fail(result, resp, f"seq={entry.seq}")
        return False

    def _send_heartbeat(self) -> bool:
        assert self.heartbeat_due is not None
        seq, digest, body = self.heartbeat_due
        resp = self.client.heartbeat(content_hash=digest, seq=seq)
        if outcome(resp) is Outcome.DELIVERED:
            self.heartbeat_due = None
            log.debug("heartbeat seq=%d accepted", seq)
            return True
        if resp.status in (404, 409, 410) or outcome(resp) is Outcome.REJECTED:
            # The server does not hold this state (409), has no heartbeat endpoint or does not like
            # this heartbeat: the full snapshot is always a valid answer.
            log.info("heartbeat seq=%d answered HTTP %d: sending the full snapshot", seq, resp.status)
            self.heartbeat_due = None
            self.spool.set_accepted_hash(None)
            self.spool.put(seq=seq, content_hash=digest, body=body)
            return self.flush()
        self._fail(outcome(resp), resp, f"heartbeat seq={seq}")
        return False

    def flush(self) -> bool:
        """Replay the spool in seq order, then the heartbeat; stop at the first transient failure."""
        for entry in self.spool.pending():
            if not self._send_entry(entry):
                return False
            if self.stop.is_set() and self.spool.pending():
                log.info("stopping with %d snapshot(s) spooled; they are replayed on the next start",
                         len(self.spool.pending()))
                return False
        if self.heartbeat_due is not None and not self._send_heartbeat():
            return False
        self.backoff.reset()
        self.last_failure = None
        self.next_attempt = 0.0
        return True

    def has_work(self) -> bool:
        return bool(self.heartbeat_due) or bool(self.spool.pending())

    # --- the loop ------------------------------------------------------------------------
    def run(self) -> int:
        cfg = self.config
        limit = 1 if cfg.once else cfg.max_iterations
        iterations = 0
        next_collect = self.clock()
        while not self.stop.is_set():
            if self.clock() >= next_collect and (limit is None or iterations < limit):
                try:
                    self.collect_once()
                except OSError as exc:
                    # Spool disk full or unwritable: this state is collected again next interval.
                    log.error("could not spool the snapshot in %s: %s", self.spool.dir, exc.strerror or exc)
                iterations += 1
                next_collect = max(next_collect + cfg.interval, self.clock())
            if self.has_work() and self.clock() >= self.next_attempt:
                self.flush()
            if limit is not None and iterations >= limit:
                break
            wake = next_collect
            if self.has_work():
                wake = min(wake, self.next_attempt)
            self.stop.wait(max(0.0, wake - self.clock()))
        if not self.stop.is_set() and cfg.drain_timeout > 0:
            deadline = self.clock() + cfg.drain_timeout
            while self.has_work() and not self.stop.is_set() and self.clock() < deadline:
                self.stop.wait(max(0.0, min(self.next_attempt, deadline) - self.clock()))
                if self.clock() >= self.next_attempt and not self.stop.is_set():
                    self.flush()
        left = len(self.spool.pending())
        if left or self.heartbeat_due:
            log.warning("exiting with %d snapshot(s) spooled in %s", left, self.spool.dir)
            return EXIT_UNDELIVERED
        return EXIT_OK


def serve(pusher: Pusher) -> int:
    """Run the loop until it ends or SIGTERM/SIGINT asks it to stop after the current send; the spool
    is locked by the caller and unlocked here."""
    def on_signal(signum, _frame):
        log.info("%s received: stopping after the current send", signal.Signals(signum).name)
        pusher.stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)
    client, config, spool = pusher.client, pusher.config, pusher.spool
    log.info("starting: server %s%s, root %s, interval %gs, spool %s (%d pending, next seq %d)",
             client.base_url, f" via proxy {client.proxy.host}:{client.proxy.port}" if client.proxy else "",
             config.root.base, config.interval, spool.dir, len(spool.pending()), spool.seq + 1)
    try:
        return pusher.run()
    finally:
        spool.unlock()
