"""Fixtures shared by the whole suite: real captures and real services."""
import os
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


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="session")
def browser():
    """The session's one Chromium (Debian's), driven by Playwright's sync API.

    Defined once here: Playwright's sync API refuses to start a second instance while one runs,
    so every browser test in every folder shares this one."""
    if not Path(CHROMIUM).exists():
        if IN_CI:
            pytest.fail(f"CI=true and {CHROMIUM} is missing")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    # Playwright's sync API runs an event loop in this thread; the tests' own ORM calls stay synchronous.
    os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield b
        b.close()
