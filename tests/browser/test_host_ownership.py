"""The host drawing's ownership layer in Chromium: mdevs and their VMs, group viability, holders' tenants."""
import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.demo.synth import host as demo_host
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import AddressSpace, Attachment, Device, Group, Holder, Host, Mdev
from tests.accounts.fleet_data import a_violation, import_capture
from tests.agent.groundtruth import find_groups
from tests.browser.conftest import screenshot
from tests.iommufd_captures import NAMES as IOMMUFD_NAMES
from tests.iommufd_captures import cdevs, iommufd_capture, iommufd_contexts  # noqa: F401 (iommufd_capture: a fixture)

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
    assert "not viable" in page.locator(f'#topology [data-group="{gid}"]').first.get_attribute("aria-label")
    page.check('input[name="view"][value="groups"]')
    page.wait_for_selector("#topology .groups-svg")
    assert "not viable" in page.locator(f'#topology [data-group="{gid}"] .group-title').text_content()
    # The other groups' members all stay on host drivers: nothing claims them, so the drawing does not flag them.
    others = [g for g, _ in find_groups(capture("shared-bridge-group")) if g != gid]
    assert all("not viable" not in page.locator(f'#topology [data-group="{g}"]').first.get_attribute("aria-label")
               for g in others)
    screenshot(page, "host-groups-view-not-viable", full_page=False)


def _demo(index):
    doc = demo_host(index)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    return doc, host


NFV_BOTH_BACKENDS = 10  # the demo's nfv host on 6.8: DPDK and VNF VMs, some through iommufd cdevs, some on containers


def stored_attachments(host) -> list[tuple[str, str, str]]:
    """(space key, "device <bdf>" | "group <n>", certainty) of the host's Attachment rows, read from the database."""
    return sorted((space, f"device {bdf}" if bdf else f"group {group}", certainty) for space, bdf, group, certainty
                  in Attachment.objects.filter(host=host).values_list("space", "device_bdf", "group_number", "certainty"))


def drawn_layer(page):
    return page.evaluate("""() => ({
      spaces: [...document.querySelectorAll('#topology [data-space]')].map((e) => e.getAttribute('data-space')),
      attachments: [...document.querySelectorAll('#topology [data-space-of]')].map((e) =>
        [e.getAttribute('data-space-of'), e.getAttribute('data-attached'), e.getAttribute('data-certainty')]),
    })""")


def test_the_address_space_layer_draws_exactly_the_stored_spaces_and_attachments(page):
    _doc, host = _demo(NFV_BOTH_BACKENDS)
    spaces = set(AddressSpace.objects.filter(host=host).values_list("key", flat=True))
    attachments = stored_attachments(host)
    assert {"legacy", "iommufd"} <= set(AddressSpace.objects.filter(host=host).values_list("backend", flat=True))
    assert attachments
    open_host(page, host.hostname)
    got = drawn_layer(page)
    assert sorted(got["spaces"]) == sorted(spaces)
    assert sorted(map(tuple, got["attachments"])) == attachments
    screenshot(page, "host-address-spaces", full_page=False)


def test_keyboard_tab_reaches_an_address_space_enter_reads_it_in_the_panel_escape_returns(page):
    _doc, host = _demo(NFV_BOTH_BACKENDS)
    space = AddressSpace.objects.filter(host=host, backend="iommufd").order_by("key").first()
    mapped = sorted((what, c) for sp, what, c in stored_attachments(host) if sp == space.key)
    open_host(page, host.hostname)
    panel = page.locator("#side-panel")
    assert panel.get_attribute("aria-live") == "polite"
    page.locator("body").focus()
    key = None
    for _ in range(200):
        page.keyboard.press("Tab")
        key = page.evaluate("document.activeElement && document.activeElement.getAttribute('data-space')")
        if key == space.key:
            break
    assert key == space.key, "Tab reaches the address space"
    assert page.evaluate("getComputedStyle(document.activeElement.querySelector('.focus-ring')).display") != "none"
    page.keyboard.press("Enter")
    fd = f" fd {space.fd}" if space.fd is not None else ""  # a schema 1 agent sends no fd numbers
    assert panel.locator("h2").inner_text() == f"Address space: iommufd{fd} of pid {space.pid}"
    assert sorted((e.get_attribute("data-attached"), e.get_attribute("data-certainty"))
                  for e in panel.locator("[data-attached]").all()) == mapped
    assert "iommufd context" in panel.inner_text()
    screenshot(page, "host-address-space-panel", full_page=False)
    page.keyboard.press("Escape")
    assert panel.locator("h2").inner_text() == "Details"
    assert page.evaluate("document.activeElement.getAttribute('data-space')") == space.key


HOSTILE_VM = "<img src=x onerror=alert(3)>"


def test_unknown_attachments_are_drawn_as_unknown_and_hostile_names_stay_text(page):
    # Hand-made rows: a holder with two iommufd contexts (the ownership model cannot tell which maps what) whose
    # VM name is attacker-chosen. No capture has such a holder yet.
    host = Host.objects.create(hostname="hand-two-contexts", kernel="6.12.0", device_count=1, group_count=1, assigned_count=1)
    group = Group.objects.create(host=host, number=7, type="DMA")
    Device.objects.create(host=host, bdf="0000:02:00.0", vendor_id="8086", device_id="10d3", class_code="020000",
                          driver="vfio-pci", group=group, group_number=7, owner_kind="userspace", cdev="vfio0",
                          owner_vm=HOSTILE_VM, path="pci0000:00/0000:02:00.0")
    Holder.objects.create(host=host, pid=90, name="qemu", kind="qemu", vm=HOSTILE_VM, devices=["0000:02:00.0"],
                          nodes=["/dev/iommu", "/dev/vfio/devices/vfio0"])
    for fd in (20, 21):
        AddressSpace.objects.create(host=host, key=f"90:{fd}", pid=90, fd=fd, kind="iommufd", backend="iommufd",
                                    attachment_known=False, vm=HOSTILE_VM)
    open_host(page, host.hostname)
    assert sorted(drawn_layer(page)["spaces"]) == ["90:20", "90:21"]
    assert drawn_layer(page)["attachments"] == []
    unknown = page.locator("#topology .space.attachment-unknown")
    assert unknown.count() == 2
    assert "attachments unknown" in unknown.first.locator(".sub").text_content()
    assert page.locator('#topology .space-shape[stroke-dasharray]').count() == 2
    unknown.first.focus()
    page.keyboard.press("Enter")
    text = page.locator("#side-panel").inner_text()
    assert "unknown: this holder has several address spaces" in text and HOSTILE_VM in text
    assert page.locator("#side-panel img").count() == 0 and page.locator("#topology img").count() == 0
    page.locator('[data-bdf="0000:02:00.0"]').focus()
    page.keyboard.press("Enter")
    assert "/dev/vfio/devices/vfio0" in page.locator("#side-panel").inner_text()
    assert page.dialogs == []


@pytest.mark.parametrize("name", IOMMUFD_NAMES)
def test_on_the_612_iommufd_captures_the_layer_draws_each_context_the_holder_logs_opened(page, iommufd_capture, name):
    root = iommufd_capture(name)
    doc = build(Root.of(root), seq=1)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    open_host(page, host.hostname)
    got = drawn_layer(page)
    assert sorted(got["spaces"]) == sorted(AddressSpace.objects.filter(host=host).values_list("key", flat=True))
    assert sorted(map(tuple, got["attachments"])) == stored_attachments(host)
    # Ground truth: one drawn iommufd space per /dev/iommu context a holder's ioctl log opened, mapping what it bound.
    pids = page.evaluate("() => [...document.querySelectorAll('#topology .space.backend-iommufd')].map((e) => e.__data__.pid)")
    assert sorted(pids) == sorted(pid for pid, _fd in iommufd_contexts(root))
    for (pid, _fd), context in iommufd_contexts(root).items():
        (key,) = AddressSpace.objects.filter(host=host, pid=pid, backend="iommufd").values_list("key", flat=True)
        drawn = {what for space, what, _c in got["attachments"] if space == key and what.startswith("device ")}
        assert drawn == {f"device {b}" for b in context.bound}
    # Devices with a cdev in vfio-cdevs.txt name it in their panel.
    assert cdevs(root)
    for bdf, cdev in sorted(cdevs(root).items())[:2]:
        page.locator(f'#topology [data-bdf="{bdf}"]').focus()
        page.keyboard.press("Enter")
        assert f"/dev/vfio/devices/{cdev}" in page.locator("#side-panel").inner_text()
    screenshot(page, f"host-iommufd-{name}", full_page=False)


def test_a_violation_on_an_address_space_marks_it_and_the_violations_link_opens_it(page):
    _doc, host = _demo(NFV_BOTH_BACKENDS)
    space = AddressSpace.objects.filter(host=host).order_by("key").first()
    # A hand-made open violation (the rule's own tests are the policy's); it stands for address-space-multitenant.
    a_violation(host, rule="address-space-multitenant", severity="critical", subject_kind="address-space", subject_id=space.key)
    page.goto("/violations/")
    page.locator(".violation", has_text="address-space-multitenant").locator("a.drawlink").click()
    page.wait_for_selector("#topology[data-state=ready]")
    node = page.locator(f'#topology [data-space="{space.key}"]')
    assert node.get_attribute("data-violation") == "address-space-multitenant"
    assert "⚠" in node.locator(".space-name").text_content()
    panel = page.locator("#side-panel")
    assert panel.locator("h2").inner_text().startswith("Address space:")
    assert "address-space-multitenant" in panel.inner_text()
    screenshot(page, "host-address-space-violation", full_page=False)
