"""Which real services the suite can reach. Under CI=true a missing service is an error, not a skip."""
import os
import shutil
import socket

import pytest

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
IN_CI = os.environ.get("CI", "").lower() == "true"


def reachable(addr: tuple[str, int], timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(addr, timeout=timeout):
            return True
    except OSError:
        return False


def system_tool(name: str, package: str) -> str:
    """The path of a Debian tool a test drives; missing, the test skips, or fails under CI=true (.ci/run installs it)."""
    path = shutil.which(name)
    if path is None:
        if IN_CI:
            pytest.fail(f"CI=true and {name} is not installed (Debian package {package}; .ci/run installs it)")
        pytest.skip(f"{name} not installed (apt-get install {package})")
    return path
