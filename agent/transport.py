"""The agent's push loop: collect every interval, send what changed, heartbeat otherwise.

Stdlib only (the agent installs with psutil alone). The contract with the server is
`POST /api/v1/snapshots` (gzip JSON, bearer token) and `POST /api/v1/heartbeat`
(`{"content_hash", "seq"}`; 409 means "send the full snapshot").

Every changed snapshot is written to the on-disk spool *before* it is sent and
deleted only after a 2xx: a crash, a kill -9 or a power cut between collecting and
delivering loses nothing, and replay in seq order is the one delivery path.
"""
from __future__ import annotations

import argparse
import base64
import enum
import gzip
import http.client
import json
import logging
import os
import random
import signal
import ssl
import stat
import threading
import time
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Callable
from urllib.parse import unquote, urlsplit

from . import __version__
from .paths import Root
from .spool import DEFAULT_MAX_BYTES, DEFAULT_MAX_FILES, Entry, Spool, SpoolLocked

log = logging.getLogger("agent.transport")

USER_AGENT = f"fleet-agent/{__version__}"
SNAPSHOTS_PATH = "/api/v1/snapshots"
HEARTBEAT_PATH = "/api/v1/heartbeat"
DEFAULT_SPOOL_DIR = "/var/lib/fleet-agent/spool"
# The answer is a small JSON object; never read more than this from a server.
MAX_RESPONSE_BYTES = 64 * 1024
# A Retry-After longer than this is treated as a misconfigured server, not obeyed for days.
MAX_RETRY_AFTER = 3600.0

EXIT_OK = 0
EXIT_UNDELIVERED = 1
EXIT_USAGE = 2


class TokenFileError(Exception):
    """The token file is missing, empty or readable by others."""


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


def read_token(path: str | os.PathLike) -> str:
    """The bearer token, refusing a file that group or others can read (issue 6)."""
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text()
    except OSError as exc:
        raise TokenFileError(f"cannot read token file {p}: {exc.strerror or exc}") from None
    if st.st_mode & 0o077:
        raise TokenFileError(
            f"token file {p} has mode {stat.S_IMODE(st.st_mode):04o}; it must not be readable by group or "
            f"others (chmod 600 {p})")
    token = text.strip()
    if not token:
        raise TokenFileError(f"token file {p} is empty")
    if any(c.isspace() or not c.isprintable() for c in token):
        raise TokenFileError(f"token file {p} holds more than one token-like word")
    return token


def ssl_context(*, ca_file: str | None, insecure: bool, client_cert: str | None = None,
                client_key: str | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=ca_file)
    if client_cert:  # mTLS: a proxy in front of the server may require the host to prove itself too
        ctx.load_cert_chain(client_cert, client_key)
    if insecure:
        log.warning("--insecure: NOT verifying the server's TLS certificate; anyone on the path can read the "
                    "token and forge answers. Use --ca-file instead.")
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent/garbled."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        seconds = when - (time.time() if now is None else now)
    if seconds != seconds:  # NaN
        return None
    return min(max(seconds, 0.0), MAX_RETRY_AFTER)


@dataclass
class Response:
    status: int | None            # None: no HTTP answer at all
    body: bytes = b""
    retry_after: float | None = None
    error: str | None = None      # why there was no answer
    token_problem: bool = False   # the token file could not be used; nothing was sent
    location: str | None = None   # where a 3xx pointed

    @property
    def outcome(self) -> Outcome:
        return Outcome.AUTH if self.token_problem else classify(self.status)

    def json(self) -> object:
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except ValueError:
            return None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}"


class Client:
    """One request per connection over http.client: redirects are not followed (a POST must not
    silently turn into a GET elsewhere) and TLS is verified unless the operator said otherwise."""

    def __init__(self, server: str, *, token_file: str | os.PathLike, context: ssl.SSLContext | None = None,
                 timeout: float = 30.0, proxy: str | None = None) -> None:
        parts = urlsplit(server)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"--server must be an http(s) URL, got {server!r}")
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port
        self.prefix = parts.path.rstrip("/")
        self.base_url = server
        self.token_file = token_file
        self.context = context
        self.timeout = timeout
        self.proxy = _parse_proxy(proxy) if proxy else None
        if self.scheme == "http" and self.host not in ("127.0.0.1", "localhost", "::1"):
            log.warning("server %s is plain http: the token and snapshots cross the network unencrypted", server)

    def _connection(self) -> http.client.HTTPConnection:
        host, port = (self.proxy.host, self.proxy.port) if self.proxy else (self.host, self.port)
        if self.scheme == "https":
            # Through a proxy too, TLS runs end to end and the certificate is checked against self.host.
            conn = http.client.HTTPSConnection(host, port, timeout=self.timeout,
                                               context=self.context or ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=self.timeout)
        if self.proxy:
            conn.set_tunnel(self.host, self.port or (443 if self.scheme == "https" else 80), headers=self.proxy.headers)
        return conn

    def post(self, path: str, body: bytes, *, headers: dict[str, str]) -> Response:
        try:
            # Re-read every time: a rotated token is picked up without restarting the agent.
            token = read_token(self.token_file)
        except TokenFileError as exc:
            return Response(None, error=str(exc), token_problem=True)
        conn = self._connection()
        try:
            conn.request("POST", self.prefix + path, body=body, headers={
                "Authorization": f"Bearer {token}",
                "User-Agent": USER_AGENT,
                "Accept": "application/json",
                "Content-Length": str(len(body)),
                **headers,
            })
            resp = conn.getresponse()
            data = resp.read(MAX_RESPONSE_BYTES)
            return Response(resp.status, data, parse_retry_after(resp.getheader("Retry-After")),
                            location=resp.getheader("Location"))
        except ssl.SSLCertVerificationError as exc:
            return Response(None, error=f"TLS certificate not trusted: {exc.verify_message or exc}")
        except (OSError, http.client.HTTPException) as exc:
            return Response(None, error=f"{exc.__class__.__name__}: {exc}")
        finally:
            conn.close()

    def send_snapshot(self, gzip_body: bytes) -> Response:
        return self.post(SNAPSHOTS_PATH, gzip_body,
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    def heartbeat(self, *, content_hash: str, seq: int) -> Response:
        body = json.dumps({"content_hash": content_hash, "seq": seq}).encode()
        return self.post(HEARTBEAT_PATH, body, headers={"Content-Type": "application/json"})


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    headers: dict


def _parse_proxy(url: str) -> Proxy:
    parts = urlsplit(url if "://" in url else f"http://{url}")
    if parts.scheme != "http" or not parts.hostname:
        raise ValueError(f"--proxy must be an http:// proxy URL (HTTP CONNECT), got {url!r}")
    headers = {}
    if parts.username is not None:
        creds = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
        headers["Proxy-Authorization"] = "Basic " + base64.b64encode(creds).decode()
    return Proxy(parts.hostname, parts.port or 80, headers)


def proxy_from_environment(server: str) -> str | None:
    """The proxy curl and pip would use for `server` (https_proxy/http_proxy, minus no_proxy);
    never for a loopback server, which no proxy can reach on our behalf."""
    from urllib.request import getproxies_environment, proxy_bypass_environment

    parts = urlsplit(server)
    host = parts.hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        return None
    proxies = getproxies_environment()
    url = proxies.get(parts.scheme)
    if not url or proxy_bypass_environment(host, proxies):
        return None
    return url


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
    from .snapshot import to_json

    # mtime=0: the same document always compresses to the same bytes.
    return gzip.compress(to_json(doc).encode("utf-8"), mtime=0)


def _default_collect(root: Root, seq: int) -> dict:
    from .snapshot import build

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
        from .snapshot import content_hash

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
    def _fail(self, outcome: Outcome, resp: Response, what: str) -> None:
        self.last_failure = outcome
        if outcome is Outcome.AUTH:
            delay = self.backoff.next_delay(at_least=self.config.auth_retry)
            detail = resp.json()
            log.error("server refused the token for %s (%s%s); check or rotate the token file %s. "
                      "Snapshots stay spooled; next try in %.0fs",
                      what, resp.describe(), f": {detail}" if detail else "", self.client.token_file, delay)
        elif outcome is Outcome.MISCONFIGURED:
            delay = self.backoff.next_delay(at_least=self.config.auth_retry)
            where = f" to {resp.location}" if resp.location else ""
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
        outcome = resp.outcome
        if outcome is Outcome.DELIVERED:
            answer = resp.json()
            self.spool.delete(entry)
            self.spool.set_accepted_hash(entry.content_hash)
            ident = answer.get("id") if isinstance(answer, dict) else None
            status = answer.get("status") if isinstance(answer, dict) else None
            log.info("delivered seq=%d: HTTP %d%s%s", entry.seq, resp.status,
                     f" id={ident}" if ident is not None else "", f" status={status}" if status else "")
            return True
        if outcome is Outcome.REJECTED:
            answer = resp.json()
            errors = answer.get("errors", answer) if isinstance(answer, dict) else resp.body[:2000].decode("utf-8", "replace")
            kept = self.spool.reject(entry, status=resp.status or 0, errors=errors)
            log.error("server rejected seq=%d with HTTP %s: %s; dropped from the queue, kept in %s",
                      entry.seq, resp.status, json.dumps(errors, default=str)[:1000], kept)
            return True
        self._fail(outcome, resp, f"seq={entry.seq}")
        return False

    def _send_heartbeat(self) -> bool:
        assert self.heartbeat_due is not None
        seq, digest, body = self.heartbeat_due
        resp = self.client.heartbeat(content_hash=digest, seq=seq)
        if resp.outcome is Outcome.DELIVERED:
            self.heartbeat_due = None
            log.debug("heartbeat seq=%d accepted", seq)
            return True
        if resp.status in (404, 409, 410) or resp.outcome is Outcome.REJECTED:
            # The server does not hold this state (409), has no heartbeat endpoint or does not like
            # this heartbeat: the full snapshot is always a valid answer.
            log.info("heartbeat seq=%d answered HTTP %d: sending the full snapshot", seq, resp.status)
            self.heartbeat_due = None
            self.spool.set_accepted_hash(None)
            self.spool.put(seq=seq, content_hash=digest, body=body)
            return self.flush()
        self._fail(resp.outcome, resp, f"heartbeat seq={seq}")
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


# --- command line (wired into `fleet-agent run` by agent/__main__.py) -------------------------
def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be > 0")
    return value


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be >= 1")
    return value


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--server", required=True, help="base URL of the fleet server, e.g. https://fleet.example.net")
    parser.add_argument("--token-file", required=True,
                        help="file holding this host's token (mode 0600; `manage.py host_token create HOST`)")
    parser.add_argument("--interval", type=_positive_float, default=60.0, help="seconds between collections (60)")
    parser.add_argument("--ca-file", help="PEM bundle to verify the server's certificate with (default: system CAs)")
    parser.add_argument("--insecure", action="store_true", help="do not verify the server's TLS certificate (unsafe)")
    parser.add_argument("--client-cert", help="PEM client certificate for mutual TLS (optional; key inside or --client-key)")
    parser.add_argument("--client-key", help="PEM private key of --client-cert")
    parser.add_argument("--proxy", help="HTTP CONNECT proxy URL, http://[user:pass@]host:port "
                        "(default: https_proxy/http_proxy from the environment, honouring no_proxy)")
    parser.add_argument("--root", default="/", help="filesystem root to read (/ on a live host, or a captured tree)")
    parser.add_argument("--spool-dir", default=os.environ.get("FLEET_AGENT_SPOOL_DIR", DEFAULT_SPOOL_DIR),
                        help=f"where undelivered snapshots and the sequence counter live ({DEFAULT_SPOOL_DIR})")
    parser.add_argument("--spool-max", type=_positive_int, default=DEFAULT_MAX_FILES,
                        help=f"most snapshots kept while the server is unreachable; the oldest go first ({DEFAULT_MAX_FILES})")
    parser.add_argument("--spool-max-bytes", type=_positive_int, default=DEFAULT_MAX_BYTES,
                        help=f"most bytes kept in the spool ({DEFAULT_MAX_BYTES})")
    parser.add_argument("--once", action="store_true", help="collect and deliver once, then exit (1 if left spooled)")
    parser.add_argument("--max-iterations", type=_positive_int, help="stop after this many collections")
    parser.add_argument("--drain-timeout", type=float, default=0.0,
                        help="with --once/--max-iterations: keep retrying the spool this many seconds before exiting")
    parser.add_argument("--timeout", type=_positive_float, default=30.0, help="seconds per HTTP request (30)")
    parser.add_argument("--backoff-base", type=_positive_float, default=1.0, help="first retry delay ceiling, seconds (1)")
    parser.add_argument("--backoff-max", type=_positive_float, default=300.0, help="largest retry delay, seconds (300)")
    parser.add_argument("--auth-retry", type=_positive_float, default=300.0,
                        help="seconds to wait after the server refused the token (300)")


def _configure_logging() -> None:
    root = logging.getLogger()
    if not root.handlers:
        logging.basicConfig(level=os.environ.get("FLEET_AGENT_LOG_LEVEL", "INFO"),
                            format="%(asctime)s %(levelname)s fleet-agent: %(message)s")


def run_command(args: argparse.Namespace) -> int:
    """`fleet-agent run`: returns the process exit code (0 all delivered, 1 left spooled, 2 usage)."""
    _configure_logging()
    try:
        read_token(args.token_file)
        context = None
        if args.server.startswith("https:"):
            try:
                context = ssl_context(ca_file=args.ca_file, insecure=args.insecure,
                                      client_cert=args.client_cert, client_key=args.client_key)
            except (OSError, ssl.SSLError) as exc:  # ssl.SSLError is an OSError too
                raise ValueError(f"cannot load the TLS files (--ca-file/--client-cert/--client-key): "
                                 f"{exc.strerror or exc}") from None
        proxy = args.proxy or proxy_from_environment(args.server)
        client = Client(args.server, token_file=args.token_file, timeout=args.timeout, context=context, proxy=proxy)
        spool = Spool(args.spool_dir, max_files=args.spool_max, max_bytes=args.spool_max_bytes)
        spool.lock()
    except (TokenFileError, ValueError, SpoolLocked) as exc:
        log.error("%s", exc)
        return EXIT_USAGE
    except OSError as exc:
        log.error("cannot use spool directory %s: %s", args.spool_dir, exc.strerror or exc)
        return EXIT_USAGE

    stop = threading.Event()

    def on_signal(signum, _frame):
        log.info("%s received: stopping after the current send", signal.Signals(signum).name)
        stop.set()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

    config = LoopConfig(root=Root.of(args.root), interval=args.interval, once=args.once,
                        max_iterations=args.max_iterations, drain_timeout=args.drain_timeout,
                        auth_retry=args.auth_retry)
    pusher = Pusher(config, spool=spool, client=client, stop=stop,
                    backoff=Backoff(base=args.backoff_base, cap=args.backoff_max))
    pending = len(spool.pending())
    log.info("starting: server %s%s, root %s, interval %gs, spool %s (%d pending, next seq %d)",
             args.server, f" via proxy {client.proxy.host}:{client.proxy.port}" if client.proxy else "",
             config.root.base, args.interval, spool.dir, pending, spool.seq + 1)
    try:
        return pusher.run()
    finally:
        spool.unlock()


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry (`python -m agent.transport`) until `fleet-agent run` is wired."""
    parser = argparse.ArgumentParser(prog="fleet-agent run", description=__doc__.splitlines()[0])
    add_run_arguments(parser)
    return run_command(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
