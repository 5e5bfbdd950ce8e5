"""The data migration for rows applied before schema 2 was stored gives what an apply of the same snapshot gives."""
import copy
import importlib

import pytest
from django.apps import apps
from django.utils import timezone

from fleet.inventory.models import AddressSpace, Attachment, Change, Device, Holder, Host
from fleet.inventory.services import host_state_replace
from tests.inventory.documents import document_of
from tests.iommufd_captures import iommufd_capture  # noqa: F401

pytestmark = pytest.mark.django_db
backfill = importlib.import_module("fleet.inventory.migrations.0005_backfill_schema2").backfill


def as_schema_1(doc: dict) -> dict:
    """What an agent before schema 2 sent for the same host: none of the facts schema 2 added."""
    out = copy.deepcopy(doc)
    out["schema"] = 1
    for holder in out.get("holders", []):
        for key in ("fds", "claims", "vm_locked_kb"):
            holder.pop(key, None)
    for key in ("cdev_support", "modules"):
        out.get("vfio", {}).pop(key, None)
    out.get("host", {}).pop("software", None)
    for device in (out.get("pasid") or {}).get("idxd") or []:
        for wq in device.get("wqs") or []:
            wq.pop("clients", None)
    return out


def stored(host):
    return {
        "holders": list(Holder.objects.filter(host=host).order_by("pid").values("pid", "fds", "claims", "devices")),
        "spaces": list(AddressSpace.objects.filter(host=host).order_by("key").values(
            "key", "pid", "fd", "kind", "backend", "attachment_known", "pinned_kb", "locked_kb", "vm")),
        "attachments": list(Attachment.objects.filter(host=host).order_by("key").values("key", "space", "group_number", "device_bdf", "certainty")),
        "cdevs": dict(Device.objects.filter(host=host, cdev__isnull=False).values_list("bdf", "cdev")),
    }


@pytest.mark.parametrize("name", ["shared-group-all-vfio", "no-iommu", "iommufd-two-devices-one-ioas", "cdev-world-writable"])
def test_backfilled_rows_equal_a_fresh_apply_and_the_next_apply_records_nothing(capture, iommufd_capture, name):
    root = iommufd_capture(name) if name.startswith(("iommufd", "cdev")) else capture(name)
    # The host was applied before the upgrade, from what its agent then sent.
    doc = as_schema_1(document_of(root, seq=1, hostname="h"))
    host = Host.objects.create(hostname="h")
    host_state_replace(host=host, document=doc, snapshot_id=1, seq=1, at=timezone.now())
    want = stored(host)
    # What a host applied before the upgrade holds: schema 1's holder lists, no fds, claims, cdevs or spaces.
    for h, original in zip(Holder.objects.filter(host=host).order_by("pid"), sorted(doc["holders"], key=lambda h: h["pid"])):
        h.fds, h.claims, h.devices = [], [], original["devices"]
        h.save()
    AddressSpace.objects.filter(host=host).delete()
    Attachment.objects.filter(host=host).delete()
    Device.objects.filter(host=host).update(cdev=None)
    backfill(apps, None)
    assert stored(host) == want
    assert want["holders"] and (want["spaces"] or name == "no-iommu")
    again = host_state_replace(host=Host.objects.get(pk=host.pk), document=as_schema_1(document_of(root, seq=2, hostname="h")),
                               snapshot_id=2, seq=2, at=timezone.now())
    assert again.changes == [] and not Change.objects.filter(host=host, snapshot_id=2).exists()
