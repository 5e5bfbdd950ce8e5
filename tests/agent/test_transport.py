"""The push loop against a real HTTP peer on loopback (a thread running http.server that records
every request and answers what the test scripts). The peer stands in for the server's contract
(docs/snapshot.md, issue 3); the loop, the spool and the HTTP client are the real ones."""
import base64
import gzip
import hashlib
import json
import logging
import select
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from agent import __version__
from agent.paths import Root
from agent.snapshot import build, content_hash
from agent.spool import Spool
from agent.transport import (Backoff, Client, LoopConfig, Pusher, parse_retry_after, proxy_from_environment, read_token,
                             run_command, ssl_context)
from tests.e2e.rebind import NIC, flip_driver

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


@pytest.fixture
def peer():
    peers = []

    def make(**kw) -> Peer:
        p = Peer(**kw)
        peers.append(p)
        return p

    yield make
    for p in peers:
        p.close()


@pytest.fixture
def token_file(tmp_path) -> Path:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(0o600)
    return path


def _changing(root: Path):
    """A collector whose every collection differs from the previous one (a driver flip each time)."""

    def collect(r: Root, seq: int) -> dict:
        flip_driver(root)
        return build(r, seq=seq)

    return collect


def _pusher(tmp_path, url, root, token_file, *, collect=None, spool_max=1000, client_kw=None, **config) -> Pusher:
    config.setdefault("interval", 0.05)
    kw = {"collect": collect} if collect else {}
    return Pusher(LoopConfig(root=Root.of(root), **config),
                  spool=Spool(tmp_path / "spool", max_files=spool_max),
                  client=Client(url, token_file=token_file, **(client_kw or {})),
                  backoff=Backoff(base=0.05, cap=0.1), **kw)


def test_a_snapshot_goes_out_gzipped_with_the_token_and_user_agent(tmp_path, peer, capture, token_file):
    root = capture("isolated-nics")
    server = peer()
    pusher = _pusher(tmp_path, server.url, root, token_file, once=True)
    base = pusher.spool.seq
    assert pusher.run() == 0
    [req] = server.seen
    assert req.path == "/api/v1/snapshots"
    assert req.headers["authorization"] == f"Bearer {TOKEN}"
    assert req.headers["content-encoding"] == "gzip"
    assert req.headers["content-type"] == "application/json"
    assert req.headers["user-agent"] == f"fleet-agent/{__version__}"
    doc = req.doc
    assert doc["seq"] == base + 1
    assert doc["host"]["hostname"] == (root / "etc/hostname").read_text().strip()
    lspci = [line.split()[0] for line in (root / "ground-truth/lspci-Dnn.txt").read_text().splitlines() if line.strip()]
    assert [d["bdf"] for d in doc["devices"]] == sorted(lspci)
    assert list((tmp_path / "spool/pending").iterdir()) == []


def test_an_unchanged_collection_sends_a_heartbeat_with_the_content_hash(tmp_path, peer, capture, token_file):
    server = peer()
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, max_iterations=3)
    base = pusher.spool.seq
    assert pusher.run() == 0
    assert [s.path for s in server.seen] == ["/api/v1/snapshots", "/api/v1/heartbeat", "/api/v1/heartbeat"]
    first = server.seen[0].doc
    beats = [json.loads(s.raw) for s in server.seen[1:]]
    assert beats == [{"content_hash": content_hash(first), "seq": base + 2},
                     {"content_hash": content_hash(first), "seq": base + 3}]
    assert server.seen[1].headers["authorization"] == f"Bearer {TOKEN}"


def test_a_heartbeat_the_server_does_not_recognise_is_followed_by_the_full_snapshot(tmp_path, peer, capture, token_file):
    server = peer(heartbeat=(409, {}, {"detail": "hash differs"}))
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, max_iterations=2)
    base = pusher.spool.seq
    assert pusher.run() == 0
    assert [s.path for s in server.seen] == ["/api/v1/snapshots", "/api/v1/heartbeat", "/api/v1/snapshots"]
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1, base + 2]


def test_snapshots_refused_with_503_are_spooled_then_replayed_in_seq_order(tmp_path, peer, writable_capture, token_file):
    root = writable_capture("isolated-nics")
    server = peer(script=[(503, {}, {"detail": "down"})] * 4)
    pusher = _pusher(tmp_path, server.url, root, token_file, collect=_changing(root), max_iterations=3,
                     interval=0.2, drain_timeout=5)
    base = pusher.spool.seq
    assert pusher.run() == 0
    accepted = server.snapshots()[4:]
    assert [s.doc["seq"] for s in accepted] == [base + 1, base + 2, base + 3]
    drivers = [next(d["driver"] for d in s.doc["devices"] if d["bdf"] == NIC) for s in accepted]
    assert drivers == ["vfio-pci", "e1000e", "vfio-pci"]
    assert Spool(tmp_path / "spool").pending() == []
    # Every attempt before the first success was for the oldest snapshot: order is never skipped.
    assert all(s.doc["seq"] == base + 1 for s in server.snapshots()[:4])


def test_retry_after_is_honoured(tmp_path, peer, capture, token_file):
    server = peer(script=[(429, {"Retry-After": "1"}, {"detail": "slow down"})])
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, drain_timeout=5)
    base = pusher.spool.seq
    assert pusher.run() == 0
    first, second = server.seen
    assert second.at - first.at >= 1.0
    assert second.doc["seq"] == first.doc["seq"] == base + 1


def test_a_restart_keeps_the_seq_counter_and_replays_the_spool(tmp_path, peer, writable_capture, token_file):
    root = writable_capture("isolated-nics")
    down = peer()
    dead_url = down.url
    down.close()  # nothing listens on that port any more: connection refused
    first_run = _pusher(tmp_path, dead_url, root, token_file, collect=_changing(root), max_iterations=2)
    base = first_run.spool.seq
    assert first_run.run() == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 1, base + 2]

    server = peer()
    assert _pusher(tmp_path, server.url, root, token_file, collect=_changing(root), once=True).run() == 0
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1, base + 2, base + 3]


def test_a_long_outage_keeps_the_newest_snapshots_up_to_the_spool_bound(tmp_path, peer, writable_capture, token_file,
                                                                         caplog):
    root = writable_capture("isolated-nics")
    down = peer()
    dead_url = down.url
    down.close()
    pusher = _pusher(tmp_path, dead_url, root, token_file, collect=_changing(root), max_iterations=5, spool_max=3)
    base = pusher.spool.seq
    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        assert pusher.run() == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 3, base + 4, base + 5]
    dropped = [r.getMessage() for r in caplog.records if "dropping oldest" in r.getMessage()]
    assert [f"seq={base + 1}" in dropped[0], f"seq={base + 2}" in dropped[1], len(dropped)] == [True, True, 2]


def test_a_server_rejection_is_not_retried_and_is_kept_for_support(tmp_path, peer, capture, token_file):
    server = peer(script=[(400, {}, {"errors": ["schema: unknown version 1"]})])
    assert _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, drain_timeout=1).run() == 0
    assert len(server.seen) == 1
    spool = Spool(tmp_path / "spool")
    [kept] = spool.rejected()
    assert kept.body() == server.seen[0].raw
    assert json.loads(kept.path.with_name(kept.path.name.replace(".json.gz", ".errors.json")).read_text())["errors"] \
        == ["schema: unknown version 1"]


def test_a_refused_token_keeps_the_snapshot_spooled_and_waits_long(tmp_path, peer, capture, token_file, caplog):
    server = peer(script=[(401, {}, {"detail": "token revoked"})])
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=120)
    base = pusher.spool.seq
    with caplog.at_level(logging.ERROR, logger="agent.transport"):
        assert pusher.run() == 1
    assert len(server.seen) == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 1]
    assert pusher.next_attempt - time.monotonic() > 100
    assert any("refused the token" in r.getMessage() and str(token_file) in r.getMessage() for r in caplog.records)


def test_a_rotated_token_is_picked_up_without_a_restart(tmp_path, peer, capture, token_file):
    server = peer(token="rotated-token")
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=0.3,
                     drain_timeout=10)
    base = pusher.spool.seq

    def rotate_after_first_refusal():
        wait = time.monotonic() + 10
        while not server.seen and time.monotonic() < wait:
            time.sleep(0.01)
        token_file.write_text("rotated-token\n")

    rotator = threading.Thread(target=rotate_after_first_refusal)
    rotator.start()
    assert pusher.run() == 0
    rotator.join()
    assert [s.headers["authorization"] for s in server.seen] == [f"Bearer {TOKEN}", "Bearer rotated-token"]
    assert [s.doc["seq"] for s in server.seen] == [base + 1, base + 1]


@pytest.mark.parametrize("status,headers", [(404, {}), (301, {"Location": "https://elsewhere.example/api/v1/snapshots"})])
def test_a_wrong_server_url_keeps_snapshots_spooled_and_is_not_followed(tmp_path, peer, capture, token_file, caplog,
                                                                        status, headers):
    server = peer(script=[(status, headers, {"detail": "not here"})])
    pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=120)
    base = pusher.spool.seq
    with caplog.at_level(logging.ERROR, logger="agent.transport"):
        assert pusher.run() == 1
    assert len(server.seen) == 1
    spool = Spool(tmp_path / "spool")
    assert [e.seq for e in spool.pending()] == [base + 1]
    assert spool.rejected() == []
    assert pusher.next_attempt - time.monotonic() > 100
    assert any(f"HTTP {status}" in r.getMessage() and "--server" in r.getMessage() for r in caplog.records)


def _args(**kw):
    import argparse

    from agent.transport import add_run_arguments

    parser = argparse.ArgumentParser()
    add_run_arguments(parser)
    argv = []
    for key, value in kw.items():
        flag = "--" + key.replace("_", "-")
        argv += [flag] if value is True else [flag, str(value)]
    return parser.parse_args(argv)


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o644])
def test_a_token_file_readable_by_others_is_refused_with_exit_code_2(tmp_path, token_file, mode, caplog):
    token_file.chmod(mode)
    with caplog.at_level(logging.ERROR):
        rc = run_command(_args(server="http://127.0.0.1:9", token_file=token_file, spool_dir=tmp_path / "s", once=True))
    assert rc == 2
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


def test_a_missing_ca_file_is_a_usage_error_naming_it(tmp_path, token_file, caplog):
    with caplog.at_level(logging.ERROR):
        rc = run_command(_args(server="https://127.0.0.1:9", token_file=token_file, spool_dir=tmp_path / "s",
                               ca_file=tmp_path / "nope.pem", once=True))
    assert rc == 2
    assert any("--ca-file" in r.getMessage() for r in caplog.records)


def test_the_token_is_read_stripped(token_file):
    assert read_token(token_file) == TOKEN


def _self_signed(tmp_path) -> tuple[Path, Path]:
    if not shutil.which("openssl"):
        pytest.skip("openssl CLI not available to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_tls_is_verified_by_default_and_trusts_the_given_ca_file(tmp_path, peer, capture, token_file, caplog):
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = peer(tls=tls)
    root = capture("isolated-nics")

    untrusting = _pusher(tmp_path, server.url, root, token_file, once=True,
                         client_kw={"context": ssl_context(ca_file=None, insecure=False)})
    base = untrusting.spool.seq
    with caplog.at_level(logging.WARNING, logger="agent.transport"):
        assert untrusting.run() == 1
    assert server.seen == []
    assert any("certificate" in r.getMessage() for r in caplog.records)

    trusting = _pusher(tmp_path, server.url, root, token_file, once=True,
                       client_kw={"context": ssl_context(ca_file=str(cert), insecure=False)})
    assert trusting.run() == 0
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.transport"):
        blind = _pusher(tmp_path, server.url, root, token_file, once=True,
                        client_kw={"context": ssl_context(ca_file=None, insecure=True)})
    assert any("NOT verifying" in r.getMessage() for r in caplog.records)
    assert blind.run() == 0
    assert [s.path for s in server.seen][-1] == "/api/v1/heartbeat"


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


def test_snapshots_go_through_an_http_connect_proxy_with_tls_end_to_end(tmp_path, peer, capture, token_file):
    cert, key = _self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = peer(tls=tls)
    proxy = ConnectProxy()
    try:
        port = proxy.server.server_address[1]
        pusher = _pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True,
                         client_kw={"context": ssl_context(ca_file=str(cert), insecure=False),
                                    "proxy": f"http://agent:s%40cret@127.0.0.1:{port}"})
        base = pusher.spool.seq
        assert pusher.run() == 0
    finally:
        proxy.close()
    [(request_line, headers)] = proxy.connects
    assert request_line.split()[:2] == ["CONNECT", f"127.0.0.1:{server.httpd.server_address[1]}"]
    assert headers["Proxy-Authorization"] == "Basic " + base64.b64encode(b"agent:s@cret").decode()
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1]
    assert server.snapshots()[0].headers["authorization"] == f"Bearer {TOKEN}"


def test_the_proxy_comes_from_the_environment_except_for_no_proxy_and_loopback(monkeypatch):
    for name in ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("https_proxy", "http://squid.example.net:3128")
    monkeypatch.setenv("no_proxy", "internal.example.net")
    assert proxy_from_environment("https://fleet.example.net") == "http://squid.example.net:3128"
    assert proxy_from_environment("https://fleet.internal.example.net") is None
    assert proxy_from_environment("https://127.0.0.1:8443") is None
    assert proxy_from_environment("http://fleet.example.net") is None  # no http_proxy set


def test_sigterm_stops_the_agent_cleanly_between_collections(tmp_path, peer, capture, token_file):
    server = peer()
    proc = subprocess.Popen([sys.executable, "-m", "agent", "run", "--server", server.url, "--token-file",
                             str(token_file), "--root", str(capture("isolated-nics")), "--spool-dir",
                             str(tmp_path / "spool"), "--interval", "30"],
                            stderr=subprocess.PIPE, text=True, cwd=Path(__file__).resolve().parents[2])
    deadline = time.monotonic() + 20
    while not server.seen and time.monotonic() < deadline:
        time.sleep(0.05)
    assert server.seen, "the agent never sent its first snapshot"
    started = time.monotonic()
    proc.terminate()
    rc = proc.wait(timeout=10)
    assert time.monotonic() - started < 5
    assert rc == 0
    assert "SIGTERM received" in proc.stderr.read()


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 25 Nov 2026 15:00:10 GMT", now=1795618800.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def test_the_same_document_always_compresses_to_the_same_bytes(capture):
    from agent.transport import snapshot_body

    doc = build(Root.of(capture("isolated-nics")), seq=4)
    assert hashlib.sha256(snapshot_body(doc)).digest() == hashlib.sha256(snapshot_body(json.loads(json.dumps(doc)))).digest()
