"""Fixtures shared by the whole suite: real captures and real services."""
import tarfile
from pathlib import Path

import pytest

from tests.services import IN_CI, POSTGRES, REDIS, reachable

FIXTURES = Path(__file__).parent / "fixtures"
CAPTURES_DIR = FIXTURES / "captures"
CAPTURE_NAMES = sorted(p.name[: -len(".tar.gz")] for p in CAPTURES_DIR.glob("*.tar.gz"))


def _extract(name: str, dest: Path) -> Path:
    root = dest / name
    if not root.exists():
        root.mkdir(parents=True)
        with tarfile.open(CAPTURES_DIR / f"{name}.tar.gz") as tar:
            tar.extractall(root, filter="fully_trusted")  # symlinks must stay as the kernel made them
    return root


@pytest.fixture(scope="session")
def captures_root(tmp_path_factory) -> Path:
    """A directory with every capture extracted, one sub-directory per capture name."""
    dest = tmp_path_factory.mktemp("captures")
    for name in CAPTURE_NAMES:
        _extract(name, dest)
    return dest


@pytest.fixture(scope="session")
def capture(captures_root):
    """capture(name) -> the root directory of that extracted capture (read-only use)."""

    def get(name: str) -> Path:
        root = captures_root / name
        assert root.is_dir(), f"no capture {name}"
        return root

    return get


@pytest.fixture
def writable_capture(tmp_path):
    """writable_capture(name) -> a private extracted copy a test may damage."""

    def get(name: str) -> Path:
        return _extract(name, tmp_path)

    return get


def _require(addr, what):
    if reachable(addr):
        return
    if IN_CI:
        pytest.fail(f"CI=true and {what} at {addr[0]}:{addr[1]} is not reachable")
    pytest.skip(f"{what} not reachable at {addr[0]}:{addr[1]}")


@pytest.fixture
def redis_service():
    _require(REDIS, "Redis")
    return "redis://127.0.0.1:6379"


@pytest.fixture
def postgres_service():
    _require(POSTGRES, "PostgreSQL")
    return "postgres://postgres@127.0.0.1:5432"
