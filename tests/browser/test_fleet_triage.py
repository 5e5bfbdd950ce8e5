"""The fleet page opens with triage: counts by severity and rule, the few to fix first, tiles grouped by
severity with readable hostnames that follow the page's filters, and a skip link past them."""
import pytest

from fleet.inventory.models import Host
from fleet.policy.models import Violation
from fleet.policy.severity import SEVERITIES
from tests.accounts.fleet_data import a_violation
from tests.browser.conftest import screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def small_fleet():
    """Hand-made: five hosts of which two are in trouble, the shape of a lab fleet at 3 a.m."""
    hosts = {name: Host.objects.create(hostname=name) for name in ("gpu-a", "gpu-b", "nic-c", "nic-d", "<b>odd</b>")}
    a_violation(hosts["gpu-b"], rule="group-mixed-ownership", severity="critical", subject_id="4")
    a_violation(hosts["nic-c"], rule="unknown-holder", severity="high", subject_kind="host", subject_id="nic-c")
    a_violation(hosts["nic-c"], rule="group-shared-p2p", severity="high", subject_id="9")
    return hosts


def _expected_groups():
    """severity (or none) -> hostnames, from the database: each host under its worst open severity."""
    rank = {s: i for i, s in enumerate(SEVERITIES)}
    worst = {}
    for hostname, severity in Violation.objects.filter(status="open").values_list("host__hostname", "severity"):
        worst[hostname] = min(worst.get(hostname, len(rank)), rank[severity])
    groups: dict[str, list[str]] = {}
    for host in Host.objects.order_by("hostname"):
        r = worst.get(host.hostname, len(rank))
        groups.setdefault(SEVERITIES[r] if r < len(rank) else "none", []).append(host.hostname)
    return groups


def test_summary_counts_and_fix_first_come_from_the_open_violations(page, small_fleet):
    page.goto("/")
    summary = page.locator(".triage-summary")
    counts = {s: Violation.objects.filter(status="open", severity=s).count() for s in SEVERITIES}
    for severity, n in counts.items():
        assert summary.locator(f".sev-summary a.sev-{severity}").inner_text() == f"{n} {severity}"
    first = summary.locator(".fix-first li").all_inner_texts()
    assert len(first) == 3 and "group-mixed-ownership on gpu-b" in first[0]  # critical before high
    rules = summary.locator(".by-rule a").all_inner_texts()
    assert rules[0].startswith("group-mixed-ownership")
    screenshot(page, "fleet-triage")


def test_tiles_are_grouped_by_worst_severity_with_their_hostnames(page, small_fleet):
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    drawn: dict[str, list[str]] = {}
    for heading in page.locator("#fleet-tiles h3.tiles-group").all():
        label = heading.inner_text().rsplit(" (", 1)[0]
        severity = "none" if label == "no open violation" else label
        chips = heading.locator("xpath=following-sibling::ul[1]").locator("a.tile-chip")
        drawn[severity] = sorted(chips.evaluate_all("els => els.map(e => e.dataset.tileHost)"))
    assert drawn == _expected_groups()
    assert page.locator("#fleet-tiles a.tile-chip", has_text="<b>odd</b>").count() == 1  # text, not markup
    assert page.locator("#fleet-tiles b").count() == 0


def test_tiles_follow_the_page_filters(page, small_fleet):
    page.goto("/?severity=high")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    shown = page.locator("#fleet-tiles a.tile-chip").evaluate_all("els => els.map(e => e.dataset.tileHost)")
    expected = sorted(set(Violation.objects.filter(status="open", severity="high").values_list("host__hostname", flat=True)))
    assert sorted(shown) == expected
    page.goto("/?q=no-such-host")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    assert page.locator("#fleet-tiles a").count() == 0
    assert "No host matches" in page.locator("#fleet-tiles").inner_text()


def test_the_skip_link_jumps_past_the_tiles_to_the_host_table(page, small_fleet):
    page.goto("/")
    page.wait_for_selector("#fleet-tiles[data-state=ready]")
    page.locator("a.skip-link[href='#hosts-table']").focus()
    page.keyboard.press("Enter")
    assert page.evaluate("document.activeElement.id") == "hosts-table"
