"""Violation lifecycle. Filled in by the policy work (issue 4)."""


def violations_sync_for_host(*, host) -> None:
    """Evaluate every rule for `host`'s current state and open/update/resolve its violations."""
    return None
