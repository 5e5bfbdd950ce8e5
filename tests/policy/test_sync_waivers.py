"""A host's sync expires its own due waivers (the beat tick does the rest), without a waiver query when none is due."""
from datetime import datetime, timedelta, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agent.paths import Root
from agent.snapshot import build
from fleet.policy import selectors, services
from fleet.policy.models import Violation, ViolationEvent, Waiver

from .dbhosts import apply_and_sync, host_named

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def no_iommu(captures_root):
    return build(Root.of(captures_root / "no-iommu"))


def _waived_uio(host, document):
    apply_and_sync(host, document, T0)
    uio = Violation.objects.get(host=host, rule="uio-driver")
    services.violation_waive(violation=uio, by="carol", justification="lab", expires_at=T0 + timedelta(hours=1), now=T0)
    return uio


def test_the_next_sync_of_the_host_after_the_expiry_expires_the_waiver_and_shows_the_violation_again(no_iommu):
    host = host_named("hv-w1")
    uio = _waived_uio(host, no_iommu)
    services.violations_sync_for_host(host=host, now=T0 + timedelta(minutes=30))
    assert Waiver.objects.get(violation=uio).expired_at is None

    services.violations_sync_for_host(host=host, now=T0 + timedelta(hours=2))
    uio.refresh_from_db()
    assert uio.status == "open" and uio.waived_until is None
    assert Waiver.objects.get(violation=uio).expired_at == T0 + timedelta(hours=2)
    expired = ViolationEvent.objects.get(violation=uio, kind="waiver_expired")
    assert expired.at == T0 + timedelta(hours=2) and expired.detail["status"] == "open"
    assert "uio-driver" in {v.rule for v in selectors.violations_open(host=host, now=T0 + timedelta(hours=2))}


def test_a_sync_with_no_waiver_due_does_not_query_waivers(no_iommu):
    host = host_named("hv-w2")
    _waived_uio(host, no_iommu)
    with CaptureQueriesContext(connection) as queries:
        services.violations_sync_for_host(host=host, now=T0 + timedelta(minutes=30))
    assert not [q for q in queries if "policy_waiver" in q["sql"]]


def test_another_hosts_due_waiver_is_left_to_the_beat_tick(no_iommu):
    other, host = host_named("hv-w3"), host_named("hv-w4")
    uio = _waived_uio(other, no_iommu)
    apply_and_sync(host, no_iommu, T0)
    services.violations_sync_for_host(host=host, now=T0 + timedelta(hours=2))
    assert Waiver.objects.get(violation=uio).expired_at is None
    assert services.waivers_expire(now=T0 + timedelta(hours=2)) == 1
