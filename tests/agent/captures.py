"""The captures the agent's tests run on: every capture of tests/fixtures/captures/."""
from tests.conftest import CAPTURE_NAMES, CAPTURES_DIR

__all__ = ["CAPTURE_NAMES", "tarball"]


def tarball(name: str):
    """The tarball of capture `name`."""
    return CAPTURES_DIR / f"{name}.tar.gz"
