"""The host drawing: IOMMU units open a panel of their decoded features, every selection is in the address
(paste it and the same thing opens), and "Fit whole drawing" shows every node of a large host at once."""
import pytest

from fleet.inventory.models import Device, Group, Unit
from tests.accounts.fleet_data import import_capture
from tests.browser.conftest import screenshot
from tests.browser.test_pages import open_host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The panel's words for two of the agent's feature keys (static/js/components/unit_panel.js).
LABELS = {"pasid": "PASID support", "interrupt_remapping": "Interrupt remapping"}


def _shown(value) -> str:
    return {True: "yes", False: "no", None: "—"}.get(value, str(value))


def test_a_unit_opens_its_features_as_stored_and_its_address_reopens_it(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    unit = Unit.objects.filter(host=host).order_by("name").first()
    assert unit is not None, "this capture was booted with an emulated VT-d unit"
    open_host(page, host.hostname)
    page.locator(f'[data-unit="unit:{unit.name}"]').focus()  # a unit sits left of view on wide hosts: by keyboard
    page.keyboard.press("Enter")
    panel = page.locator("#side-panel")
    assert unit.name in panel.locator("h2").inner_text()
    facts = panel.locator("dl.facts").inner_text()
    for key, label in LABELS.items():
        assert f"{label}\n{_shown(unit.features.get(key))}" in facts, key
    assert page.url.endswith(f"#unit-{unit.name}")
    screenshot(page, "host-unit-panel")
    page.reload()
    page.wait_for_selector("#topology[data-state=ready]")
    assert unit.name in page.locator("#side-panel h2").inner_text()


def test_selecting_a_device_or_a_group_puts_it_in_the_address(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    device = Device.objects.filter(host=host, group__isnull=False).order_by("bdf").last()
    open_host(page, host.hostname)
    page.locator(f'[data-bdf="{device.bdf}"]').first.click()
    assert f"focus={device.bdf}" in page.url.replace("%3A", ":")
    group = Group.objects.filter(host=host).order_by("number").first()
    page.locator(f'#topology [data-group="{group.number}"]').first.focus()  # the way a keyboard user selects it
    page.keyboard.press("Enter")
    assert page.url.endswith(f"#group-{group.number}") and "focus=" not in page.url
    pasted = page.url
    page.goto("about:blank")
    page.goto(pasted)
    page.wait_for_selector("#topology[data-state=ready]")
    assert f"group {group.number}" in page.locator("#side-panel h2").inner_text().lower()


def test_fit_whole_drawing_shows_every_node_of_a_large_host(page):
    from fleet.demo.synth import large_host
    from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

    doc = large_host(480)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    open_host(page, host.hostname)
    page.click("#topo-fit")
    area = page.locator("#topology").bounding_box()
    boxes = page.locator("#topology svg .node, #topology svg .holder").evaluate_all(
        "els => els.map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; })")
    assert boxes
    slack = 2
    outside = [b for b in boxes if b[0] < area["x"] - slack or b[2] > area["x"] + area["width"] + slack
               or b[1] < area["y"] - slack or b[3] > area["y"] + area["height"] + slack]
    assert not outside, f"{len(outside)} of {len(boxes)} nodes outside the drawing's box"
    screenshot(page, "host-large-fit")
