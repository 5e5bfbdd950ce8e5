"""Which real services the suite can reach. Under CI=true a missing service is an error, not a skip."""
import os
import socket

POSTGRES = ("127.0.0.1", 5432)
REDIS = ("127.0.0.1", 6379)
IN_CI = os.environ.get("CI", "").lower() == "true"


def reachable(addr: tuple[str, int], timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection(addr, timeout=timeout):
            return True
    except OSError:
        return False
