"""The real captures imported once per module through the ingest path, and users with and without triage rights."""
import pytest
from django.contrib.auth.models import Group, Permission, User

from fleet.accounts.roles import VIEWER
from fleet.inventory.models import Host
from fleet.policy.models import GroupBaseline
from fleet.policy.services import intent_version_bump
from tests.accounts.fleet_data import import_capture
from tests.conftest import CAPTURE_NAMES


@pytest.fixture(scope="module")
def fleet(django_db_setup, django_db_blocker, capture):
    """capture name -> Host, committed for the module (read-only use) and removed afterwards."""
    from fleet.accounts.models import AuditEntry

    with django_db_blocker.unblock():
        audit_before = AuditEntry.objects.order_by("-pk").values_list("pk", flat=True).first() or 0
        hosts = {name: import_capture(capture(name)) for name in CAPTURE_NAMES}
        yield hosts
        # Leave the database as found: other modules' tests count hosts and audit entries.
        Host.objects.filter(pk__in=[h.pk for h in hosts.values()]).delete()
        # Their first snapshots were accepted as baselines (keyed by hostname, so not deleted with the host).
        GroupBaseline.objects.filter(hostname__in=[h.hostname for h in hosts.values()]).delete()
        intent_version_bump()
        AuditEntry.objects.filter(pk__gt=audit_before).delete()


@pytest.fixture
def viewer(db):
    """A user with the read-only role."""
    user = User.objects.create_user("viewer-web", password="pw")
    user.groups.add(Group.objects.get(name=VIEWER))
    return user


@pytest.fixture
def reviewer(viewer):
    """A reader who was also granted the policy permission to change violations."""
    viewer.user_permissions.add(Permission.objects.get(codename="change_violation", content_type__app_label="policy"))
    return User.objects.get(pk=viewer.pk)  # fresh object: permissions are cached per instance


@pytest.fixture
def viewer_client(client, viewer):
    client.force_login(viewer)
    return client
