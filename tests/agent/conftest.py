"""Fixtures of the agent's tests: a writable copy of a capture, a loopback HTTP peer and a private token file."""
import shutil
from pathlib import Path

import pytest

from tests.agent.peers import TOKEN, Peer


@pytest.fixture
def writable_capture(tmp_path, captures_root):
    """writable_capture(name) -> a private copy of that extracted capture a test may damage."""

    def get(name: str) -> Path:
        dest = tmp_path / name
        if not dest.exists():
            shutil.copytree(captures_root / name, dest, symlinks=True)
        return dest

    return get


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
