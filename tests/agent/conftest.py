"""Fixtures of the agent's transport tests: a loopback HTTP peer and a private token file."""
from pathlib import Path

import pytest

from tests.agent.peers import TOKEN, Peer


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
