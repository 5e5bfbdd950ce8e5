"""The parsed intent is cached per process and re-read whenever any intent table is written, however."""
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from fleet.policy import selectors
from fleet.policy.models import DeviceExpectation, GroupBaseline, HostRole, IntentSettings, Tenant

pytestmark = pytest.mark.django_db


def test_an_unchanged_intent_is_read_with_one_query():
    Tenant.objects.create(name="acme", vm_patterns=["acme-*"])
    first = selectors.intent_current()
    with CaptureQueriesContext(connection) as queries:
        again = selectors.intent_current()
    assert again == first and len(queries) == 1


@pytest.mark.parametrize("write", [
    lambda: Tenant.objects.bulk_create([Tenant(name="globex", vm_patterns=["gx-*"])]),
    lambda: HostRole.objects.create(name="gpu", host_patterns=["gpu*"]),
    lambda: DeviceExpectation.objects.create(name="nic0", bdf="0000:01:00.0", driver="vfio-pci"),
    lambda: GroupBaseline.objects.create(hostname="hv-1", groups=[["0000:01:00.0"]]),
    lambda: IntentSettings.objects.update_or_create(pk=1, defaults={"host_pasid_quota": 7}),
], ids=["bulk-create tenant", "role", "device expectation", "baseline", "settings"])
def test_any_write_to_an_intent_table_is_seen_by_the_next_read(write):
    before = selectors.intent_current()
    write()
    after = selectors.intent_current()
    assert after != before and after == selectors._intent_read()


def test_a_queryset_update_and_delete_without_signals_are_seen():
    Tenant.objects.create(name="acme", vm_patterns=["acme-*"])
    selectors.intent_current()
    Tenant.objects.filter(name="acme").update(pasid_quota=3)
    assert selectors.intent_current().tenants[0].pasid_quota == 3
    with connection.cursor() as cursor:  # not even the ORM
        cursor.execute("DELETE FROM policy_tenant")
    assert selectors.intent_current().tenants == ()


def test_a_rolled_back_change_is_not_kept_as_the_current_intent():
    Tenant.objects.create(name="acme", vm_patterns=["acme-*"])
    committed = selectors.intent_current()
    try:
        with transaction.atomic():
            Tenant.objects.create(name="ghost", vm_patterns=["g-*"])
            assert {t.name for t in selectors.intent_current().tenants} == {"acme", "ghost"}
            raise RuntimeError("roll back")
    except RuntimeError:
        pass
    assert selectors.intent_current() == committed
    HostRole.objects.create(name="later", host_patterns=["x*"])
    assert {t.name for t in selectors.intent_current().tenants} == {"acme"}
