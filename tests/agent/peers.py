"""A real HTTP peer on loopback for the agent's client and push loop: a thread running http.server that
records every request and answers what the test scripts, an HTTP CONNECT proxy, a self-signed
certificate. The peer stands in for the server's contract (docs/snapshot.md, issue 3); the loop,
the spool and the HTTP client under test are the real ones."""
import gzip
import json
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent.http import Client
from agent.paths import Root
from agent.push import Backoff, LoopConfig, Pusher
from agent.snapshot import build
from agent.spool import Spool
from tests.e2e.rebind import flip_driver

TOKEN = "host-token-abc123"


@dataclass
class Seen:
    at: float
    path: str
    headers: dict
    raw: bytes

    @property
    def doc(self) -> dict:
        data = gzip.decompress(self.raw) if self.headers.get("content-encoding") == "gzip" else self.raw
        return json.loads(data)


@dataclass
class Peer:
    """A loopback HTTP(S) server: answers from `script` (a list of (status, headers, body)), then `default`."""

    script: list = field(default_factory=list)
    default: tuple = (202, {}, {"id": 1, "status": "received"})
    heartbeat: tuple = (200, {}, {"status": "ok"})
    tls: ssl.SSLContext | None = None
    token: str | None = None  # when set, any other bearer token is answered 401
    seen: list = field(default_factory=list)

    def __post_init__(self):
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                peer.seen.append(Seen(time.monotonic(), self.path, {k.lower(): v for k, v in self.headers.items()}, raw))
                if peer.token and self.headers.get("Authorization") != f"Bearer {peer.token}":
                    status, headers, body = 401, {}, {"errors": [{"message": "unknown or revoked token"}]}
                elif self.path.endswith("/heartbeat") and not peer.script:
                    status, headers, body = peer.heartbeat
                else:
                    status, headers, body = peer.script.pop(0) if peer.script else peer.default
                data = json.dumps(body).encode()
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        if self.tls:
            self.httpd.socket = self.tls.wrap_socket(self.httpd.socket, server_side=True)
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.httpd.server_address[1]}"

    def snapshots(self) -> list[Seen]:
        return [s for s in self.seen if s.path == "/api/v1/snapshots"]

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def changing(root: Path):
    """A collector whose every collection differs from the previous one (a driver flip each time)."""

    def collect(r: Root, seq: int) -> dict:
        flip_driver(root)
        return build(r, seq=seq)

    return collect


def make_pusher(tmp_path, url, root, token_file, *, collect=None, spool_max=1000, client_kw=None, **config) -> Pusher:
    config.setdefault("interval", 0.05)
    kw = {"collect": collect} if collect else {}
    return Pusher(LoopConfig(root=Root.of(root), **config),
                  spool=Spool(tmp_path / "spool", max_files=spool_max),
                  client=Client(url, token_file=token_file, **(client_kw or {})),
                  backoff=Backoff(base=0.05, cap=0.1), **kw)


def self_signed(tmp_path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


class ConnectProxy:
    """A loopback HTTP CONNECT proxy (what squid does for HTTPS): records each CONNECT and relays bytes."""

    def __init__(self):
        self.connects: list[tuple[str, dict]] = []
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                head = b""
                while b"\r\n\r\n" not in head:
                    chunk = self.request.recv(4096)
                    if not chunk:
                        return
                    head += chunk
                lines = head.split(b"\r\n\r\n")[0].decode().split("\r\n")
                headers = dict(line.split(": ", 1) for line in lines[1:])
                proxy.connects.append((lines[0], headers))
                host, port = lines[0].split()[1].rsplit(":", 1)
                with socket.create_connection((host, int(port))) as upstream:
                    self.request.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                    socks = [self.request, upstream]
                    while True:
                        ready, _, _ = select.select(socks, [], [], 5)
                        if not ready:
                            return
                        for sock in ready:
                            data = sock.recv(65536)
                            if not data:
                                return
                            (upstream if sock is self.request else self.request).sendall(data)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class Trickler:
    """A loopback TCP server that reads a request, then sends `answer` one byte every `every` seconds
    and, once it is out, keeps sending `tail` bytes the same way until closed: a server (or a
    middlebox) that answers slower than any per-read timeout would notice."""

    def __init__(self, answer: bytes, *, every: float = 0.1, tail: bytes = b"") -> None:
        self.stop = threading.Event()
        self.connections = 0
        trickler = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                trickler.connections += 1
                self.request.settimeout(5)
                try:
                    self.request.recv(65536)  # the request (its first part is enough)
                    out = answer
                    while not trickler.stop.is_set():
                        if not out:
                            if not tail:
                                return
                            out = tail
                        self.request.sendall(out[:1])
                        out = out[1:]
                        trickler.stop.wait(every)
                except OSError:
                    return  # the client gave up

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()


class SlowRelay:
    """A loopback TCP relay in front of `upstream` (host, port) that passes the client's bytes at once
    and the upstream's back one every `every` seconds: here a real TLS server whose handshake crawls."""

    def __init__(self, upstream: tuple[str, int], *, every: float = 0.05) -> None:
        self.stop = threading.Event()
        relay = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self):
                with socket.create_connection(upstream) as up:
                    threading.Thread(target=self.forward, args=(self.request, up), daemon=True).start()
                    try:
                        while not relay.stop.is_set():
                            data = up.recv(1)
                            if not data:
                                return
                            self.request.sendall(data)
                            relay.stop.wait(every)
                    except OSError:
                        return

            @staticmethod
            def forward(src, dst):
                try:
                    while data := src.recv(65536):
                        dst.sendall(data)
                except OSError:
                    pass

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def close(self):
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()
