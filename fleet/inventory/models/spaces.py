"""I/O address spaces: each VFIO type1 container and each iommufd context a holder has open, and what it maps.

Derived at apply time by the ownership model (`agent.ownership`), not sent by the agent: rows keep the
model's field names. Which groups or devices are attached is proven only where the kernel shows it; the
`certainty` of each attachment and the space's `attachment_known` say how much is known.
"""
from django.db import models

from .. import limits
from .hosts import Host


class AddressSpace(models.Model):
    """One container or iommufd fd of one holder."""

    class Backend(models.TextChoices):
        LEGACY = "legacy", "legacy VFIO container (type1)"
        IOMMUFD = "iommufd", "iommufd"

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="address_spaces")
    key = models.CharField(max_length=limits.ADDRESS_SPACE_KEY)  # "<pid>:<fd>" (or "<pid>:<kind>" when the fd number is unknown)
    pid = models.IntegerField()
    fd = models.IntegerField(null=True, blank=True)
    kind = models.CharField(max_length=limits.ADDRESS_SPACE_KIND)  # "vfio-container" | "iommufd"
    backend = models.CharField(max_length=limits.ADDRESS_SPACE_KIND, choices=Backend.choices, db_index=True)
    attachment_known = models.BooleanField(default=True)
    pinned_kb = models.BigIntegerField(null=True, blank=True)
    locked_kb = models.BigIntegerField(null=True, blank=True)
    # The holder's VM or workload name, as a device's owner_vm: what tenants are matched on.
    vm = models.CharField(max_length=limits.VM_NAME, null=True, blank=True, db_index=True)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "pid", "key"]
        constraints = [models.UniqueConstraint(fields=["host", "key"], name="%(app_label)s_%(class)s_unique_host_key")]


class Attachment(models.Model):
    """A group or a device attached to an address space, with how certain that is (kernel / argv / inferred)."""

    host = models.ForeignKey(Host, on_delete=models.CASCADE, related_name="attachments")
    key = models.CharField(max_length=limits.ATTACHMENT_KEY)  # "<space>/group/<n>" or "<space>/device/<bdf>"
    space = models.CharField(max_length=limits.ADDRESS_SPACE_KEY)  # the AddressSpace's key on the same host
    group_number = models.IntegerField(null=True, blank=True)
    device_bdf = models.CharField(max_length=limits.BDF, null=True, blank=True)
    certainty = models.CharField(max_length=limits.CERTAINTY)
    fingerprint = models.CharField(max_length=32, blank=True, default="", editable=False)

    class Meta:
        ordering = ["host", "key"]
        constraints = [models.UniqueConstraint(fields=["host", "key"], name="%(app_label)s_%(class)s_unique_host_key")]
        indexes = [models.Index(fields=["host", "device_bdf"], name="inventory_attach_bdf_idx"),
                   models.Index(fields=["host", "space"], name="inventory_attach_space_idx")]
