"""The host drawing's layout, keyboard use and CSP, in Chromium over the real captures."""
import pytest

from fleet.inventory.models import Device, Group
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import find_groups
from tests.browser.conftest import csp_violations, screenshot
from tests.conftest import CAPTURE_NAMES

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

GROUP_RECTS = """() => [...document.querySelectorAll('#topology [data-group] .group-shape')].map((r) => {
  const b = r.getBoundingClientRect();
  return { group: r.parentNode.getAttribute('data-group'), x0: b.left, y0: b.top, x1: b.right, y1: b.bottom };
})"""


def open_host(page, hostname, query=""):
    page.goto(f"/hosts/{hostname}/{query}")
    page.wait_for_selector("#topology[data-state=ready]")


def overlapping(rects):
    return [(a["group"], b["group"]) for i, a in enumerate(rects) for b in rects[i + 1:]
            if a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_no_two_group_shapes_overlap_on_any_capture_host(page, capture, name):
    host = import_capture(capture(name))
    open_host(page, host.hostname)
    rects = page.evaluate(GROUP_RECTS)
    assert len(rects) == len({g for g, _ in find_groups(capture(name))}) == Group.objects.filter(host=host).count()
    assert overlapping(rects) == []
    # Each group's box holds every member's symbol: a member outside its box would read as another group's.
    for g in rects:
        for bdf in [b for gid, b in find_groups(capture(name)) if str(gid) == g["group"]]:
            box = page.locator(f'[data-bdf="{bdf}"] .shape').bounding_box()
            cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
            assert g["x0"] <= cx <= g["x1"] and g["y0"] <= cy <= g["y1"], (g["group"], bdf)


def _large_host(assigned_only=False):
    from fleet.demo.synth import large_host
    from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

    doc = large_host(480)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    return host


def test_a_large_host_first_shows_assigned_devices_and_expanded_groups_never_overlap(page):
    # The synthetic 480-device host stands for a DGX-class machine (built from a real hwloc PCI tree).
    host = _large_host()
    assigned = set(Device.objects.filter(host=host, owner_kind="userspace").values_list("bdf", flat=True))
    assert assigned
    open_host(page, host.hostname)
    drawn = {el.get_attribute("data-bdf") for el in page.locator("[data-bdf]").all()}
    assert drawn & assigned, "the first view draws some of the devices assigned to VMs, not only aggregates"
    assert len(drawn) <= 130
    assert overlapping(page.evaluate(GROUP_RECTS)) == []
    screenshot(page, "host-large-first-view")
    page.click("#topo-expand-all")
    page.wait_for_selector("#topology[data-state=ready]")
    rects = page.evaluate(GROUP_RECTS)
    assert len(rects) == Group.objects.filter(host=host).count()
    assert overlapping(rects) == []


def test_keyboard_only_tab_to_a_device_enter_shows_it_and_escape_closes(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    open_host(page, host.hostname)
    panel = page.locator("#side-panel")
    assert panel.get_attribute("aria-live") == "polite"
    page.locator("body").focus()
    for _ in range(80):
        page.keyboard.press("Tab")
        bdf = page.evaluate("document.activeElement && document.activeElement.getAttribute('data-bdf')")
        if bdf:
            break
    assert bdf in set(Device.objects.filter(host=host).values_list("bdf", flat=True))
    # The focus ring: the focused device's symbol gets a thick dark outline and a highlighted box behind its label.
    width = page.evaluate("parseFloat(getComputedStyle(document.activeElement.querySelector('.shape')).strokeWidth)")
    assert width >= 3
    ring = page.evaluate("getComputedStyle(document.activeElement.querySelector('.focus-ring')).display")
    assert ring != "none"
    assert page.locator(".focus-ring:visible").count() == 1
    page.keyboard.press("Enter")
    assert panel.locator("h2").inner_text() == f"Device {bdf}"
    page.keyboard.press("Escape")
    assert panel.locator("h2").inner_text() == "Details"
    assert page.evaluate("document.activeElement.getAttribute('data-bdf')") == bdf
    assert "focus=" not in page.url
    page.keyboard.press(" ")
    assert panel.locator("h2").inner_text() == f"Device {bdf}"


def test_the_host_page_draws_and_is_used_with_zero_csp_violations(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    response = page.goto(f"/hosts/{host.hostname}/")
    policy = response.headers.get("content-security-policy", "")
    assert "script-src" in policy and "unsafe-inline" not in policy
    page.wait_for_selector("#topology[data-state=ready]")
    device = Device.objects.filter(host=host).order_by("bdf").last().bdf
    page.click(f'[data-bdf="{device}"]')
    page.check('input[name="view"][value="groups"]')
    page.wait_for_selector("#topology .groups-svg")
    page.check('input[name="view"][value="tree"]')
    page.fill("#topo-q", device[5:])
    page.click("#topo-search button")
    page.keyboard.press("Escape")
    page.wait_for_timeout(300)
    assert csp_violations(page) == []
    assert page.csp == []


def test_a_skip_link_before_the_drawing_shows_on_focus_and_jumps_past_it(page, capture):
    host = import_capture(capture("shared-bridge-group"))
    open_host(page, host.hostname)
    skip = page.locator("a.skip-drawing")
    assert skip.inner_text() == "Skip the drawing"
    hidden = skip.bounding_box()
    assert hidden["x"] + hidden["width"] <= 0, "off screen until focused"
    page.locator("#topo-fit").focus()  # the toolbar's last control
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.classList.contains('skip-drawing')")
    shown = skip.bounding_box()
    drawing = page.locator(".drawing-wrap").bounding_box()
    assert drawing["x"] <= shown["x"] and shown["x"] + shown["width"] <= drawing["x"] + drawing["width"]
    assert drawing["y"] <= shown["y"] < drawing["y"] + drawing["height"]
    screenshot(page, "host-skip-link-focused")
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "side-panel"
    page.keyboard.press("Tab")
    assert not page.evaluate("document.getElementById('topology').contains(document.activeElement)")
    # The link's target is the panel, not a group: the drawing keeps its view and nothing is selected.
    assert page.locator("#side-panel h2").first.inner_text() == "Details"


TAB_STOP = """() => { const el = document.activeElement;
  if (!document.getElementById('topology').contains(el)) return null;
  return el.getAttribute('data-bdf') ? 'dev:' + el.getAttribute('data-bdf')
       : el.getAttribute('data-group') ? 'grp:' + el.getAttribute('data-group') : 'other'; }"""


@pytest.mark.parametrize("name", ["shared-bridge-group", "sriov-nvme"])
def test_tab_visits_each_group_and_then_its_devices_not_every_group_first(page, capture, name):
    host = import_capture(capture(name))
    truth = find_groups(capture(name))  # (group, BDF) from `find /sys/kernel/iommu_groups` in the same boot
    group_of = {bdf: str(gid) for gid, bdf in truth}
    open_host(page, host.hostname)
    page.locator("a.skip-drawing").focus()
    stops = []
    for _ in range(4 * len(truth) + 20):
        page.keyboard.press("Tab")
        stop = page.evaluate(TAB_STOP)
        if stop is None:
            break
        stops.append(stop)
    devices = [s[4:] for s in stops if s.startswith("dev:")]
    groups = [s[4:] for s in stops if s.startswith("grp:")]
    assert sorted(devices) == sorted(group_of) and sorted(groups) == sorted({str(g) for g, _ in truth})
    for i, stop in enumerate(stops):
        if stop.startswith("grp:"):
            # A group's shape is followed by one of its own devices, and comes before all of them.
            assert stops[i + 1].startswith("dev:") and group_of[stops[i + 1][4:]] == stop[4:], stops
            assert all(stops.index(f"dev:{b}") > i for b, g in group_of.items() if g == stop[4:]), stops
