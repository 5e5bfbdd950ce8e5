"""Per-host series on /metrics: figures equal to the database, hostile hostnames, the host cap, bounded queries."""
import uuid
from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families

from fleet.inventory.models import Device, Holder, Host
from fleet.policy.models import Violation
from tests.accounts.fleet_data import a_violation, import_capture

pytestmark = pytest.mark.django_db
TOKEN = "metrics-" + uuid.uuid4().hex
SEVERITIES = ("critical", "high", "medium", "low", "info")  # DOMAIN.md §6, written out on purpose


def metrics_samples(client) -> list:
    """Every sample of one token-authenticated scrape, parsed by prometheus_client's own parser."""
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    return [s for family in text_string_to_metric_families(response.content.decode()) for s in family.samples]


@pytest.fixture
def scrape(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN
    return lambda: metrics_samples(client)


def by_host(samples, name: str) -> dict:
    return {s.labels["host"] if list(s.labels) == ["host"] else tuple(sorted(s.labels.items())): s.value
            for s in samples if s.name == name}


def test_per_host_figures_equal_the_database(scrape):
    now = timezone.now()
    quiet = Host.objects.create(hostname="quiet", last_seen=now - timedelta(seconds=600), stale=True, assigned_count=0)
    busy = Host.objects.create(hostname="busy", last_seen=now - timedelta(seconds=30), assigned_count=3)
    Host.objects.create(hostname="never-reported")
    Host.objects.create(hostname="retired", enrollment=Host.Enrollment.RETIRED)
    for pid, nodes in ((1, ["/dev/vfio/vfio", "/dev/vfio/5"]), (2, ["/dev/iommu", "/dev/vfio/devices/vfio0"]),
                       (3, ["/dev/vfio/vfio", "/dev/iommu", "/dev/vfio/7"]), (4, ["/dev/uio0"]), (5, [])):
        Holder.objects.create(host=busy, pid=pid, name="qemu", nodes=nodes)
    a_violation(busy, severity="critical", subject_id="1")
    a_violation(busy, severity="critical", subject_id="2")
    a_violation(busy, severity="low", subject_id="3")
    waived = a_violation(busy, severity="high", subject_id="4")
    Violation.objects.filter(pk=waived.pk).update(waived_until=now + timedelta(days=1))
    resolved = a_violation(quiet, severity="medium", subject_id="5")
    Violation.objects.filter(pk=resolved.pk).update(status="resolved")

    samples = scrape()
    open_ = by_host(samples, "fleet_host_violations_open")
    assert open_[(("host", "busy"), ("severity", "critical"))] == 2
    assert open_[(("host", "busy"), ("severity", "low"))] == 1
    assert open_[(("host", "busy"), ("severity", "high"))] == 0, "a waived violation is not open"
    assert open_[(("host", "quiet"), ("severity", "medium"))] == 0, "a resolved violation is not open"
    assert len(open_) == 3 * len(SEVERITIES), "every severity of every non-retired host, zeros included"
    assert by_host(samples, "fleet_host_assigned_devices") == {"busy": 3, "quiet": 0, "never-reported": 0}
    # holders 1 and 2 open one address space each, holder 3 both kinds, 4 (UIO) and 5 none
    assert by_host(samples, "fleet_host_address_spaces") == {"busy": 4, "quiet": 0, "never-reported": 0}
    assert by_host(samples, "fleet_host_stale") == {"busy": 0, "quiet": 1, "never-reported": 0}
    age = by_host(samples, "fleet_host_last_report_age_seconds")
    assert set(age) == {"busy", "quiet"}, "a host that never reported has no age"
    assert 600 <= age["quiet"] < 660 and 30 <= age["busy"] < 90
    assert by_host(samples, "fleet_host_series_omitted") == {(): 0}


def test_assigned_devices_of_an_imported_capture_are_its_userspace_devices(scrape, capture):
    host = import_capture(capture("shared-group-all-vfio"))
    expected = Device.objects.filter(host=host, driver__in=["vfio-pci"]).count()
    assert expected, "the capture has devices bound to vfio-pci"
    assert by_host(scrape(), "fleet_host_assigned_devices")[host.hostname] == expected


def test_a_hostile_hostname_round_trips_through_the_prometheus_parser(scrape):
    hostile = 'evil"} 1\nfleet_hosts{state="fresh"} 999\\'
    Host.objects.create(hostname=hostile, last_seen=timezone.now())
    stale = by_host(scrape(), "fleet_host_stale")
    assert stale == {hostile: 0}, "the hostname is one label value, escaped, and injects no sample"


def test_above_the_cap_the_per_host_families_are_omitted(scrape, settings):
    for i in range(3):
        Host.objects.create(hostname=f"h{i}", last_seen=timezone.now())
    settings.FLEET_METRICS_MAX_HOSTS = 3
    samples = scrape()
    assert len(by_host(samples, "fleet_host_stale")) == 3
    settings.FLEET_METRICS_MAX_HOSTS = 2
    samples = scrape()
    assert by_host(samples, "fleet_host_series_omitted") == {(): 1}
    assert not [s for s in samples if s.name.startswith("fleet_host_") and s.name != "fleet_host_series_omitted"]


def _scrape_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    return len(queries)


def test_a_scrape_costs_the_same_queries_for_2_hosts_and_for_40(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN

    def hosts(first: int, count: int) -> None:
        for i in range(first, first + count):
            host = Host.objects.create(hostname=f"q{i}", last_seen=timezone.now(), assigned_count=i)
            Holder.objects.create(host=host, pid=1, name="qemu", nodes=["/dev/vfio/vfio"])
            a_violation(host, severity=SEVERITIES[i % len(SEVERITIES)])

    hosts(0, 2)
    small = _scrape_queries(client)
    hosts(2, 38)
    assert _scrape_queries(client) == small
