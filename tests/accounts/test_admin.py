"""Every admin write is audited through audit_record; host tokens are issued from the admin, the secret shown once."""
import hashlib

import pytest
from django.contrib import admin

from fleet.accounts.admin_audit import AuditedAdmin
from fleet.accounts.models import AuditEntry
from fleet.ingest.models import HostToken
from fleet.inventory.models import Host

pytestmark = pytest.mark.django_db


def test_every_registered_admin_audits_its_writes():
    # A model registered later with a plain ModelAdmin would write without an audit entry.
    plain = sorted(model._meta.label for model, model_admin in admin.site._registry.items() if not isinstance(model_admin, AuditedAdmin))
    assert plain == []


def test_an_admin_changing_a_users_roles_is_audited(client, users):
    from django.contrib.auth.models import Group

    viewer = users["viewer"]
    client.force_login(users["admin"])
    response = client.post(f"/admin/auth/user/{viewer.pk}/change/", {
        "username": viewer.username, "is_active": "on", "groups": [Group.objects.get(name="operator").pk],
        "date_joined_0": "2026-11-25", "date_joined_1": "14:00:00", "initial-date_joined_0": "2026-11-25",
        "initial-date_joined_1": "14:00:00"}, REMOTE_ADDR="198.51.100.9")
    assert response.status_code == 302, response.content[:1500]
    [entry] = AuditEntry.objects.filter(action="user.update")
    assert entry.subject == "user user-viewer" and entry.actor == users["admin"] and entry.remote_addr == "198.51.100.9"
    assert entry.before["groups"] == ["viewer"] and entry.after["groups"] == ["operator"]


def test_a_password_set_in_the_admin_is_audited_without_the_password(client, users):
    client.force_login(users["admin"])
    new = "another long passphrase 42"
    response = client.post(f"/admin/auth/user/{users['viewer'].pk}/password/", {"password1": new, "password2": new})
    assert response.status_code == 302
    [entry] = AuditEntry.objects.filter(action="user.update")
    assert entry.subject == "user user-viewer" and new not in str(entry.after) and "password" in str(entry.after)


def test_an_operator_issues_a_host_token_in_the_admin_and_sees_the_secret_once(client, users):
    client.force_login(users["operator"])
    assert client.get("/admin/ingest/hosttoken/add/").status_code == 200
    response = client.post("/admin/ingest/hosttoken/add/", {"hostname": "rack2-node4"})
    assert response.status_code == 200
    secret = response.context["secret"]
    assert secret in response.content.decode()
    host = Host.objects.get(hostname="rack2-node4")
    assert host.enrollment == Host.Enrollment.PENDING
    [token] = HostToken.objects.filter(host=host)
    assert token.token_hash == hashlib.sha256(secret.encode()).hexdigest()  # only the hash is kept
    assert response["Cache-Control"].startswith("max-age=0") or "no-cache" in response["Cache-Control"]
    listed = client.get("/admin/ingest/hosttoken/").content.decode()
    assert "rack2-node4" in listed and secret not in listed


@pytest.mark.parametrize("hostname", ["", "two words", "bad\x1b[2Jname", "<script>", "x" * 254])
def test_the_admin_token_form_refuses_a_bad_hostname_with_a_message(client, users, hostname):
    client.force_login(users["operator"])
    response = client.post("/admin/ingest/hosttoken/add/", {"hostname": hostname})
    assert response.status_code == 200 and "secret" not in response.context
    assert response.context["form"].errors["hostname"]
    assert not HostToken.objects.exists()


def test_a_viewer_cannot_issue_host_tokens_in_the_admin(client, users):
    client.force_login(users["viewer"])
    response = client.post("/admin/ingest/hosttoken/add/", {"hostname": "rack2-node4"})
    assert response.status_code in (302, 403) and not HostToken.objects.exists()
