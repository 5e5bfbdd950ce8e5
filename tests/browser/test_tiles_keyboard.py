"""The big-fleet canvas tile grid works from the keyboard: Tab to it, arrows move a cursor, Enter opens the host."""
import pytest

from fleet.inventory.models import Host
from fleet.policy.models import Violation
from fleet.policy.severity import SEVERITIES
from tests.accounts.fleet_data import a_violation
from tests.browser.conftest import screenshot
from tests.browser.test_pages import _svg_limit

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

CANVAS = "#fleet-tiles canvas"


def tab_to(page, selector, limit=80):
    """Press Tab until `selector` has the focus, as a keyboard user would reach it."""
    for _ in range(limit):
        page.keyboard.press("Tab")
        if page.evaluate("(s) => document.activeElement.matches(s)", selector):
            return
    pytest.fail(f"{selector} never received the focus after {limit} Tab presses")


def announced(page) -> str:
    return page.locator("#fleet-tiles-status").text_content()


def assert_announces(page, hostname):
    text = announced(page)
    assert text.startswith(f"{hostname}: "), text
    severities = list(Violation.objects.filter(host__hostname=hostname, status="open").values_list("severity", flat=True))
    n = len(severities)
    worst = min(severities, key=["critical", "high", "medium", "low", "info"].index) if n else None
    assert (f"{n} open violation{'s' if n != 1 else ''}, worst {worst}" if n else "no open violation") in text, text


def corner_pixel(page, index, cell, cols):
    """RGBA of the canvas at the top-left corner of tile `index`, in device pixels."""
    return page.evaluate(
        """([x, y]) => { const c = document.querySelector('#fleet-tiles canvas'); const r = window.devicePixelRatio || 1;
             return Array.from(c.getContext('2d').getImageData(Math.floor(x * r), Math.floor(y * r), 1, 1).data); }""",
        [(index % cols) * cell, (index // cols) * cell])


def tile_order(hosts) -> list[str]:
    """The tiles' order read from the database: worst open severity first (none last), then hostname."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    worst: dict[str, int] = {}
    for hostname, severity in Violation.objects.filter(status="open").values_list("host__hostname", "severity"):
        worst[hostname] = min(worst.get(hostname, len(rank)), rank[severity])
    return sorted((h.hostname for h in hosts), key=lambda h: (worst.get(h, len(rank)), h))


def big_fleet(page) -> list[str]:
    """More hosts than the SVG limit, opened on the fleet page; their hostnames in the tiles' order."""
    n = _svg_limit() + 100
    Host.objects.bulk_create([Host(hostname=f"tile-{i:05d}") for i in range(n)])
    hosts = list(Host.objects.order_by("hostname"))
    for host in hosts[0:600:3]:
        a_violation(host)
    # The first tile (the cursor's start) has two, of two severities: the count and the worst are both announced.
    a_violation(hosts[0], rule="pasid-quota", severity="medium", subject_kind="host", subject_id=hosts[0].hostname)
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    assert page.locator(CANVAS).count() == 1
    return tile_order(hosts)


def grid_shape(page, n):
    """(cell, cols, rows) from the same geometry function and width the page drew with."""
    cell, cols, rows = page.evaluate(
        """async (n) => { const { tileGeometry } = await import('/static/js/charts/tiles.js');
             const w = Math.max(200, document.getElementById('fleet-tiles').clientWidth);
             const g = tileGeometry(n, w); return [g.cell, g.cols, g.rows]; }""", n)
    assert page.locator(CANVAS).bounding_box()["width"] == cols * cell
    return cell, cols, rows


def test_the_canvas_grid_is_reached_with_tab_moved_with_arrows_announced_and_opened_with_enter(page):
    names = big_fleet(page)
    n = len(names)
    cell, cols, rows = grid_shape(page, n)
    assert rows > 6

    name = page.locator(CANVAS).get_attribute("aria-label")
    assert "Arrow keys" in name and "Enter" in name
    assert announced(page) == ""

    pristine = page.eval_on_selector(CANVAS, "c => c.toDataURL()")
    tab_to(page, CANVAS)
    assert page.evaluate("getComputedStyle(document.activeElement).outlineStyle") != "none"
    assert_announces(page, names[0])

    target = 2 + cols
    plain = corner_pixel(page, target, cell, cols)
    for key in ["ArrowRight", "ArrowRight", "ArrowDown"]:
        page.keyboard.press(key)
    assert_announces(page, names[target])
    assert corner_pixel(page, target, cell, cols) != plain  # the current tile is drawn highlighted
    screenshot(page, "fleet-tiles-keyboard", full_page=False)
    # A resize that keeps the width (the full-page shot's taller viewport, as in the CI run whose
    # bounding_box() below came back None) must not replace the canvas the test holds.
    canvas = page.locator(CANVAS).element_handle()
    page.set_viewport_size({"width": 1280, "height": 1600})
    page.set_viewport_size({"width": 1280, "height": 800})
    page.wait_for_timeout(400)  # past the 200 ms resize debounce: a redraw, if any, has happened
    assert page.evaluate("(c) => c.isConnected", canvas)

    # The tile the cursor is on is the one the mouse finds at that spot (hover keeps working).
    box = page.locator(CANVAS).bounding_box()
    page.mouse.move(box["x"] + (target % cols) * cell + cell / 2, box["y"] + (target // cols) * cell + cell / 2)
    assert page.locator(".tile-tip").text_content().startswith(f"{names[target]}: ")
    assert_announces(page, names[target])  # hovering does not move the keyboard cursor

    page.keyboard.press("End")
    assert_announces(page, names[-1])
    assert corner_pixel(page, target, cell, cols) == plain  # the old highlight is gone
    page.keyboard.press("ArrowDown")  # already on the last row: stays
    assert_announces(page, names[-1])
    page.keyboard.press("Home")
    assert_announces(page, names[0])
    page.keyboard.press("ArrowUp")
    assert_announces(page, names[0])
    page.keyboard.press("PageDown")
    assert_announces(page, names[5 * cols])
    page.keyboard.press("ArrowLeft")  # wraps to the end of the row above: row 4, last column
    assert_announces(page, names[5 * cols - 1])
    page.keyboard.press("PageUp")  # only 4 rows above: stops on the first row, same column
    assert_announces(page, names[cols - 1])
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")
    opened = names[2 * cols]
    assert_announces(page, opened)
    assert page.evaluate("window.scrollY") == 0  # the keys moved the cursor, not the page
    # Leaving the grid wipes the cursor (and every pixel its ring touched); coming back resumes on the same host.
    page.keyboard.press("Shift+Tab")
    assert page.eval_on_selector(CANVAS, "c => c.toDataURL()") == pristine
    page.keyboard.press("Tab")
    assert_announces(page, opened)
    page.keyboard.press("Enter")
    page.wait_for_url(f"**/hosts/{opened}/")


def test_pressing_the_mouse_on_a_tile_puts_the_cursor_there_and_the_click_opens_it(page):
    names = big_fleet(page)
    cell, cols, _ = grid_shape(page, len(names))
    target = 3 * cols + 4
    box = page.locator(CANVAS).bounding_box()
    page.mouse.move(box["x"] + (target % cols) * cell + cell / 2, box["y"] + (target // cols) * cell + cell / 2)
    page.mouse.down()
    assert_announces(page, names[target])
    page.mouse.up()
    page.wait_for_url(f"**/hosts/{names[target]}/")
