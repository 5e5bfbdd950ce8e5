"""What ingest keeps: every snapshot as received (compressed), and the per-host tokens agents push with."""
import zlib

import zstandard
from django.db import models
from django.db.models import Q

from fleet.inventory.models import Host

# A zstd frame's first bytes; snapshots stored earlier are zlib streams (first byte 0x78).
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class Snapshot(models.Model):
    """One agent report as it arrived, stored before anything else happens so nothing accepted is ever lost.

    `seq` is the agent's sequence number; one-shot collects (and `import_capture`) send 0,
    which carries no ordering, so the (host, seq) uniqueness only holds for seq > 0.
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "received (waiting to be applied)"
        APPLIED = "applied", "applied"
        SUPERSEDED = "superseded", "superseded (a newer snapshot was already applied)"
        REJECTED = "rejected", "rejected"
        FAILED = "failed", "failed to apply"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="snapshots")
    raw = models.BinaryField()  # the JSON document exactly as received, compressed (zstd; zlib before it)
    size = models.IntegerField(default=0)  # bytes of the uncompressed JSON
    content_hash = models.CharField(max_length=64, db_index=True)
    seq = models.BigIntegerField(default=0)
    collected_at = models.DateTimeField(null=True, blank=True)
    received_at = models.DateTimeField()
    processed_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    error = models.TextField(blank=True, default="")
    # Apply attempts started (each task run, retry or redelivery after a killed worker); past
    # FLEET_APPLY_MAX_ATTEMPTS the snapshot is marked failed instead of tried again.
    attempts = models.PositiveSmallIntegerField(default=0)
    remote_addr = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        constraints = [
            models.UniqueConstraint(fields=["host", "seq"], condition=Q(seq__gt=0), name="%(app_label)s_%(class)s_unique_host_seq"),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="ingest_snapshot_sweep_idx"),
            models.Index(fields=["host", "-id"], name="ingest_snapshot_host_id_idx"),
            # The apply's batch (a host's pending snapshots up to a seq): only the few pending rows, however
            # long the host's history; through (host, seq) it read every snapshot the host ever sent.
            models.Index(fields=["host", "seq"], condition=Q(status="received"), name="ingest_snapshot_pending_idx"),
        ]

    def __str__(self) -> str:
        return f"snapshot {self.pk} of host {self.host_id} seq {self.seq} ({self.status})"

    @staticmethod
    def compress(body: bytes) -> bytes:
        # zstd 3 packs a 480-device document in 0.3 ms and unpacks it in 0.07 ms (zlib 6: 2.9 and 0.67 ms).
        return zstandard.ZstdCompressor(level=3).compress(body)

    def document_bytes(self) -> bytes:
        raw = bytes(self.raw)
        if raw[:4] == ZSTD_MAGIC:
            return zstandard.ZstdDecompressor().decompress(raw)
        return zlib.decompress(raw)  # stored before zstd


class HostToken(models.Model):
    """A bearer token bound to one host. Only the sha256 of the secret is stored; the secret is shown once."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="tokens")
    token_hash = models.CharField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["host", "-created_at"]

    def __str__(self) -> str:
        state = "revoked" if self.revoked_at else "active"
        return f"token {self.pk} of host {self.host_id} ({state})"
