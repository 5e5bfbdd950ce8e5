"""Worst-first ordering of the fleet table and the violations list, over the real captures' violations."""
import pytest
from django.urls import reverse

from fleet.inventory.models import Host
from fleet.policy.models import Violation
from tests.accounts.fleet_data import a_violation

pytestmark = pytest.mark.django_db

ORDER = ["critical", "high", "medium", "low", "info"]  # DOMAIN.md §6, written out here rather than imported


def _worst(hostnames):
    """hostname -> index in ORDER of its worst open, unwaived violation (len(ORDER) = none)."""
    worst = dict.fromkeys(hostnames, len(ORDER))
    for hostname, severity in Violation.objects.filter(
            status="open", waived_until__isnull=True, host__hostname__in=hostnames).values_list("host__hostname", "severity"):
        worst[hostname] = min(worst[hostname], ORDER.index(severity))
    return worst


def _rows(html, hostnames):
    return sorted(hostnames, key=lambda h: html.index(f'data-host="{h}"'))


def test_fleet_table_sorts_by_worst_open_violation_both_ways(viewer_client, fleet):
    # Hand-made low and info rows: the captures only raise critical, high and medium.
    low = Host.objects.create(hostname="zz-only-low")
    a_violation(low, rule="pasid-quota", severity="low", subject_kind="host", subject_id=low.hostname)
    info = Host.objects.create(hostname="aa-only-info")
    a_violation(info, rule="pasid-quota", severity="info", subject_kind="host", subject_id=info.hostname)
    names = [h.hostname for h in fleet.values()] + [low.hostname, info.hostname]
    worst = _worst(names)
    assert {0, len(ORDER)} <= set(worst.values()), "the captures have a critical host and a clean one"

    worst_first = viewer_client.get(reverse("web:fleet") + "?sort=worst").content.decode()
    assert _rows(worst_first, names) == sorted(names, key=lambda h: (worst[h], h))
    best_first = viewer_client.get(reverse("web:fleet") + "?sort=-worst").content.decode()
    assert _rows(best_first, names) == sorted(names, key=lambda h: (-worst[h], h))


def test_a_waived_violation_does_not_count_as_the_worst(viewer_client, fleet):
    from django.utils import timezone

    host = Host.objects.create(hostname="mm-waived-critical")
    v = a_violation(host, severity="critical", subject_kind="host", subject_id=host.hostname)
    v.waived_until = timezone.now() + timezone.timedelta(days=1)
    v.save(update_fields=["waived_until"])
    html = viewer_client.get(reverse("web:fleet") + "?sort=worst").content.decode()
    critical = [h.hostname for h in fleet.values()
                if Violation.objects.filter(host=h, status="open", severity="critical").exists()]
    assert critical
    assert all(html.index(f'data-host="{h}"') < html.index(f'data-host="{host.hostname}"') for h in critical)


def test_violations_page_lists_the_most_severe_first(viewer_client, fleet):
    html = viewer_client.get(reverse("web:violations")).content.decode()
    shown = [s for s in (html.split('class="badge sev-')[1:]) if s]
    severities = [s.split('"', 1)[0] for s in shown if s.split('"', 1)[0] in ORDER]
    assert len(set(severities)) >= 2
    assert severities == sorted(severities, key=ORDER.index)


def test_the_open_violations_header_sorts_worst_first_then_reverses_and_marks_the_sorted_column(viewer_client, fleet):
    import re

    def header(html, label):
        return next(th for th in re.findall(r"<th scope=\"col\".*?</th>", html, re.S) if f">{label}" in th)

    page = viewer_client.get(reverse("web:fleet") + "?sort=hostname").content.decode()
    assert 'aria-sort="ascending"' in header(page, "Host")
    assert "sort=worst\"" in header(page, "Open violations") and "aria-sort" not in header(page, "Open violations")
    page = viewer_client.get(reverse("web:fleet") + "?sort=worst").content.decode()
    cell = header(page, "Open violations")
    assert "sort=-worst\"" in cell and 'aria-sort="descending"' in cell and "worst first" in cell
    assert "aria-sort" not in header(page, "Host")
    page = viewer_client.get(reverse("web:fleet") + "?sort=-devices").content.decode()
    assert 'aria-sort="descending"' in header(page, "Devices") and "sort=devices\"" in header(page, "Devices")


def test_the_fleet_table_shows_the_worst_hosts_first_when_no_sort_is_asked_for(viewer_client, fleet):
    low = Host.objects.create(hostname="zz-default-low")
    a_violation(low, rule="pasid-quota", severity="low", subject_kind="host", subject_id=low.hostname)
    names = [h.hostname for h in fleet.values()] + [low.hostname]
    worst = _worst(names)
    html = viewer_client.get(reverse("web:fleet")).content.decode()
    assert _rows(html, names) == sorted(names, key=lambda h: (worst[h], h))
    assert 'value="worst"' in html, "the filter form keeps the sort it showed"


def test_an_unknown_sort_is_refused_with_the_columns_it_could_be(viewer_client, fleet):
    # Issue 14, strict queries: a mistyped sort used to fall back to `worst` silently.
    response = viewer_client.get(reverse("web:fleet") + "?sort=no-such-column")
    body = response.content.decode()
    assert response.status_code == 400 and "sort:" in body and "hostname" in body and "last_seen" in body


def test_the_fleet_table_still_sorts_by_hostname_when_asked(viewer_client, fleet):
    names = [h.hostname for h in fleet.values()]
    for sort, expected in (("hostname", sorted(names)), ("-hostname", sorted(names, reverse=True)),
                           ("host", sorted(names)), ("-host", sorted(names, reverse=True))):
        html = viewer_client.get(reverse("web:fleet") + f"?sort={sort}").content.decode()
        assert _rows(html, names) == expected, sort
