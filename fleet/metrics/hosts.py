"""Per-host series: open violations by severity, assigned devices, address spaces, staleness.

Labels are `host` (and `severity`) only, never a device, so a scrape carries at most
hosts × (len(SEVERITIES) + 4) per-host series: 1000 hosts → 9000. Above FLEET_METRICS_MAX_HOSTS
reporting hosts the per-host families are left out and `fleet_host_series_omitted` says so (1).
A scrape reads three grouped queries whatever the fleet's size (hosts, violations, holders).
"""
from collections import Counter

from django.conf import settings
from django.db.models import Count
from django.utils import timezone
from prometheus_client.core import GaugeMetricFamily

from fleet.inventory.models import Holder, Host
from fleet.policy.selectors import violations_open_unwaived
from fleet.policy.severity import SEVERITIES

# The node paths that open an I/O address space (agent/upgrade.py maps them to fd kinds the same way).
ADDRESS_SPACE_NODES = ("/dev/vfio/vfio", "/dev/iommu")


def address_spaces_by_host(host_ids: list[int]) -> Counter:
    """host id -> VFIO containers + iommufd contexts its holders have open.

    Switch point for the AddressSpace table (branch s12): it becomes one
    `.values("host_id").annotate(n=Count("id"))`. Until then inventory stores each holder's node paths,
    not its fds, so a holder counts once per kind it opened (a lower bound when one holder opens several).
    """
    counts = Counter()
    rows = Holder.objects.filter(host_id__in=host_ids).exclude(nodes=[]).values_list("host_id", "nodes")
    for host_id, nodes in rows.iterator(chunk_size=2000):
        if isinstance(nodes, list):
            counts[host_id] += sum(1 for path in ADDRESS_SPACE_NODES if path in nodes)
    return counts


def host_families():
    """The per-host metric families, or only the omission gauge when the fleet is above the cap."""
    cap = settings.FLEET_METRICS_MAX_HOSTS
    hosts = list(
        Host.objects.exclude(enrollment=Host.Enrollment.RETIRED)
        .order_by("hostname")
        .values_list("pk", "hostname", "assigned_count", "last_seen", "stale")[: cap + 1]
    )
    omitted = GaugeMetricFamily(
        "fleet_host_series_omitted",
        f"1 when more than FLEET_METRICS_MAX_HOSTS ({cap}) hosts report and the per-host fleet_host_* families are left out.",
    )
    omitted.add_metric([], 1 if len(hosts) > cap else 0)
    yield omitted
    if len(hosts) > cap:
        return

    names = {pk: hostname for pk, hostname, *_ in hosts}
    now = timezone.now()
    open_by = Counter()
    rows = violations_open_unwaived(now=now).filter(host_id__in=names).values("host_id", "severity").annotate(n=Count("id")).order_by()
    for row in rows:
        open_by[row["host_id"], row["severity"]] = row["n"]
    spaces = address_spaces_by_host(list(names))

    violations = GaugeMetricFamily("fleet_host_violations_open", "Open violations not hidden by a waiver, by host and severity.", labels=["host", "severity"])
    assigned = GaugeMetricFamily("fleet_host_assigned_devices", "Devices bound to a userspace driver (VFIO, UIO), by host.", labels=["host"])
    address = GaugeMetricFamily("fleet_host_address_spaces", "I/O address spaces (VFIO containers, iommufd contexts) the host's holders have open.", labels=["host"])
    age = GaugeMetricFamily("fleet_host_last_report_age_seconds", "Seconds since the host's last report (hosts that never reported have none).", labels=["host"])
    stale = GaugeMetricFamily("fleet_host_stale", "1 when the host stopped reporting (marked stale by the sweeper).", labels=["host"])
    for pk, hostname, assigned_count, last_seen, is_stale in hosts:
        for severity in SEVERITIES:
            violations.add_metric([hostname, severity], open_by[pk, severity])
        assigned.add_metric([hostname], assigned_count)
        address.add_metric([hostname], spaces[pk])
        if last_seen is not None:
            age.add_metric([hostname], max(0.0, (now - last_seen).total_seconds()))
        stale.add_metric([hostname], 1 if is_stale else 0)
    yield from (violations, assigned, address, age, stale)
