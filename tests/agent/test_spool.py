"""The agent's on-disk spool: bounded, ordered, crash-safe, and the seq counter that survives restarts."""
import gzip
import hashlib
import json
import logging
import os
import shutil
import time

import pytest

from agent.spool import Spool, SpoolLocked


def _body(seq: int, size: int = 100) -> tuple[str, bytes]:
    payload = json.dumps({"seq": seq, "pad": "x" * size}).encode()
    return hashlib.sha256(payload).hexdigest(), gzip.compress(payload, mtime=0)


def _put(spool: Spool, seq: int, size: int = 100):
    digest, body = _body(seq, size)
    return spool.put(seq=seq, content_hash=digest, body=body)


def test_pending_snapshots_come_back_in_seq_order_with_their_bytes(tmp_path):
    spool = Spool(tmp_path)
    for seq in (3, 1, 12, 2):
        _put(spool, seq)
    pending = spool.pending()
    assert [e.seq for e in pending] == [1, 2, 3, 12]
    for entry in pending:
        assert json.loads(gzip.decompress(entry.body()))["seq"] == entry.seq
        assert entry.content_hash == _body(entry.seq)[0]


def test_a_full_spool_drops_the_oldest_snapshot_with_a_warning(tmp_path, caplog):
    spool = Spool(tmp_path, max_files=3)
    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        for seq in range(1, 6):
            _put(spool, seq)
    assert [e.seq for e in spool.pending()] == [3, 4, 5]
    dropped = [r.getMessage() for r in caplog.records if "dropping oldest" in r.getMessage()]
    assert len(dropped) == 2
    assert "seq=1" in dropped[0] and "seq=2" in dropped[1]


def test_nothing_is_dropped_before_the_spool_is_full(tmp_path, caplog):
    spool = Spool(tmp_path, max_files=4)
    with caplog.at_level(logging.WARNING, logger="agent.spool"):
        for seq in range(1, 5):
            _put(spool, seq)
    assert [e.seq for e in spool.pending()] == [1, 2, 3, 4]
    assert not [r for r in caplog.records if "dropping" in r.getMessage()]


def test_the_byte_bound_drops_oldest_until_the_new_snapshot_fits(tmp_path):
    one = len(_body(1, 5000)[1])
    spool = Spool(tmp_path, max_files=100, max_bytes=one * 2 + one // 2)
    for seq in range(1, 5):
        _put(spool, seq, 5000)
    assert [e.seq for e in spool.pending()] == [3, 4]
    assert sum(e.size for e in spool.pending()) <= spool.max_bytes


def test_seq_and_accepted_hash_survive_a_restart(tmp_path):
    first = Spool(tmp_path)
    handed = [first.next_seq(), first.next_seq(), first.next_seq()]
    assert handed == [handed[0], handed[0] + 1, handed[0] + 2]
    first.set_accepted_hash("a" * 64)
    again = Spool(tmp_path)
    assert again.next_seq() == handed[-1] + 1
    assert again.accepted_hash == "a" * 64


def test_a_wiped_spool_starts_above_every_seq_it_handed_out_before(tmp_path):
    first = Spool(tmp_path / "spool")
    handed = [first.next_seq() for _ in range(5)]
    shutil.rmtree(tmp_path / "spool")
    time.sleep(0.002)
    assert Spool(tmp_path / "spool").next_seq() > handed[-1]


def test_a_lost_state_file_never_moves_seq_below_what_is_spooled(tmp_path):
    spool = Spool(tmp_path)
    far_ahead = int(time.time() * 1000) + 10**9  # e.g. a clock that was set back since
    _put(spool, far_ahead)
    (tmp_path / "state.json").unlink(missing_ok=True)
    assert Spool(tmp_path).next_seq() == far_ahead + 1


def test_a_garbled_state_file_is_survived(tmp_path):
    last = Spool(tmp_path).next_seq()
    (tmp_path / "state.json").write_text("{not json")
    time.sleep(0.002)
    assert Spool(tmp_path).next_seq() > last


def test_rejected_snapshots_are_kept_aside_with_the_servers_errors(tmp_path):
    spool = Spool(tmp_path)
    entry = _put(spool, 5)
    kept = spool.reject(entry, status=400, errors=["devices[0].bdf: not a BDF"])
    assert spool.pending() == []
    assert kept.read_bytes() == _body(5)[1]
    note = json.loads(kept.with_name(kept.name.replace(".json.gz", ".errors.json")).read_text())
    assert note == {"seq": 5, "content_hash": entry.content_hash, "status": 400,
                    "errors": ["devices[0].bdf: not a BDF"]}


def test_spool_files_are_private_to_the_agent(tmp_path):
    spool = Spool(tmp_path / "spool")
    entry = _put(spool, 1)
    spool.next_seq()
    assert os.stat(entry.path).st_mode & 0o077 == 0
    assert os.stat(spool.state_path).st_mode & 0o077 == 0
    assert os.stat(spool.dir).st_mode & 0o077 == 0


def test_half_written_files_are_not_replayed(tmp_path):
    spool = Spool(tmp_path)
    _put(spool, 1)
    # What a crash in the middle of write_atomic leaves behind.
    (spool.pending_dir / ".00000000000000000002-x.json.gz.tmp-123").write_bytes(b"\x1f\x8b")
    assert [e.seq for e in spool.pending()] == [1]


def test_two_agents_cannot_share_one_spool(tmp_path):
    first = Spool(tmp_path)
    first.lock()
    try:
        with pytest.raises(SpoolLocked):
            Spool(tmp_path).lock()
    finally:
        first.unlock()
    after = Spool(tmp_path)
    after.lock()
    after.unlock()
