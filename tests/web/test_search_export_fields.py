"""Search results and their exports carry the tenant (as the policy intent attributes the VM), the holder's
pid and the group size, with absolute links (an export leaves the dashboard)."""
import csv
import io

import pytest
from django.urls import reverse

from fleet.inventory.models import Device, Group, Host
from fleet.policy.intent import Intent, Tenant
from fleet.policy.services import intent_replace

pytestmark = pytest.mark.django_db


@pytest.fixture
def assigned(db):
    """Hand-made: two functions in one group, one held by a VM of tenant acme (pid 4242), one by nobody."""
    host = Host.objects.create(hostname="exp-01")
    group = Group.objects.create(host=host, number=7, type="DMA")
    for bdf, vm, pid in (("0000:3b:00.0", "acme-vm1", 4242), ("0000:3b:00.1", None, None)):
        Device.objects.create(host=host, bdf=bdf, vendor_id="10de", device_id="1db6", class_code="030200",
                              driver="vfio-pci", group=group, group_number=7, owner_kind="userspace",
                              owner_vm=vm, owner_pid=pid, path=f"pci0000:3a/{bdf}")
    intent_replace(intent=Intent(tenants=(Tenant(name="acme", vm_patterns=("acme-*",)),)), source="test", summary="t")
    return host


def test_the_csv_export_names_tenant_holder_and_group_size_with_absolute_links(viewer_client, assigned):
    body = viewer_client.get(reverse("web:search-export-csv") + "?q=host:exp-01").content.decode()
    rows = {r["bdf"]: r for r in csv.DictReader(io.StringIO(body))}
    held = rows["0000:3b:00.0"]
    assert (held["tenant"], held["holder_pid"], held["vm"]) == ("acme", "4242", "acme-vm1")
    assert rows["0000:3b:00.1"]["tenant"] == "" and rows["0000:3b:00.1"]["holder_pid"] == ""
    size = Device.objects.filter(group__host=assigned, group__number=7).count()
    assert {r["group_size"] for r in rows.values()} == {str(size)}
    assert all(r["link"].startswith("http://testserver/hosts/exp-01/?focus=") for r in rows.values())


def test_the_results_page_shows_the_tenant_and_the_holder(viewer_client, assigned):
    html = viewer_client.get(reverse("web:search") + "?q=host:exp-01").content.decode()
    assert "acme" in html and "pid 4242" in html
