"""Roles are Django groups whose permissions follow the mapping in fleet/accounts/roles.py."""
from django.contrib.auth.models import Group
from django.core.management import call_command

from fleet.accounts.roles import (
    ROLES,
    user_can_edit_intent,
    user_can_manage_hosts,
    user_can_read_audit,
    user_can_view,
    user_can_waive,
)


def _perms(role):
    return {f"{p.content_type.app_label}.{p.codename}" for p in Group.objects.get(name=role).permissions.select_related("content_type")}


def test_roles_sync_creates_the_four_groups(db):
    call_command("roles", "sync")
    assert set(Group.objects.filter(name__in=ROLES).values_list("name", flat=True)) == set(ROLES)


def test_viewer_holds_only_view_permissions(db):
    call_command("roles", "sync")
    perms = _perms("viewer")
    assert "inventory.view_device" in perms and "policy.view_violation" in perms
    assert all(p.split(".")[1].startswith("view_") for p in perms)
    assert "ingest.view_hosttoken" not in perms


def test_operator_manages_tokens_and_labels_but_not_waivers(db):
    call_command("roles", "sync")
    perms = _perms("operator")
    assert {"ingest.add_hosttoken", "ingest.change_hosttoken", "inventory.change_host", "inventory.add_label"} <= perms
    assert "policy.add_waiver" not in perms and "policy.change_violation" not in perms


def test_security_reviewer_waives_and_edits_intent_but_not_tokens(db):
    call_command("roles", "sync")
    perms = _perms("security-reviewer")
    assert {"policy.add_waiver", "policy.change_violation", "policy.change_tenant"} <= perms
    assert "ingest.add_hosttoken" not in perms


def test_admin_holds_every_permission(db):
    from django.contrib.auth.models import Permission

    call_command("roles", "sync")
    assert len(_perms("admin")) == Permission.objects.count()


def test_role_helpers_answer_per_role(users):
    expect = {
        # role: (view, manage hosts, waive, edit intent, read audit)
        "viewer": (True, False, False, False, False),
        "operator": (True, True, False, False, True),
        "security-reviewer": (True, False, True, True, True),
        "admin": (True, True, True, True, True),
        "no-role": (False, False, False, False, False),
    }
    for role, answers in expect.items():
        user = users[role]
        got = (user_can_view(user), user_can_manage_hosts(user), user_can_waive(user), user_can_edit_intent(user), user_can_read_audit(user))
        assert got == answers, role


def test_roles_assign_gives_staff_to_roles_that_use_the_admin(db):
    from django.contrib.auth import get_user_model

    get_user_model().objects.create_user(username="ana", password="x")
    call_command("roles", "assign", "ana", "operator")
    ana = get_user_model().objects.get(username="ana")
    assert ana.is_staff and ana.groups.filter(name="operator").exists()
    call_command("roles", "remove", "ana", "operator")
    call_command("roles", "assign", "ana", "viewer")
    ana.refresh_from_db()
    assert not ana.is_staff
