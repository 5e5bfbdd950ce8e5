from django.db import models

from .hosts import Host


class Change(models.Model):
    """One fact that changed between two applied snapshots of a host, with its values before and after."""

    class Kind(models.TextChoices):
        HOST_ENROLLED = "host_enrolled", "first snapshot"
        DEVICE_ADDED = "device_added", "device added"
        DEVICE_REMOVED = "device_removed", "device removed"
        DRIVER_CHANGED = "driver_changed", "driver changed"
        DRIVER_OVERRIDE_CHANGED = "driver_override_changed", "driver_override changed"
        GROUP_CHANGED = "group_changed", "group membership changed"
        GROUP_ADDED = "group_added", "group added"
        GROUP_REMOVED = "group_removed", "group removed"
        GROUP_TYPE_CHANGED = "group_type_changed", "group default domain changed"
        HOLDER_ADDED = "holder_added", "holder appeared"
        HOLDER_REMOVED = "holder_removed", "holder left"
        HOLDER_CHANGED = "holder_changed", "holder's devices or VM changed"
        ADDRESS_SPACE_ADDED = "address_space_added", "address space appeared"
        ADDRESS_SPACE_REMOVED = "address_space_removed", "address space gone"
        ADDRESS_SPACE_CHANGED = "address_space_changed", "address space's groups or devices changed"
        ADDRESS_SPACE_BACKEND_CHANGED = "address_space_backend_changed", "VM moved between legacy VFIO and iommufd"
        NODE_CHANGED = "node_changed", "device node changed"
        IOMMU_CHANGED = "iommu_changed", "IOMMU state changed"
        KERNEL_CHANGED = "kernel_changed", "kernel changed"
        CMDLINE_CHANGED = "cmdline_changed", "kernel command line changed"
        VFIO_CHANGED = "vfio_changed", "VFIO state changed"
        MDEV_CHANGED = "mdev_changed", "mdev changed"
        PASID_CHANGED = "pasid_changed", "PASID users changed"
        CAPABILITY_CHANGED = "capability_changed", "capability changed"
        OTHER = "other", "other"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="changes")
    snapshot_id = models.BigIntegerField(null=True, blank=True)  # ingest.Snapshot id (loose reference)
    at = models.DateTimeField(db_index=True)
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject = models.CharField(max_length=256, blank=True, default="")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)

    class Meta:
        ordering = ["-at", "-id"]
        indexes = [models.Index(fields=["host", "-at"], name="inventory_change_host_at_idx")]
