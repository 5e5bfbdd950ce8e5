"""The push loop against a real HTTP peer on loopback (tests/agent/peers.py): what is sent when, what
stays spooled, how answers and outages are handled."""
import hashlib
import json
import logging
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from agent import __version__
from agent.paths import Root
from agent.push import snapshot_body
from agent.snapshot import build, content_hash
from agent.spool import Spool
from tests.agent.peers import TOKEN, changing, make_pusher
from tests.e2e.rebind import NIC


def test_a_snapshot_goes_out_gzipped_with_the_token_and_user_agent(tmp_path, peer, capture, token_file):
    root = capture("isolated-nics")
    server = peer()
    pusher = make_pusher(tmp_path, server.url, root, token_file, once=True)
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
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, max_iterations=3)
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
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, max_iterations=2)
    base = pusher.spool.seq
    assert pusher.run() == 0
    assert [s.path for s in server.seen] == ["/api/v1/snapshots", "/api/v1/heartbeat", "/api/v1/snapshots"]
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1, base + 2]


def test_snapshots_refused_with_503_are_spooled_then_replayed_in_seq_order(tmp_path, peer, writable_capture, token_file):
    root = writable_capture("isolated-nics")
    server = peer(script=[(503, {}, {"detail": "down"})] * 4)
    pusher = make_pusher(tmp_path, server.url, root, token_file, collect=changing(root), max_iterations=3,
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
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, drain_timeout=5)
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
    first_run = make_pusher(tmp_path, dead_url, root, token_file, collect=changing(root), max_iterations=2)
    base = first_run.spool.seq
    assert first_run.run() == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 1, base + 2]

    server = peer()
    assert make_pusher(tmp_path, server.url, root, token_file, collect=changing(root), once=True).run() == 0
    assert [s.doc["seq"] for s in server.snapshots()] == [base + 1, base + 2, base + 3]


def test_a_long_outage_keeps_the_newest_snapshots_up_to_the_spool_bound(tmp_path, peer, writable_capture, token_file,
                                                                         caplog):
    root = writable_capture("isolated-nics")
    down = peer()
    dead_url = down.url
    down.close()
    pusher = make_pusher(tmp_path, dead_url, root, token_file, collect=changing(root), max_iterations=5, spool_max=3)
    base = pusher.spool.seq
    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        assert pusher.run() == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 3, base + 4, base + 5]
    dropped = [r.getMessage() for r in caplog.records if "dropping oldest" in r.getMessage()]
    assert [f"seq={base + 1}" in dropped[0], f"seq={base + 2}" in dropped[1], len(dropped)] == [True, True, 2]


def test_a_server_rejection_is_not_retried_and_is_kept_for_support(tmp_path, peer, capture, token_file):
    server = peer(script=[(400, {}, {"errors": ["schema: unknown version 1"]})])
    assert make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, drain_timeout=1).run() == 0
    assert len(server.seen) == 1
    spool = Spool(tmp_path / "spool")
    [kept] = spool.rejected()
    assert kept.body() == server.seen[0].raw
    assert json.loads(kept.path.with_name(kept.path.name.replace(".json.gz", ".errors.json")).read_text())["errors"] \
        == ["schema: unknown version 1"]


def test_a_refused_token_keeps_the_snapshot_spooled_and_waits_long(tmp_path, peer, capture, token_file, caplog):
    server = peer(script=[(401, {}, {"detail": "token revoked"})])
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=120)
    base = pusher.spool.seq
    with caplog.at_level(logging.ERROR, logger="agent.push"):
        assert pusher.run() == 1
    assert len(server.seen) == 1
    assert [e.seq for e in Spool(tmp_path / "spool").pending()] == [base + 1]
    assert pusher.next_attempt - time.monotonic() > 100
    assert any("refused the token" in r.getMessage() and str(token_file) in r.getMessage() for r in caplog.records)


def test_a_rotated_token_is_picked_up_without_a_restart(tmp_path, peer, capture, token_file):
    server = peer(token="rotated-token")
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=0.3,
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
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=120)
    base = pusher.spool.seq
    with caplog.at_level(logging.ERROR, logger="agent.push"):
        assert pusher.run() == 1
    assert len(server.seen) == 1
    spool = Spool(tmp_path / "spool")
    assert [e.seq for e in spool.pending()] == [base + 1]
    assert spool.rejected() == []
    assert pusher.next_attempt - time.monotonic() > 100
    assert any(f"HTTP {status}" in r.getMessage() and "--server" in r.getMessage() for r in caplog.records)


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


def test_the_same_document_always_compresses_to_the_same_bytes(capture):
    doc = build(Root.of(capture("isolated-nics")), seq=4)
    assert hashlib.sha256(snapshot_body(doc)).digest() == hashlib.sha256(snapshot_body(json.loads(json.dumps(doc)))).digest()


def test_what_the_server_says_reaches_the_log_without_terminal_escapes(tmp_path, peer, capture, token_file, caplog):
    # A hostile or compromised server answering 401 with an escape sequence in its detail (it would
    # clear the operator's terminal when `fleet-agent run` runs in one).
    server = peer(script=[(401, {}, "\x1b[2J\x1b]0;owned\x07token revoked")])
    pusher = make_pusher(tmp_path, server.url, capture("isolated-nics"), token_file, once=True, auth_retry=120)
    with caplog.at_level(logging.ERROR, logger="agent.push"):
        assert pusher.run() == 1
    [message] = [r.getMessage() for r in caplog.records if "refused the token" in r.getMessage()]
    assert "token revoked" in message and "\x1b" not in message and "\x07" not in message
