"""Slow request bodies against real gunicorn (deploy/gunicorn.conf.py, gthread) and PostgreSQL (issue 10 item 6):
a client that trickles its body gets 408 at the body deadline, one without a valid token gets 401 before
sending a byte of it, and the dashboard keeps answering meanwhile."""
import socket
import threading
import time

from fleet.ingest.services import host_token_create
from tests.e2e.processes import BIN, free_port, port_open, wait_until

DEADLINE = 2


def _slow_post(port: int, path: str, token: str | None, results: list, *, length: int = 10_000, pause: float = 0.5,
               keep_on: float = 4.0) -> None:
    """Headers at once, then one byte of the body every `pause` s, and on for `keep_on` s after the answer (as a
    hostile client would, so the server must not drain the rest); records (status line, seconds to the answer)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        auth = f"Authorization: Bearer {token}\r\n" if token else ""
        s.sendall(f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n{auth}"
                  f"Content-Length: {length}\r\n\r\n".encode())
        s.settimeout(pause)
        answer, answered_at = b"", None
        while time.monotonic() - started < 60 and (answered_at is None or time.monotonic() - answered_at < keep_on):
            try:
                if answered_at is None:
                    answer = s.recv(200)
                    answered_at = time.monotonic()
                    results.append((answer.split(b"\r\n", 1)[0].decode(errors="replace"), answered_at - started))
                    continue
                time.sleep(pause)
            except TimeoutError:
                pass
            try:
                s.sendall(b" ")
            except OSError:
                break
        if answered_at is None:
            results.append(("no answer", time.monotonic() - started))


def _get_seconds(port: int, path: str) -> tuple[int, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode())
        status = int(s.recv(100).split(b" ")[1])
    return status, time.monotonic() - started


def test_trickled_bodies_get_408_at_the_deadline_and_the_dashboard_keeps_its_threads(procs, tmp_path):
    _host, token = host_token_create(hostname="slow-agent")
    port = free_port()
    web = procs.start("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "fleet.wsgi:application"], env={
        "FLEET_BIND": f"127.0.0.1:{port}", "FLEET_WEB_WORKERS": "1", "FLEET_WEB_THREADS": "4", "FLEET_ACCESS_LOG": "0",
        "FLEET_INGEST_BODY_DEADLINE": str(DEADLINE), "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "prometheus"),
    })
    wait_until(lambda: port_open(port), timeout=30, what="gunicorn", proc=web)
    assert _get_seconds(port, "/healthz")[0] == 200  # the worker's first request loads the application

    authenticated, anonymous = [], []
    threads = [threading.Thread(target=_slow_post, args=(port, "/api/v1/snapshots", token, authenticated)) for _ in range(2)]
    threads += [threading.Thread(target=_slow_post, args=(port, "/api/v1/heartbeat", "iof_" + "x" * 43, authenticated),
                                 kwargs={"length": 1000})]
    threads += [threading.Thread(target=_slow_post, args=(port, "/api/v1/snapshots", None, anonymous)) for _ in range(4)]
    for t in threads:
        t.start()
    dashboard = []
    for _ in range(10):  # while the bodies trickle, and after their answers while the clients send on
        time.sleep(0.5)
        dashboard.append(_get_seconds(port, "/healthz"))
    for t in threads:
        t.join(70)

    assert all(status == 200 and seconds < 1 for status, seconds in dashboard), dashboard
    # Refused at once: no token (401), or the agents' in-flight cap (2 of the 4 threads) is full (503).
    assert {line for line, _ in anonymous} <= {"HTTP/1.1 401 Unauthorized", "HTTP/1.1 503 Service Unavailable"}, anonymous
    assert all(seconds < 1.5 for _, seconds in anonymous), anonymous
    timed_out = [seconds for line, seconds in authenticated if line == "HTTP/1.1 408 Request Timeout"]
    assert len(timed_out) >= 2 and all(DEADLINE - 0.5 < seconds < DEADLINE + 3 for seconds in timed_out), authenticated
    assert all(line.startswith(("HTTP/1.1 408", "HTTP/1.1 503")) for line, _ in authenticated), authenticated
