"""Ingest decisions as plain functions; the API views and Celery tasks are thin adapters over these."""
from .apply import snapshot_apply
from .hosts import host_labels_add, host_role_set
from .receive import (
    HEARTBEAT_MAX_BYTES, ReceiveResult, heartbeat_receive, host_authenticate, snapshot_receive, snapshot_receive_document,
    token_malformed,
)
from .sweep import hosts_mark_stale, snapshots_requeue_stuck
from .tokens import host_token_create, host_token_revoke, host_token_rotate

__all__ = [
    "HEARTBEAT_MAX_BYTES", "ReceiveResult", "heartbeat_receive", "host_authenticate", "host_labels_add", "host_role_set", "host_token_create", "host_token_revoke",
    "host_token_rotate", "hosts_mark_stale", "snapshot_apply", "snapshot_receive", "snapshot_receive_document",
    "snapshots_requeue_stuck", "token_malformed",
]
