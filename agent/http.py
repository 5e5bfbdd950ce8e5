"""The agent's HTTP client: one POST per connection to the fleet server, TLS verified, through an
HTTP CONNECT proxy when asked, the bearer token re-read from its file every time, and every request
bounded by one overall deadline.

Stdlib only (the agent installs with psutil alone). The contract with the server is
`POST /api/v1/snapshots` (gzip JSON, bearer token) and `POST /api/v1/heartbeat`
(`{"content_hash", "seq"}`); what an answer means for the spool is `agent.push`'s business.
"""
from __future__ import annotations

import base64
import heapq
import http.client
import itertools
import json
import logging
import os
import socket
import ssl
import stat
import threading
import time
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from urllib.parse import unquote, urlsplit
from urllib.request import getproxies_environment, proxy_bypass_environment

from . import __version__
from .integers import parse_int

log = logging.getLogger("agent.http")

USER_AGENT = f"fleet-agent/{__version__}"
SNAPSHOTS_PATH = "/api/v1/snapshots"
HEARTBEAT_PATH = "/api/v1/heartbeat"
DEFAULT_DEADLINE = 30.0
# The answer is a small JSON object; never read more than this from a server.
MAX_RESPONSE_BYTES = 64 * 1024
# A Retry-After longer than this is treated as a misconfigured server, not obeyed for days.
MAX_RETRY_AFTER = 3600.0
_LOOPBACK = ("127.0.0.1", "localhost", "::1")


class TokenFileError(Exception):
    """The token file is missing, empty or readable by others."""


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
    seconds = parse_int(value, signed=True)
    if seconds is None:
        try:
            seconds = parsedate_to_datetime(value.strip()).timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
    return min(max(float(seconds), 0.0), MAX_RETRY_AFTER)


@dataclass
class Response:
    status: int | None            # None: no HTTP answer at all
    body: bytes = b""
    retry_after: float | None = None
    error: str | None = None      # why there was no answer
    token_problem: bool = False   # the token file could not be used; nothing was sent
    location: str | None = None   # where a 3xx pointed

    def json(self) -> object:
        try:
            return json.loads(self.body.decode("utf-8", "replace"))
        except (ValueError, RecursionError):  # a hostile server's `[[[[…` must not stop the loop
            return None

    def describe(self) -> str:
        if self.status is None:
            return f"no answer ({self.error})"
        return f"HTTP {self.status}"


@dataclass(frozen=True)
class Proxy:
    host: str
    port: int
    headers: dict


def parse_proxy(url: str) -> Proxy:
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
    parts = urlsplit(server)
    host = parts.hostname or ""
    if host in ("localhost", "::1") or host.startswith("127."):
        return None
    proxies = getproxies_environment()
    url = proxies.get(parts.scheme)
    if not url or proxy_bypass_environment(host, proxies):
        return None
    return url


class _Watchdog:
    """One daemon thread for all of a process's requests: expires each deadline when its time comes.
    (A timer thread per request cost a thread start per request, which a thousand concurrent
    clients in tests/ops/test_burst.py paid for.)"""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._due: list[tuple[float, int, Deadline]] = []
        self._count = itertools.count()
        self._thread: threading.Thread | None = None

    def add(self, deadline: Deadline) -> None:
        with self._cond:
            heapq.heappush(self._due, (deadline.at, next(self._count), deadline))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="fleet-agent request deadlines", daemon=True)
                self._thread.start()
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._due or self._due[0][0] > time.monotonic():
                    self._cond.wait(self._due[0][0] - time.monotonic() if self._due else None)
                _at, _n, deadline = heapq.heappop(self._due)
            deadline.expire()


_WATCHDOG = _Watchdog()


class Deadline:
    """One request's overall deadline. http.client's timeout bounds each socket operation only, so a
    server trickling a byte per timeout held `fleet-agent run` forever (issue 10 item 10). When the
    deadline passes, the connection's socket is shut down, whatever the request is doing then
    (proxy CONNECT, TLS handshake, sending, reading): the blocked call returns at once. Name
    resolution before the connect is bounded by the system resolver only."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.at = time.monotonic() + seconds
        self._lock = threading.Lock()
        self._watched: list[socket.socket] = []
        self._closed = False
        self.passed = False
        _WATCHDOG.add(self)

    def remaining(self) -> float:
        return max(0.001, self.at - time.monotonic())

    @property
    def over(self) -> bool:
        """Passed, whether the socket was shut down or a socket timeout (never longer than what
        remained) tripped first."""
        return self.passed or time.monotonic() >= self.at

    def watch(self, sock: socket.socket) -> None:
        # A duplicate descriptor of the same socket: TLS wrapping detaches the original, and ours
        # stays open until close(), so a shutdown can never reach a descriptor reused meanwhile.
        with self._lock:
            self._watched.append(sock.dup())
            if self.passed:
                self._shut()

    def expire(self) -> None:
        with self._lock:
            if not self._closed:
                self.passed = True
                self._shut()

    def _shut(self) -> None:
        for sock in self._watched:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by the peer

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for sock in self._watched:
                sock.close()
            self._watched.clear()


class Client:
    """One request per connection over http.client: redirects are not followed (a POST must not
    silently turn into a GET elsewhere) and TLS is verified unless the operator said otherwise.
    `timeout` is each request's overall deadline, connect to last byte of the answer."""

    def __init__(self, server: str, *, token_file: str | os.PathLike, context: ssl.SSLContext | None = None,
                 timeout: float = DEFAULT_DEADLINE, proxy: str | None = None) -> None:
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
        self.proxy = parse_proxy(proxy) if proxy else None
        if self.scheme == "http" and self.host not in _LOOPBACK:
            log.warning("server %s is plain http: the token and snapshots cross the network unencrypted", server)

    def _connection(self, deadline: Deadline) -> http.client.HTTPConnection:
        host, port = (self.proxy.host, self.proxy.port) if self.proxy else (self.host, self.port)
        if self.scheme == "https":
            # Through a proxy too, TLS runs end to end and the certificate is checked against self.host.
            conn = http.client.HTTPSConnection(host, port, timeout=deadline.remaining(),
                                               context=self.context or ssl.create_default_context())
        else:
            conn = http.client.HTTPConnection(host, port, timeout=deadline.remaining())
        if self.proxy:
            conn.set_tunnel(self.host, self.port or (443 if self.scheme == "https" else 80), headers=self.proxy.headers)

        def connect(address, _timeout, source_address):
            sock = socket.create_connection(address, deadline.remaining(), source_address)
            deadline.watch(sock)
            return sock

        # http.client's hook for opening the TCP connection, before any proxy CONNECT or TLS handshake.
        conn._create_connection = connect
        return conn

    def post(self, path: str, body: bytes, *, headers: dict[str, str]) -> Response:
        try:
            # Re-read every time: a rotated token is picked up without restarting the agent.
            token = read_token(self.token_file)
        except TokenFileError as exc:
            return Response(None, error=str(exc), token_problem=True)
        deadline = Deadline(self.timeout)
        conn = self._connection(deadline)
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
            if deadline.passed:  # the answer was cut short: its end may be missing
                raise TimeoutError
            return Response(resp.status, data, parse_retry_after(resp.getheader("Retry-After")),
                            location=resp.getheader("Location"))
        except ssl.SSLCertVerificationError as exc:
            return Response(None, error=f"TLS certificate not trusted: {exc.verify_message or exc}")
        except (OSError, http.client.HTTPException) as exc:
            if deadline.over:
                return Response(None, error=f"no complete answer within the {self.timeout:g}s request deadline")
            return Response(None, error=f"{exc.__class__.__name__}: {exc}")
        finally:
            deadline.close()
            conn.close()

    def send_snapshot(self, gzip_body: bytes) -> Response:
        return self.post(SNAPSHOTS_PATH, gzip_body,
                         headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    def heartbeat(self, *, content_hash: str, seq: int) -> Response:
        body = json.dumps({"content_hash": content_hash, "seq": seq}).encode()
        return self.post(HEARTBEAT_PATH, body, headers={"Content-Type": "application/json"})
