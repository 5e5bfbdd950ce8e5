"""Reads of the current state. Filled in by the inventory service work (issue 3)."""


def host_state(host) -> dict:
    """The host's current state as a snapshot-shaped dict (docs/snapshot.md), rebuilt from the tables."""
    raise NotImplementedError
