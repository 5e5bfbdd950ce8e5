"""The dashboard in a real browser, over real captures imported through the ingest path."""
import re
from pathlib import Path

import pytest

from fleet.inventory.models import Device, Group, Holder, Host
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import find_groups, lspci_drivers
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def open_host(page, hostname, query=""):
    page.goto(f"/hosts/{hostname}/{query}")
    page.wait_for_selector("#topology[data-state=ready]")


def centre_offset(page, selector):
    box = page.locator(selector).first.bounding_box()
    area = page.locator("#topology").bounding_box()
    return (abs(box["x"] + box["width"] / 2 - (area["x"] + area["width"] / 2)),
            abs(box["y"] + box["height"] / 2 - (area["y"] + area["height"] / 2)))


@pytest.mark.parametrize("name", ["shared-bridge-group", "sriov-nvme"])
def test_host_page_draws_every_device_and_group_of_the_database(page, capture, name):
    host = import_capture(capture(name))
    open_host(page, host.hostname)
    assert page.locator("[data-bdf]").count() == Device.objects.filter(host=host).count() == len(lspci_drivers(capture(name)))
    assert page.locator("[data-group]").count() == Group.objects.filter(host=host).count()
    assert page.locator("[data-aggregate]").count() == 0
    screenshot(page, f"host-{name}")


def test_clicking_a_device_shows_its_lspci_driver_and_the_mixed_group_is_highlighted(page, capture):
    root = capture("shared-bridge-group")
    host = import_capture(root)
    open_host(page, host.hostname)
    truth = lspci_drivers(root)
    page.click('[data-bdf="0000:02:02.0"]')
    panel = page.locator("#side-panel")
    assert panel.locator("h2").inner_text() == "Device 0000:02:02.0"
    facts = panel.locator("dl.facts").inner_text()
    assert re.search(rf"Driver\s+{re.escape(truth['0000:02:02.0']['driver'])}\n", facts)
    group = {g for g, b in find_groups(root) if b == "0000:02:01.0"}.pop()
    highlighted = page.locator('[data-violation="group-mixed-ownership"]')
    assert highlighted.count() == 1
    assert highlighted.get_attribute("data-group") == str(group)
    # Keyboard: Tab to the highlighted group and press Enter to open its facts.
    highlighted.focus()
    page.keyboard.press("Enter")
    assert panel.locator("h2").inner_text() == f"IOMMU group {group}"
    assert "group-mixed-ownership" in panel.inner_text()


def test_focus_parameter_and_search_box_centre_a_device(page, capture):
    host = import_capture(capture("sriov-nvme"))
    vf = Device.objects.filter(host=host, physfn_bdf__isnull=False).order_by("bdf").first()
    open_host(page, host.hostname, f"?focus={vf.bdf}")
    dx, dy = centre_offset(page, f'[data-bdf="{vf.bdf}"] .shape')
    assert dx < 30 and dy < 30
    assert page.locator("#side-panel h2").inner_text() == f"Device {vf.bdf}"
    other = Device.objects.filter(host=host, driver="e1000e").first()
    page.fill("#topo-q", other.bdf[5:])
    page.click("#topo-search button")
    page.wait_for_timeout(500)  # the centring transition
    dx, dy = centre_offset(page, f'[data-bdf="{other.bdf}"] .shape')
    assert dx < 30 and dy < 30
    assert f"focus={other.bdf}" in page.url.replace("%3A", ":")


def test_fleet_page_filters_by_severity(page, capture):
    import_capture(capture("shared-bridge-group"))
    import_capture(capture("isolated-nics"))
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    assert page.locator("tbody tr[data-host]").count() == 2
    screenshot(page, "fleet")
    page.select_option("#filter-severity", "critical")
    page.click("form.filters button[type=submit]")
    rows = page.locator("tbody tr[data-host]")
    assert [rows.nth(i).get_attribute("data-host") for i in range(rows.count())] == ["cap-shared-bridge-group"]


def test_large_host_folds_into_counted_aggregates_and_expands(page):
    from fleet.demo.synth import large_host
    from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

    doc = large_host(480)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    total = Device.objects.filter(host=host).count()
    assert total >= 480
    open_host(page, host.hostname)
    drawn = page.locator("[data-bdf]").count()
    counted = sum(int(a.get_attribute("data-count")) for a in page.locator("[data-aggregate]").all())
    assert drawn + counted == total
    assert drawn + page.locator("[data-aggregate]").count() < 200  # bounded, whatever the host
    screenshot(page, "host-large")
    aggregate = page.locator("[data-aggregate]").first
    n = int(aggregate.get_attribute("data-count"))
    aggregate.focus()
    page.keyboard.press("Enter")
    page.wait_for_selector("#topology[data-state=ready]")
    assert page.locator("[data-bdf]").count() > drawn
    counted_after = sum(int(a.get_attribute("data-count")) for a in page.locator("[data-aggregate]").all())
    assert page.locator("[data-bdf]").count() + counted_after == total and counted_after <= counted - n + n


HOSTILE_HOST = "<script>alert(1)</script>"
HOSTILE_VM = "<img src=x onerror=alert(1)>"
HOSTILE_DRIVER = "<img src=x onerror=alert(2)>"


def test_hostile_hostname_vm_and_device_strings_render_as_text(page):
    # Hand-made: no capture has a hostile agent; it stands for a host whose hostname, QEMU -name and driver are attacker-chosen.
    host = Host.objects.create(hostname=HOSTILE_HOST, kernel="6.1.0", device_count=1, group_count=1, assigned_count=1)
    group = Group.objects.create(host=host, number=3, type="DMA")
    Device.objects.create(host=host, bdf="0000:02:00.0", vendor_id="8086", device_id="10d3", class_code="020000",
                          driver=HOSTILE_DRIVER, group=group, group_number=3, owner_kind="userspace",
                          owner_vm=HOSTILE_VM, path="pci0000:00/0000:02:00.0")
    Holder.objects.create(host=host, pid=77, name="qemu", kind="qemu", vm=HOSTILE_VM, devices=["0000:02:00.0"], groups=[3])
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    assert page.locator("tbody th a").first.inner_text() == HOSTILE_HOST
    page.click("tbody th a")
    page.wait_for_selector("#topology[data-state=ready]")
    assert page.locator("#host-name").inner_text() == HOSTILE_HOST
    assert page.locator(".holder title").first.text_content().startswith(HOSTILE_VM)
    assert HOSTILE_VM.startswith(page.locator(".holder-name").first.text_content().rstrip("…"))
    page.click('[data-bdf="0000:02:00.0"]')
    facts = page.locator("#side-panel dl.facts").inner_text()
    assert HOSTILE_DRIVER in facts and HOSTILE_VM in facts
    page.goto("/search/?q=vm:*")
    assert HOSTILE_VM in page.locator("table.results").inner_text()
    page.wait_for_timeout(200)
    assert page.dialogs == []
    assert page.locator("img[src=x]").count() == 0 and page.locator("script:not([src]):not([type])").count() == 0


def _svg_limit() -> int:
    """The host count above which static/js/charts/tiles.js draws a canvas, read from the JS itself."""
    text = (Path(__file__).resolve().parents[2] / "static/js/charts/tiles.js").read_text()
    return int(re.search(r"SVG_LIMIT = (\d+)", text).group(1))


def test_fleet_tiles_switch_to_one_canvas_for_a_big_fleet_and_a_click_opens_the_host(page):
    n = _svg_limit() + 100
    Host.objects.bulk_create([Host(hostname=f"tile-{i:05d}") for i in range(n)])
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    assert page.locator("#fleet-tiles canvas").count() == 1
    assert page.locator("#fleet-tiles a").count() == 0
    box = page.locator("#fleet-tiles canvas").bounding_box()
    page.mouse.click(box["x"] + 2, box["y"] + 2)  # the first tile: hosts are in hostname order
    page.wait_for_url("**/hosts/tile-00000/")
