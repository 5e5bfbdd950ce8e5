"""Steps the end-to-end tests share: enrol a host, the agent's arguments, read back what the server stored."""
from __future__ import annotations

import os
from pathlib import Path

from tests.e2e.processes import Processes


def hostname_of(root: Path) -> str:
    """The hostname the agent will report for a capture (what `hostname` printed there)."""
    for rel in ("proc/sys/kernel/hostname", "etc/hostname"):
        p = Path(root, rel)
        if p.exists() and p.read_text().strip():
            return p.read_text().strip()
    raise AssertionError(f"capture {root} has no hostname")


def enrol(procs: Processes, hostname: str, directory: Path) -> Path:
    """`manage.py host_token create HOSTNAME` → a 0600 token file, as an operator would do."""
    done = procs.manage("host_token", "create", hostname)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert token and "\n" not in token, done.stdout
    path = directory / f"{hostname}.token"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(token + "\n")
    return path


def agent_args(port: int, token_file: Path, root: Path, spool: Path) -> list[str]:
    return ["--server", f"http://127.0.0.1:{port}", "--token-file", str(token_file), "--root", str(root),
            "--spool-dir", str(spool), "--timeout", "10"]


def snapshots_of(hostname: str) -> list:
    """The host's stored snapshots in arrival order (by id)."""
    from fleet.ingest.models import Snapshot

    return list(Snapshot.objects.filter(host__hostname=hostname).order_by("id"))
