"""The policy tasks in the embedded default (no broker, tasks in process)."""
import logging
from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from fleet.policy.models import Violation
from fleet.policy.tasks import violations_sync_fleet_task, violations_sync_for_host_task

from .dbhosts import host_named

pytestmark = pytest.mark.django_db


def test_queuing_policy_tasks_without_a_broker_runs_them_in_process_and_logs_no_kombu_hostname_warning(caplog):
    if not settings.CELERY_TASK_ALWAYS_EAGER:
        pytest.skip("a broker is configured (FLEET_BROKER_URL/REDIS_URL): tasks are not run in process here")
    host = host_named("stale-1")
    host.last_seen = timezone.now() - timedelta(days=1)
    host.save(update_fields=["last_seen"])
    with caplog.at_level(logging.WARNING):
        violations_sync_for_host_task.delay(host.pk)
        violations_sync_fleet_task.delay()
    assert not [r for r in caplog.records if r.name.startswith("kombu")], [r.getMessage() for r in caplog.records]
    # The tasks ran here and then: the host silent for a day has its stale-host violation.
    assert list(Violation.objects.values_list("rule", flat=True)) == ["stale-host"]
