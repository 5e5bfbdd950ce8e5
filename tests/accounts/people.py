"""One user per role (and one without any), for the access tests of every area."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from fleet.accounts.roles import ROLES, STAFF_ROLES, roles_sync

PASSWORD = "correct horse battery staple"


def make_user(username: str, role: str | None = None):
    roles_sync()
    user = get_user_model().objects.create_user(username=username, password=PASSWORD)
    if role is not None:
        user.groups.add(Group.objects.get(name=role))
        user.is_staff = role in STAFF_ROLES
        user.save(update_fields=["is_staff"])
    return user


def people() -> dict[str, object]:
    """role name (or "no-role") -> a user holding exactly that role."""
    out = {role: make_user(f"user-{role}", role) for role in ROLES}
    out["no-role"] = make_user("user-no-role")
    return out


@pytest.fixture
def users(db):
    """The `people()` of one test, as a fixture; areas re-export it from their conftest."""
    return people()
