"""Host labels are read for a sync only when a role matches hosts by label, and then they count."""
from datetime import datetime, timezone

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from agent.paths import Root
from agent.snapshot import build
from fleet.inventory.models import Label
from fleet.policy import services
from fleet.policy.intent import Intent, Role

from .dbhosts import host_named, open_keys
from fleet.inventory.services import host_state_replace

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def isolated_nics(captures_root):
    return build(Root.of(captures_root / "isolated-nics"))


def _labelled_host(name, document):
    host = host_named(name)
    host.labels.add(Label.objects.create(name=f"{name}-pool"))
    host_state_replace(host=host, document=document, snapshot_id=None, seq=None, at=T0)
    host.refresh_from_db()
    return host


def test_a_role_that_matches_hosts_by_label_applies_to_a_labelled_host(isolated_nics):
    # Like the intent-change test in test_services (hypervisors expecting assignment), with the role found by label.
    host = _labelled_host("lab-1", isolated_nics)
    intent = Intent(roles=(Role(name="hypervisor", host_labels=("lab-1-pool",), expects_assignment=True),),
                    allowed_userspace_drivers=("uio_pci_generic",))
    services.violations_sync_for_host(host=host, now=T0, intent=intent)
    vfio = {d["bdf"] for d in isolated_nics["devices"] if d["driver"] == "vfio-pci"}
    assert vfio and {k for k in open_keys(host) if k[0] == "driver-drift"} == {("driver-drift", "device", b) for b in vfio}


def test_without_a_label_matched_role_the_sync_does_not_read_labels(isolated_nics):
    host = _labelled_host("lab-2", isolated_nics)
    intent = Intent(roles=(Role(name="hypervisor", host_patterns=("hv-*",), expects_assignment=True),))
    with CaptureQueriesContext(connection) as queries:
        services.violations_sync_for_host(host=host, now=T0, intent=intent)
    assert not [q for q in queries if "inventory_label" in q["sql"]]
