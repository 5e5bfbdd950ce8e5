"""The agent's on-disk spool: snapshots not yet accepted by the server, and the agent's state.

Layout of the spool directory::

    state.json                      {"seq": last seq handed out, "accepted_hash": hash the server last accepted}

A spool without a state file (first start, or a wiped /var/lib) starts its seq counter at the
current time in milliseconds, not at 0: the server keeps (host, seq) unique and answers a known seq
as a duplicate, so a counter restarted from 0 would have the host's new snapshots ignored until
it passed the old highest seq. Counting on from the clock keeps seqs above any handed out before.
    pending/<seq>-<hash>.json.gz    one gzip request body per snapshot, replayed in seq order
    rejected/<seq>-<hash>.json.gz   bodies the server refused with 4xx, kept for support
    rejected/<seq>-<hash>.errors.json  what the server said about them
    lock                            flock()ed while an agent uses the directory

Every write is atomic (temporary file, fsync, rename, fsync of the directory), so a
crash or power loss leaves either the old or the new file, never half of one.
"""
from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

from .files import fsync_dir, write_atomic
from .integers import parse_int

log = logging.getLogger("agent.spool")

DEFAULT_MAX_FILES = 1000
DEFAULT_MAX_BYTES = 256 * 1024 * 1024
# Rejected bodies are only for support; keep the latest few so a misbehaving agent cannot fill the disk.
KEEP_REJECTED = 50

_NAME = re.compile(r"^([0-9]{1,20})-([0-9a-f]{64})\.json\.gz$")


class SpoolLocked(RuntimeError):
    """Another agent process holds this spool directory."""


@dataclass(frozen=True, order=True)
class Entry:
    """One spooled snapshot: its sequence number, content hash and request body on disk."""

    seq: int
    content_hash: str
    path: Path

    @property
    def size(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    def body(self) -> bytes:
        return self.path.read_bytes()


class Spool:
    """Bounded, crash-safe queue of request bodies plus the agent's persisted counters.

    Bounds are on the number of pending files and their total bytes; when adding a
    snapshot would exceed either, the OLDEST pending snapshots are dropped (with a
    warning each) — as late as possible and only when full.
    """

    def __init__(self, directory: str | os.PathLike, *, max_files: int = DEFAULT_MAX_FILES,
                 max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_files < 1:
            raise ValueError("spool must hold at least one snapshot")
        self.dir = Path(directory)
        self.pending_dir = self.dir / "pending"
        self.rejected_dir = self.dir / "rejected"
        self.state_path = self.dir / "state.json"
        self.max_files = max_files
        self.max_bytes = max_bytes
        for d in (self.dir, self.pending_dir, self.rejected_dir):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._lock_fd: int | None = None
        self._state = self._load_state()

    # --- exclusive use ----------------------------------------------------------
    def lock(self) -> None:
        """Refuse to share the directory with another running agent (two would reuse seqs)."""
        fd = os.open(self.dir / "lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolLocked(f"spool directory {self.dir} is in use by another fleet-agent") from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    # --- persisted state ----------------------------------------------------------
    def _load_state(self) -> dict:
        try:
            raw = json.loads(self.state_path.read_text())
        except FileNotFoundError:
            raw = {}
        except (OSError, ValueError) as exc:
            log.warning("spool state %s unreadable (%s); starting from the spooled files", self.state_path, exc)
            raw = {}
        seq = raw.get("seq")
        if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
            seq = int(time.time() * 1000)
        accepted = raw.get("accepted_hash") if isinstance(raw.get("accepted_hash"), str) else None
        # A lost state file must not make seq go backwards past what is still spooled.
        seq = max([seq] + [e.seq for e in self._scan(self.pending_dir)] + [e.seq for e in self._scan(self.rejected_dir)])
        return {"seq": seq, "accepted_hash": accepted}

    def _save_state(self) -> None:
        write_atomic(self.state_path, json.dumps(self._state, sort_keys=True).encode())

    @property
    def seq(self) -> int:
        """The last sequence number handed out (the clock seed before the first)."""
        return self._state["seq"]

    def next_seq(self) -> int:
        """Hand out the next sequence number, persisted before it is used."""
        self._state["seq"] += 1
        self._save_state()
        return self._state["seq"]

    @property
    def accepted_hash(self) -> str | None:
        return self._state["accepted_hash"]

    def set_accepted_hash(self, content_hash: str | None) -> None:
        if self._state["accepted_hash"] != content_hash:
            self._state["accepted_hash"] = content_hash
            self._save_state()

    # --- pending snapshots -----------------------------------------------------
    @staticmethod
    def _scan(directory: Path) -> list[Entry]:
        out = []
        try:
            names = os.listdir(directory)
        except FileNotFoundError:
            return []
        for name in names:
            m = _NAME.match(name)
            if m:
                out.append(Entry(parse_int(m.group(1)), m.group(2), directory / name))
        return sorted(out)

    def pending(self) -> list[Entry]:
        """Spooled snapshots, oldest (lowest seq) first."""
        return self._scan(self.pending_dir)

    def put(self, *, seq: int, content_hash: str, body: bytes) -> Entry:
        """Spool one gzip body, dropping the oldest pending ones first if the spool is full."""
        entries = self.pending()
        count = len(entries) + 1
        total = sum(e.size for e in entries) + len(body)
        while entries and (count > self.max_files or total > self.max_bytes):
            oldest = entries.pop(0)
            log.warning("spool full (%d files, %d bytes; limits %d files, %d bytes): dropping oldest snapshot seq=%d",
                        count, total, self.max_files, self.max_bytes, oldest.seq)
            total -= oldest.size
            count -= 1
            self._remove(oldest.path)
        entry = Entry(seq, content_hash, self.pending_dir / f"{seq:020d}-{content_hash}.json.gz")
        write_atomic(entry.path, body)
        return entry

    def delete(self, entry: Entry) -> None:
        """The server has the snapshot (2xx): forget it."""
        self._remove(entry.path)

    def reject(self, entry: Entry, *, status: int, errors: object) -> Path:
        """The server refused the snapshot for good: keep it aside with the server's answer."""
        target = self.rejected_dir / entry.path.name
        os.replace(entry.path, target)
        note = {"seq": entry.seq, "content_hash": entry.content_hash, "status": status, "errors": errors}
        write_atomic(target.with_name(target.name[: -len(".json.gz")] + ".errors.json"),
                     json.dumps(note, indent=1, default=str).encode())
        fsync_dir(self.pending_dir)
        for old in self._scan(self.rejected_dir)[:-KEEP_REJECTED]:
            self._remove(old.path)
            self._remove(old.path.with_name(old.path.name[: -len(".json.gz")] + ".errors.json"))
        return target

    def rejected(self) -> list[Entry]:
        return self._scan(self.rejected_dir)

    @staticmethod
    def _remove(path: Path) -> None:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
