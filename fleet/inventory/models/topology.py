"""The current topology of each host, one row per fact, replaced by each applied snapshot.

Every row carries `fingerprint`, a digest of its values written by the apply service: the
next apply compares fingerprints instead of reading every row back, and rewrites only rows
whose fingerprint moved. Rows are written only through `fleet.inventory.services`.
"""
from django.db import models

from .. import limits
from .hosts import Host


class Unit(models.Model):
    """An IOMMU hardware unit (Intel DMAR, AMD IVHD, ARM SMMU, virtio-iommu) and its decoded capabilities."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="units")
    name = models.CharField(max_length=limits.UNIT_NAME)
    vendor = models.CharField(max_length=limits.UNIT_VENDOR)
    registers = models.JSONField(default=dict, blank=True)
    features = models.JSONField(default=dict, blank=True)
    devices = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "name"]
        constraints = [models.UniqueConstraint(fields=["host", "name"], name="%(app_label)s_%(class)s_unique_host_name")]


class Group(models.Model):
    """An IOMMU group: the smallest set of devices the IOMMU can isolate from each other."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="groups")
    number = models.IntegerField()
    type = models.CharField(max_length=limits.GROUP_TYPE, null=True, blank=True)
    name = models.CharField(max_length=limits.GROUP_NAME, null=True, blank=True)
    unit = models.CharField(max_length=limits.UNIT_NAME, null=True, blank=True)
    reserved_regions = models.JSONField(default=list, blank=True)
    # The group's member list as the kernel lists it: it may name non-PCI devices that have no Device row.
    member_bdfs = models.JSONField(default=list, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "number"]
        constraints = [models.UniqueConstraint(fields=["host", "number"], name="%(app_label)s_%(class)s_unique_host_number")]


class Device(models.Model):
    """A PCI function on a host, with its driver, group, bridge parent and decoded config space."""

    class OwnerKind(models.TextChoices):
        HOST = "host", "host driver"
        USERSPACE = "userspace", "VFIO / userspace"
        UNBOUND = "unbound", "no driver"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="devices")
    bdf = models.CharField(max_length=limits.BDF)
    vendor_id = models.CharField(max_length=limits.PCI_ID, null=True, blank=True)
    device_id = models.CharField(max_length=limits.PCI_ID, null=True, blank=True)
    subsystem_vendor_id = models.CharField(max_length=limits.PCI_ID, null=True, blank=True)
    subsystem_device_id = models.CharField(max_length=limits.PCI_ID, null=True, blank=True)
    class_code = models.CharField(max_length=limits.CLASS_CODE, null=True, blank=True, db_index=True)
    revision = models.CharField(max_length=limits.REVISION, null=True, blank=True)
    driver = models.CharField(max_length=limits.DRIVER, null=True, blank=True, db_index=True)
    driver_override = models.CharField(max_length=limits.DRIVER, null=True, blank=True)
    group = models.ForeignKey(Group, on_delete=models.SET_NULL, null=True, blank=True, related_name="devices")
    group_number = models.IntegerField(null=True, blank=True)
    iommu_unit = models.CharField(max_length=limits.UNIT_NAME, null=True, blank=True)
    parent_bdf = models.CharField(max_length=limits.BDF, null=True, blank=True)
    path = models.CharField(max_length=limits.DEVICE_PATH, blank=True, default="")
    numa_node = models.IntegerField(null=True, blank=True)
    link = models.JSONField(default=dict, blank=True)
    is_bridge = models.BooleanField(null=True, blank=True)
    header_type = models.CharField(max_length=limits.HEADER_TYPE, null=True, blank=True)
    multifunction = models.BooleanField(null=True, blank=True)
    sriov = models.JSONField(null=True, blank=True)
    physfn_bdf = models.CharField(max_length=limits.BDF, null=True, blank=True)
    capabilities = models.JSONField(default=dict, blank=True)
    # Who owns it, derived at apply time from the driver and the holders.
    owner_kind = models.CharField(max_length=limits.OWNER_KIND, choices=OwnerKind.choices, default=OwnerKind.UNBOUND, db_index=True)
    owner_vm = models.CharField(max_length=limits.VM_NAME, null=True, blank=True, db_index=True)
    owner_pid = models.IntegerField(null=True, blank=True)
    # The device's VFIO cdev (`vfio3` of /dev/vfio/devices/vfio3), from the host's cdev list.
    cdev = models.CharField(max_length=limits.CDEV_NAME, null=True, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "bdf"]
        constraints = [models.UniqueConstraint(fields=["host", "bdf"], name="%(app_label)s_%(class)s_unique_host_bdf")]
        indexes = [
            models.Index(fields=["vendor_id", "device_id"], name="inventory_device_vd_idx"),
            models.Index(fields=["bdf"], name="inventory_device_bdf_idx"),
        ]


class VfioNode(models.Model):
    """A device node that grants DMA-capable access: /dev/vfio/*, /dev/iommu, /dev/uio*."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="vfio_nodes")
    path = models.CharField(max_length=limits.NODE_PATH)
    kind = models.CharField(max_length=limits.NODE_KIND)
    group_number = models.IntegerField(null=True, blank=True)
    mode = models.CharField(max_length=limits.NODE_MODE)
    uid = models.IntegerField(null=True, blank=True)
    gid = models.IntegerField(null=True, blank=True)
    rdev = models.CharField(max_length=limits.RDEV, null=True, blank=True)
    device_bdf = models.CharField(max_length=limits.BDF, null=True, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "path"]
        constraints = [models.UniqueConstraint(fields=["host", "path"], name="%(app_label)s_%(class)s_unique_host_path")]


class Holder(models.Model):
    """A process holding a VFIO, iommufd or UIO fd, and the VM or workload it belongs to."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="holders")
    pid = models.IntegerField()
    name = models.CharField(max_length=limits.PROCESS_NAME)
    user = models.CharField(max_length=limits.USER_NAME, null=True, blank=True)
    uid = models.IntegerField(null=True, blank=True)
    cmdline = models.JSONField(default=list, blank=True)
    kind = models.CharField(max_length=limits.HOLDER_KIND, default="other")
    vm = models.CharField(max_length=limits.VM_NAME, null=True, blank=True, db_index=True)
    workload = models.CharField(max_length=limits.VM_NAME, null=True, blank=True)
    cgroup = models.CharField(max_length=limits.CGROUP, null=True, blank=True)
    nodes = models.JSONField(default=list, blank=True)
    groups = models.JSONField(default=list, blank=True)
    devices = models.JSONField(default=list, blank=True)
    device_fds = models.IntegerField(default=0)
    vm_pinned_kb = models.BigIntegerField(null=True, blank=True)
    vm_locked_kb = models.BigIntegerField(null=True, blank=True)
    # Schema 2: the DMA-relevant fds by number, and the devices the holder's own configuration names.
    fds = models.JSONField(default=list, blank=True)
    claims = models.JSONField(default=list, blank=True)
    start_time = models.CharField(max_length=limits.START_TIME, null=True, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "pid"]
        constraints = [models.UniqueConstraint(fields=["host", "pid"], name="%(app_label)s_%(class)s_unique_host_pid")]


class Mdev(models.Model):
    """A mediated device (vGPU, DSA slice…) carved out of a parent device."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="mdevs")
    uuid = models.CharField(max_length=limits.UUID)
    parent = models.CharField(max_length=limits.MDEV_PARENT)
    type = models.CharField(max_length=limits.MDEV_TYPE)
    type_name = models.CharField(max_length=limits.MDEV_TYPE, null=True, blank=True)
    group_number = models.IntegerField(null=True, blank=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "uuid"]
        constraints = [models.UniqueConstraint(fields=["host", "uuid"], name="%(app_label)s_%(class)s_unique_host_uuid")]


class PasidUser(models.Model):
    """A consumer of a PASID the kernel shows (an idxd work-queue opener, a device with PASID enabled)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="pasid_users")
    device_bdf = models.CharField(max_length=limits.PASID_DEVICE, null=True, blank=True)
    pid = models.IntegerField(null=True, blank=True)
    source = models.CharField(max_length=limits.PASID_SOURCE)

    class Meta:
        ordering = ["host", "device_bdf", "pid"]
