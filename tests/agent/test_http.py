"""The agent's HTTP client against real loopback peers: TLS verification, an HTTP CONNECT proxy, the
token file, Retry-After, and the overall deadline of a request."""
import base64
import logging
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent.http import Client, parse_retry_after, proxy_from_environment, read_token, ssl_context
from agent.push import Outcome, outcome
from agent.spool import Spool
from tests.agent.peers import TOKEN, ConnectProxy, SlowRelay, Trickler, make_pusher, self_signed


def test_the_token_is_read_stripped(token_file):
    assert read_token(token_file) == TOKEN


def test_tls_is_verified_by_default_and_trusts_the_given_ca_file(tmp_path, peer, capture, token_file, caplog):
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = peer(tls=tls)
    root = capture("isolated-nics")

    untrusting = make_pusher(tmp_path, server.url, root, token_file, once=True,
                         client_kw={"context": ssl_context(ca_file=None, insecure=False)})
    base = untrusting.spool.seq
    with caplog.at_level(logging.WARNING, logger="agent.push"):
        assert untrusting.run() == 1
    assert server.seen == []
    assert any("certificate" in r.getMessage() for r in caplog.records)

    trusting = make_pusher(tmp_path, server.url, root, token_file, once=True,
                       client_kw={"context": ssl_context(ca_file=str(cert), insecure=False)})
    assert trusting.run() == 0
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1]

    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="agent.http"):
        blind = make_pusher(tmp_path, server.url, root, token_file, once=True,
                        client_kw={"context": ssl_context(ca_file=None, insecure=True)})
    assert any("NOT verifying" in r.getMessage() for r in caplog.records)
    assert blind.run() == 0
    assert [s.path for s in server.seen][-1] == "/api/v1/heartbeat"


def test_snapshots_go_through_an_http_connect_proxy_with_tls_end_to_end(tmp_path, peer, capture, token_file):
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = peer(tls=tls)
    proxy = ConnectProxy()
    try:
        port = proxy.server.server_address[1]
        pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True,
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


def test_retry_after_accepts_seconds_and_http_dates():
    assert parse_retry_after("3") == 3.0
    assert parse_retry_after("Wed, 25 Nov 2026 15:00:10 GMT", now=1795618800.0) == 10.0
    assert parse_retry_after("soon") is None
    assert parse_retry_after("-5") == 0.0


def timed_post(client, body=b"{}", *, within: float = 30.0):
    """client.send_snapshot(body) in a thread: (response, seconds taken), or (None, within) if it hangs."""
    out = {}

    def send():
        started = time.monotonic()
        out["resp"] = client.send_snapshot(body)
        out["took"] = time.monotonic() - started

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    worker.join(within)
    return out.get("resp"), out.get("took", within)


@pytest.fixture
def trickler():
    made = []

    def make(answer: bytes, **kw) -> Trickler:
        made.append(Trickler(answer, **kw))
        return made[-1]

    yield make
    for t in made:
        t.close()


def test_a_server_trickling_its_status_line_is_given_up_at_the_deadline(token_file, trickler):
    # One byte every 0.1 s: no single read waits anywhere near the 1 s timeout, so before the overall
    # deadline the agent waited as long as the server kept trickling.
    server = trickler(b"HTTP/1.1 202 Accepted\r\nX-Slow: ", tail=b"a")
    resp, took = timed_post(Client(server.url, token_file=token_file, timeout=1.0))
    assert resp is not None, "still waiting after 30 s"
    assert resp.status is None and "1s request deadline" in resp.error
    assert 0.9 <= took < 5
    assert outcome(resp) is Outcome.RETRY


def test_a_trickled_body_is_not_taken_for_an_answer(token_file, trickler):
    # Headers complete, then the body a byte at a time: a 202 whose body never arrives in time is no
    # delivery (the snapshot stays spooled and is sent again).
    body = b'{"id": 1, "status": "received"}' + b" " * 200
    server = trickler(b"HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                      % (len(body), body))
    resp, took = timed_post(Client(server.url, token_file=token_file, timeout=1.0))
    assert resp is not None and resp.status is None and "deadline" in resp.error
    assert took < 5


def test_a_tls_handshake_that_crawls_is_given_up_at_the_deadline(tmp_path, peer, token_file):
    # A real TLS server behind a relay that hands its bytes back one per 50 ms: the certificate alone
    # would take a minute to arrive.
    cert, key = self_signed(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(cert, key)
    server = peer(tls=tls)
    relay = SlowRelay(("127.0.0.1", server.httpd.server_address[1]))
    try:
        client = Client(f"https://127.0.0.1:{relay.port}", token_file=token_file, timeout=1.5,
                        context=ssl_context(ca_file=str(cert), insecure=False))
        resp, took = timed_post(client)
    finally:
        relay.close()
    assert resp is not None and resp.status is None and "deadline" in resp.error
    assert took < 5
    assert server.seen == []


def test_fleet_agent_run_once_against_a_trickling_server_exits_with_the_snapshot_spooled(tmp_path, capture,
                                                                                        token_file, trickler):
    server = trickler(b"HTTP/1.1 202 Accepted\r\nX-Slow: ", tail=b"a")
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "agent", "run", "--server", server.url, "--token-file",
                           str(token_file), "--root", str(capture("isolated-nics")), "--spool-dir",
                           str(tmp_path / "spool"), "--once", "--timeout", "2"],
                          capture_output=True, text=True, timeout=60, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 1, proc.stderr
    assert time.monotonic() - started < 30
    assert "2s request deadline" in proc.stderr
    assert len(Spool(tmp_path / "spool").pending()) == 1
