"""Fleet-wide figures read from the database at scrape time (they are the same in every process)."""
from django.conf import settings
from django.db.models import Count, Q
from django.utils import timezone
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from fleet.ingest.freshness import hosts_behind_count
from fleet.ingest.models import Snapshot
from fleet.inventory.models import Host
from fleet.policy.selectors import violations_open_unwaived, violations_open_waived

from .hosts import host_families
from .queue import queue_depth
from .task_failures import task_failures_in_broker


class FleetCollector:
    def collect(self):
        hosts = GaugeMetricFamily("fleet_hosts", "Hosts by reporting state (pending: enrolled, never reported).", labels=["state"])
        counts = Host.objects.aggregate(
            n_pending=Count("id", filter=Q(last_seen__isnull=True)),
            n_stale=Count("id", filter=Q(last_seen__isnull=False, stale=True)),
            n_fresh=Count("id", filter=Q(last_seen__isnull=False, stale=False)),
        )
        for key, value in counts.items():
            hosts.add_metric([key.removeprefix("n_")], value)
        yield hosts

        now = timezone.now()
        violations = GaugeMetricFamily("fleet_violations_open", "Open violations not hidden by a waiver, by rule and severity.", labels=["rule", "severity"])
        rows = (
            violations_open_unwaived(now=now)
            .values("rule", "severity")
            .annotate(n=Count("id"))
            .order_by("rule", "severity")
        )
        for row in rows:
            violations.add_metric([row["rule"], row["severity"]], row["n"])
        yield violations
        waived = violations_open_waived(now=now).count()
        yield GaugeMetricFamily("fleet_violations_waived", "Open violations currently hidden by a waiver.", value=waived)

        snapshots = GaugeMetricFamily("fleet_snapshots", "Stored snapshots waiting to be applied or that failed to apply.", labels=["status"])
        by_status = dict(
            Snapshot.objects.filter(status__in=[Snapshot.Status.RECEIVED, Snapshot.Status.FAILED])
            .values_list("status")
            .annotate(n=Count("id"))
            .order_by()
        )
        for status in (Snapshot.Status.RECEIVED, Snapshot.Status.FAILED):
            snapshots.add_metric([status], by_status.get(status, 0))
        yield snapshots
        yield GaugeMetricFamily("fleet_hosts_behind", "Hosts whose latest report failed to apply or waits past the re-queue delay "
                                "(fleet.ingest.freshness).", value=hosts_behind_count())

        failures = task_failures_in_broker()
        if failures is not None:
            counter = CounterMetricFamily("fleet_task_failures", "Celery tasks that raised, by task name (all workers, kept in the broker).", labels=["task"])
            for task, n in sorted(failures.items()):
                counter.add_metric([task], n)
            yield counter

        depth = queue_depth()
        broker = GaugeMetricFamily("fleet_broker_up", "1 when the Celery broker answered the queue-depth query, 0 when it did not or none is configured.")
        broker.add_metric([], 0 if depth is None else 1)
        yield broker
        if depth is not None:
            queue = getattr(settings, "CELERY_TASK_DEFAULT_QUEUE", "celery")
            yield GaugeMetricFamily("fleet_queue_depth", f"Task messages waiting in the broker queue {queue!r}.", value=depth)

        yield from host_families()
