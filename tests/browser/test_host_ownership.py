"""The host drawing's ownership layer in Chromium: mdevs and their VMs, group viability, holders' tenants."""
import pytest

from fleet.demo.synth import host as demo_host
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import Mdev
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import find_groups
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

VDI_HOST = 12  # the demo's vdi host: 54 mdevs of 8 T4s, each held by one VM


def open_host(page, hostname, query=""):
    page.goto(f"/hosts/{hostname}/{query}")
    page.wait_for_selector("#topology[data-state=ready]")


def test_every_stored_mdev_is_drawn_and_selecting_one_names_its_vm(page):
    doc = demo_host(VDI_HOST)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    open_host(page, host.hostname)
    stored = dict(Mdev.objects.filter(host=host).values_list("uuid", "group_number"))
    drawn = {el.get_attribute("data-mdev") for el in page.locator("#topology [data-mdev]").all()}
    assert drawn == set(stored)
    screenshot(page, "host-vdi-mdevs", full_page=False)
    uuid = sorted(stored)[0]
    vm = next(h["vm"] for h in doc["holders"] if stored[uuid] in h["groups"])
    page.locator(f'[data-mdev="{uuid}"]').focus()
    page.keyboard.press("Enter")
    panel = page.locator("#side-panel")
    assert panel.locator("h2").inner_text() == f"Mediated device {uuid}"
    assert vm in panel.inner_text()
    # Its VM's pill is drawn, with an edge from the mdev.
    assert page.locator(".holder .holder-name", has_text=vm[:20]).count() == 1


def test_a_group_panel_says_not_viable_and_why_on_the_bridge_capture(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    (gid,) = {g for g, b in find_groups(capture("shared-bridge-group")) if b == "0000:02:02.0"}
    open_host(page, host.hostname)
    page.locator(f'#topology [data-group="{gid}"]').first.focus()
    page.keyboard.press("Enter")
    block = page.locator("#side-panel .group-viability")
    assert block.get_attribute("data-viable") == "false"
    assert block.locator("h3").inner_text() == "Not viable"
    assert "0000:02:02.0 is on e1000" in block.inner_text()
    assert "PCIe-to-PCI bridge" in block.locator(".why-shared").inner_text()
    screenshot(page, "host-group-not-viable", full_page=False)
