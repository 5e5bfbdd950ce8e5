"""The parsed intent is cached per process and re-read whenever an intent service writes the intent."""
import pytest
from django.contrib.auth.models import User
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from fleet.inventory.models import Host
from fleet.policy import selectors, services
from fleet.policy.intent import Intent, Role, Tenant
from fleet.policy.models import IntentVersion
from fleet.policy.models import Tenant as TenantRow

pytestmark = pytest.mark.django_db

ACME = Intent(tenants=(Tenant(name="acme", vm_patterns=("acme-*",)),))


def _token():
    return IntentVersion.objects.get(pk=1).token


def test_an_unchanged_intent_is_read_with_one_query():
    services.intent_replace(intent=ACME, user="alice")
    first = selectors.intent_current()
    with CaptureQueriesContext(connection) as queries:
        again = selectors.intent_current()
    assert again == first and len(queries) == 1


def _admin_adds_a_tenant():
    services.intent_edit(write=lambda: TenantRow.objects.create(name="globex", vm_patterns=["gx-*"]), user="bob",
                         source="admin", summary="add tenant globex")


def _baseline_accepted():
    host = Host.objects.create(hostname="hv-1")
    services.baseline_accept(host=host, user="carol", state={"groups": [{"id": 1, "devices": ["0000:01:00.0"]}]})


@pytest.mark.parametrize("write", [
    lambda: services.intent_replace(intent=Intent(roles=(Role(name="gpu", host_patterns=("gpu*",)),)), user="alice"),
    _admin_adds_a_tenant,
    _baseline_accepted,
], ids=["import", "admin edit", "baseline accept"])
def test_every_intent_service_is_seen_by_the_next_read_in_its_own_transaction_and_after_commit(write):
    before = selectors.intent_current()
    with transaction.atomic():
        write()
        inside = selectors.intent_current()  # the worker that made the change, before it commits
        assert inside != before and inside == selectors._intent_read()
    assert selectors.intent_current() == inside


def test_a_rolled_back_change_is_not_kept_as_the_current_intent():
    services.intent_replace(intent=ACME, user="alice")
    committed = selectors.intent_current()
    with pytest.raises(RuntimeError), transaction.atomic():
        services.intent_replace(intent=Intent(tenants=(Tenant(name="ghost", vm_patterns=("g-*",)),)), user="alice")
        assert {t.name for t in selectors.intent_current().tenants} == {"ghost"}
        raise RuntimeError("roll back")
    assert selectors.intent_current() == committed
    services.intent_replace(intent=Intent(tenants=ACME.tenants, roles=(Role(name="later", host_patterns=("x*",)),)), user="alice")
    assert {t.name for t in selectors.intent_current().tenants} == {"acme"}


def test_the_intent_tables_have_no_triggers_any_more_only_the_services_move_the_version():
    services.intent_replace(intent=ACME, user="alice")
    token = _token()
    TenantRow.objects.create(name="by-hand", vm_patterns=["h-*"])
    TenantRow.objects.filter(name="acme").update(pasid_quota=3)
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM policy_tenant WHERE name = 'acme'")
    assert _token() == token


def test_an_admin_edit_moves_the_version_and_the_next_read_sees_it(client):
    services.intent_replace(intent=ACME, user="alice")
    token, cached = _token(), selectors.intent_current()
    client.force_login(User.objects.create_superuser("grace", "g@example.com", "pw"))
    response = client.post("/admin/policy/tenant/add/", {
        "name": "tenant-z", "vm_patterns": '["z-*"]', "cgroup_patterns": "[]", "workload_patterns": "[]", "labels": "[]",
        "pasid_quota": ""})
    assert response.status_code == 302
    assert _token() != token and {t.name for t in selectors.intent_current().tenants} == {"acme", "tenant-z"} != {
        t.name for t in cached.tenants}
