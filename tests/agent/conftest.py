"""Fixtures of the agent's tests: every capture extracted (the held-back ones too), a loopback HTTP
peer and a private token file."""
import shutil
import tarfile
from pathlib import Path

import pytest

from tests.agent.captures import HELD_BACK, HELD_BACK_DIR
from tests.agent.peers import TOKEN, Peer


@pytest.fixture(scope="session")
def captures_root(captures_root):
    """The session's extracted captures, plus the held-back ones (tests/conftest.py's `capture` reads here)."""
    for name in HELD_BACK:
        root = captures_root / name
        if not root.exists():
            root.mkdir()
            with tarfile.open(HELD_BACK_DIR / f"{name}.tar.gz") as tar:
                tar.extractall(root, filter="fully_trusted")  # symlinks must stay as the kernel made them
    return captures_root


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
