"""The "Address spaces & PASIDs" page in Chromium: what the database holds, hostile names as text."""
import pytest

from fleet.demo.services import demo_intent_load
from fleet.demo.synth import host as demo_host
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import AddressSpace, Holder, Host
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

HOSTILE_HOST = "<script>alert(1)</script>"
HOSTILE_VM = "<img src=x onerror=alert(2)>"


def test_the_page_lists_every_stored_host_and_its_vms_by_backend_with_hostile_names_as_text(page):
    demo_intent_load()
    for i in (0, 10):
        doc = demo_host(i)
        host, _ = host_token_create(hostname=doc["host"]["hostname"])
        snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    evil = Host.objects.create(hostname=HOSTILE_HOST, kernel="6.12.0", vfio_iommufd=True, vfio_cdev_support=True)
    Holder.objects.create(host=evil, pid=5, name="qemu", kind="qemu", vm=HOSTILE_VM)
    AddressSpace.objects.create(host=evil, key="5:9", pid=5, fd=9, kind="iommufd", backend="iommufd", vm=HOSTILE_VM)
    page.goto("/")
    page.get_by_role("link", name="Address spaces & PASIDs").click()
    page.wait_for_selector("table.migration-table")
    rows = page.locator("table.migration-table tbody tr[data-host]")
    assert sorted(rows.nth(i).get_attribute("data-host") for i in range(rows.count())) == sorted(
        Host.objects.values_list("hostname", flat=True))
    for hostname in Host.objects.values_list("hostname", flat=True):
        for backend in ("legacy", "iommufd"):
            cell = page.locator(f'tr[data-host="{hostname}"] td[data-backend="{backend}"]')
            pids = AddressSpace.objects.filter(host__hostname=hostname, backend=backend).values("pid").distinct().count()
            assert cell.get_attribute("data-count") == str(pids), (hostname, backend)
    evil_row = page.locator('tr[data-host="<script>alert(1)</script>"]')
    assert evil_row.locator("th a").inner_text() == HOSTILE_HOST
    assert evil_row.locator('td[data-backend="iommufd"] .vm').inner_text() == HOSTILE_VM
    assert evil_row.get_attribute("data-readiness") == "ready"
    assert page.locator("main img").count() == 0 and page.locator("main script").count() == 0
    assert page.dialogs == []
    screenshot(page, "address-spaces-page")
    page.select_option('select[name="backend"]', "iommufd")
    page.click("form.filters button[type=submit]")
    page.wait_for_selector("table.migration-table")
    shown = {rows.nth(i).get_attribute("data-host") for i in range(rows.count())}
    assert shown == set(AddressSpace.objects.filter(backend="iommufd").values_list("host__hostname", flat=True))
