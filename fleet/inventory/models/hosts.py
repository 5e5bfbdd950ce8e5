from django.db import models

from .. import limits


class Label(models.Model):
    """A free-form tag an operator puts on hosts (rack, site, tenant pool…), used in filters and intent."""

    name = models.CharField(max_length=100, unique=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Host(models.Model):
    """One machine that reports through an agent, with the host-level facts of its current state.

    Host-level facts of the last applied snapshot live in columns (queried by the fleet
    overview and search); nested host facts that are only ever read whole
    (cmdline flags, module parameters, DMI) are JSON columns.
    """

    class Enrollment(models.TextChoices):
        PENDING = "pending", "pending (token issued, no report yet)"
        ACTIVE = "active", "active"
        RETIRED = "retired", "retired"

    hostname = models.CharField(max_length=limits.HOSTNAME, unique=True)
    machine_id = models.CharField(max_length=limits.MACHINE_ID, blank=True, default="")
    role = models.CharField(max_length=100, blank=True, default="", db_index=True)
    labels = models.ManyToManyField(Label, blank=True, related_name="hosts")
    enrollment = models.CharField(max_length=16, choices=Enrollment.choices, default=Enrollment.PENDING)
    created_at = models.DateTimeField(auto_now_add=True)

    # Reporting state.
    last_seen = models.DateTimeField(null=True, blank=True, db_index=True)
    stale = models.BooleanField(default=False, db_index=True)
    applied_seq = models.BigIntegerField(null=True, blank=True)
    applied_at = models.DateTimeField(null=True, blank=True)
    applied_snapshot_id = models.BigIntegerField(null=True, blank=True)  # ingest.Snapshot id, kept loose: inventory does not import ingest
    content_hash = models.CharField(max_length=64, blank=True, default="")
    collected_at = models.DateTimeField(null=True, blank=True)

    # Host facts from the last applied snapshot.
    kernel = models.CharField(max_length=limits.KERNEL_RELEASE, blank=True, default="")
    kernel_version = models.TextField(blank=True, default="")
    cmdline = models.TextField(blank=True, default="")
    cmdline_flags = models.JSONField(default=dict, blank=True)
    tainted = models.BigIntegerField(null=True, blank=True)
    cpu_count = models.IntegerField(null=True, blank=True)
    memory_bytes = models.BigIntegerField(null=True, blank=True)
    boot_time = models.CharField(max_length=limits.BOOT_TIME, blank=True, default="")
    dmi = models.JSONField(default=dict, blank=True)
    agent_version = models.CharField(max_length=limits.AGENT_VERSION, blank=True, default="")
    agent_euid = models.IntegerField(null=True, blank=True)
    iommu_enabled = models.BooleanField(null=True, blank=True)
    # Derived for the overview: "off", "translated", "passthrough", "mixed".
    iommu_mode = models.CharField(max_length=16, blank=True, default="", db_index=True)
    vfio_noiommu = models.BooleanField(default=False)
    vfio_iommufd = models.BooleanField(default=False)
    vfio_parameters = models.JSONField(default=dict, blank=True)
    vfio_cdevs = models.JSONField(default=list, blank=True)
    vfio_cdev_support = models.BooleanField(null=True, blank=True)  # null: VFIO not loaded, or a schema 1 agent
    vfio_modules = models.JSONField(default=dict, blank=True)  # {vfio, vfio_iommu_type1, vfio_pci, iommufd}: bool or null
    software = models.JSONField(default=dict, blank=True)  # {qemu, libvirt}: package versions or null
    pasid_idxd = models.JSONField(default=list, blank=True)
    mdev_parents = models.JSONField(default=list, blank=True)
    warnings = models.JSONField(default=list, blank=True)

    # Denormalised counts for the fleet overview (kept by the apply service).
    device_count = models.IntegerField(default=0)
    group_count = models.IntegerField(default=0)
    assigned_count = models.IntegerField(default=0)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname
