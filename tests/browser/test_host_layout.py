"""The host page at 1280x800: the holder column is on screen at once, without scrolling sideways."""
import pytest

from fleet.inventory.models import Holder
from tests.accounts.fleet_data import import_capture
from tests.browser.conftest import screenshot
from tests.browser.test_pages import open_host

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

# The drawing's <svg> clips what lies past its box, so "on screen" means inside #topology, not only the window.
LAYOUT = """() => {
  const box = (el) => { const b = el.getBoundingClientRect(); return { x0: b.left, y0: b.top, x1: b.right, y1: b.bottom }; };
  return {
    scrollX: window.scrollX, scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth,
    area: box(document.getElementById('topology')),
    holders: [...document.querySelectorAll('#topology .holder')].map((h) => ({
      pill: box(h.querySelector('rect')), texts: [...h.querySelectorAll('text')].map(box) })),
    others: [...document.querySelectorAll('#topology [data-bdf], #topology [data-aggregate], #topology .group-shape')].map(box),
  };
}"""


def overlap(a, b):
    return a["x0"] < b["x1"] and b["x0"] < a["x1"] and a["y0"] < b["y1"] and b["y0"] < a["y1"]


def assert_first_holder_on_screen(page):
    got = page.evaluate(LAYOUT)
    assert got["holders"], "the drawing has a holder column"
    assert got["scrollX"] == 0 and got["scrollWidth"] <= got["innerWidth"]
    first = got["holders"][0]["pill"]
    assert 0 <= first["x0"] and first["x1"] <= got["innerWidth"]
    assert got["area"]["x0"] <= first["x0"] and first["x1"] <= got["area"]["x1"], (first, got["area"])
    assert got["area"]["y0"] <= first["y0"] and first["y1"] <= got["area"]["y1"], (first, got["area"])
    # Readable: no holder covers a device, an aggregate or a group box, and its labels stay inside its pill.
    for h in got["holders"]:
        assert not [o for o in got["others"] if overlap(h["pill"], o)], h
        assert all(h["pill"]["x0"] <= t["x0"] and t["x1"] <= h["pill"]["x1"] for t in h["texts"]), h


def test_a_large_hosts_holder_column_is_on_screen_at_1280x800(page):
    from fleet.demo.synth import large_host
    from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

    doc = large_host(480)
    assert doc["holders"]
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    assert page.viewport_size == {"width": 1280, "height": 800}
    open_host(page, host.hostname)
    assert_first_holder_on_screen(page)
    screenshot(page, "host-large-holders")
    # Reset zoom comes back to the same first view.
    page.mouse.move(300, 500)
    page.mouse.wheel(0, 600)
    page.click("#topo-reset")
    assert_first_holder_on_screen(page)


@pytest.mark.parametrize("name", ["isolated-nics", "sriov-nvme"])
def test_a_small_captures_holder_column_is_on_screen_at_1280x800(page, capture, name):
    host = import_capture(capture(name))
    assert Holder.objects.filter(host=host).exists()
    open_host(page, host.hostname)
    assert_first_holder_on_screen(page)
