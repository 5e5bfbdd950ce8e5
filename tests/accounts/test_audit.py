"""Every audited action leaves an entry saying who, when, what before and after."""
import csv
import io
import json
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.accounts.models import ApiToken, AuditEntry
from fleet.accounts.services import api_token_issue, api_token_revoke
from fleet.ingest.models import HostToken
from fleet.ingest.services import host_token_create, host_token_revoke, host_token_rotate
from fleet.inventory.models import Host, Label
from tests.accounts.people import PASSWORD

pytestmark = pytest.mark.django_db


def _entries(action):
    return list(AuditEntry.objects.filter(action=action).order_by("id"))


def test_login_is_audited_with_user_and_address(client, users):
    client.post("/accounts/login/", {"username": "user-viewer", "password": PASSWORD}, REMOTE_ADDR="192.0.2.7")
    [entry] = _entries("login")
    assert entry.actor == users["viewer"] and entry.remote_addr == "192.0.2.7"


def test_failed_login_is_audited_without_the_password(client, users):
    client.post("/accounts/login/", {"username": "user-viewer", "password": "wrong"}, REMOTE_ADDR="192.0.2.8")
    [entry] = _entries("login_failed")
    assert entry.subject == "user user-viewer" and entry.remote_addr == "192.0.2.8"
    assert "wrong" not in json.dumps([entry.before, entry.after, entry.subject])


def test_host_token_issue_revoke_and_rotate_are_audited():
    host, _ = host_token_create(hostname="rack1-node7")
    [issued] = _entries("host_token.issue")
    assert f"{host}" in issued.subject and "token_hash" not in json.dumps(issued.after)
    host_token_revoke(hostname="rack1-node7")
    [revoked] = _entries("host_token.revoke")
    assert revoked.before["revoked_at"] is None and revoked.after["revoked_at"] is not None
    host_token_rotate(hostname="rack1-node7")
    assert len(_entries("host_token.issue")) == 2
    assert HostToken.objects.filter(host=host, revoked_at__isnull=True).count() == 1


def _host_form(host, **changes):
    form = {"hostname": host.hostname, "machine_id": host.machine_id, "role": host.role, "enrollment": host.enrollment,
            "labels": [label.pk for label in host.labels.all()]}
    return {**form, **changes}


def test_host_role_and_label_changes_in_the_admin_are_audited_with_before_and_after(client, users):
    host = Host.objects.create(hostname="gpu-03")
    label = Label.objects.create(name="tenant-a")
    client.force_login(users["operator"])
    response = client.post(f"/admin/inventory/host/{host.pk}/change/", _host_form(host, role="gpu-passthrough", labels=[label.pk]))
    assert response.status_code == 302
    [entry] = _entries("host.update")
    assert entry.subject == "host gpu-03" and entry.actor == users["operator"]
    assert entry.before == {"role": "", "labels": []} and entry.after == {"role": "gpu-passthrough", "labels": ["tenant-a"]}
    host.refresh_from_db()
    client.post(f"/admin/inventory/host/{host.pk}/change/", _host_form(host, labels=[]))
    removed = _entries("host.update")[-1]
    assert removed.before == {"labels": ["tenant-a"]} and removed.after == {"labels": []}


def test_deleting_a_label_in_the_admin_is_audited_with_the_hosts_it_was_on(client, users):
    label = Label.objects.create(name="rack-9")
    Host.objects.create(hostname="n1").labels.add(label)
    client.force_login(users["operator"])
    assert client.post(f"/admin/inventory/label/{label.pk}/delete/", {"post": "yes"}).status_code == 302
    [entry] = _entries("label.delete")
    assert entry.subject == "label rack-9" and entry.before["hosts"] == ["n1"] and entry.actor == users["operator"]


def test_ingest_bookkeeping_on_a_host_is_not_audited():
    host = Host.objects.create(hostname="busy")
    host.last_seen = timezone.now()
    host.save(update_fields=["last_seen"])
    host.last_seen = timezone.now()
    host.save()
    assert not AuditEntry.objects.filter(subject__contains="busy").exists()


def _violation(host):
    from fleet.policy.models import Violation

    now = timezone.now()
    return Violation.objects.create(
        host=host, rule="group-mixed-ownership", severity="critical", subject_kind="group", subject_id="5",
        message="m", opened_at=now, updated_at=now, last_seen_at=now, fingerprint="f" * 64,
    )


def test_waiver_and_acknowledgement_are_audited_with_their_author():
    from fleet.policy.services import violation_acknowledge, violation_waive

    violation = _violation(Host.objects.create(hostname="h1"))
    waiver = violation_waive(violation=violation, justification="lab box", expires_at=timezone.now() + timedelta(days=7), by="rev1")
    [waived] = _entries("waiver.create")
    assert waived.actor_name == "rev1" and waived.after["justification"] == "lab box"
    assert waived.subject == f"waiver {waiver.pk} on group-mixed-ownership group 5 of host h1"
    violation_acknowledge(violation=violation, by="rev2", note="seen it")
    [ack] = _entries("violation.acknowledge")
    assert ack.actor_name == "rev2" and ack.after["acknowledged_by"] == "rev2" and ack.before["acknowledged_by"] == ""
    assert ack.subject == f"violation {violation.pk}: group-mixed-ownership group 5 of host h1"


def test_revoking_a_waiver_is_audited_with_the_window_it_ends():
    from fleet.policy.services import violation_waive, waiver_revoke

    violation = _violation(Host.objects.create(hostname="h4"))
    expires = timezone.now() + timedelta(days=7)
    waiver = violation_waive(violation=violation, justification="lab box", expires_at=expires, by="rev1")
    waiver_revoke(waiver=waiver, by="rev3")
    [revoked] = _entries("waiver.revoke")
    assert revoked.actor_name == "rev3" and revoked.before["waived_until"] == expires.isoformat()
    assert revoked.after["waived_until"] is None and revoked.after["revoked_by"] == "rev3"


def test_waiving_and_acknowledging_on_the_violations_page_are_audited_for_the_reviewer(client, users):
    violation = _violation(Host.objects.create(hostname="h3"))
    client.force_login(users["security-reviewer"])
    expires = (timezone.now() + timedelta(days=30)).strftime("%Y-%m-%dT%H:%M")
    client.post(f"/violations/{violation.pk}/waive/", {"justification": "lab host, no tenants", "expires_at": expires}, REMOTE_ADDR="203.0.113.9")
    client.post(f"/violations/{violation.pk}/acknowledge/", {"note": "seen"})
    [waived] = _entries("waiver.create")
    assert waived.actor == users["security-reviewer"] and waived.remote_addr == "203.0.113.9"
    assert waived.after["justification"] == "lab host, no tenants" and waived.after["waived_until"]
    [ack] = _entries("violation.acknowledge")
    assert ack.actor == users["security-reviewer"] and {"acknowledged_at", "acknowledged_by"} <= set(ack.after)


def test_the_engine_refreshing_a_violation_is_not_audited():
    violation = _violation(Host.objects.create(hostname="h2"))
    violation.last_seen_at = timezone.now()
    violation.message = "still firing"
    violation.save()
    assert not AuditEntry.objects.filter(action__startswith="violation.").exists()


def test_intent_edits_in_the_admin_are_audited_with_the_intent_before_and_after(client, users):
    client.force_login(users["security-reviewer"])
    response = client.post("/admin/policy/tenant/add/", {
        "name": "tenant-blue", "vm_patterns": '["blue-*"]', "cgroup_patterns": "[]", "workload_patterns": "[]", "labels": "[]",
    })
    assert response.status_code == 302, response.content[:2000]
    [entry] = _entries("intent.change")
    assert entry.actor == users["security-reviewer"]
    assert "tenant-blue" in entry.after["toml"] and "tenant-blue" not in entry.before["toml"]


def test_a_whole_intent_import_is_one_audit_entry(tmp_path):
    from django.core.management import call_command

    intent = tmp_path / "intent.toml"
    intent.write_text('[[tenants]]\nname = "tenant-red"\nvm_patterns = ["red-*"]\n')
    call_command("policy", "import", str(intent))
    entries = list(AuditEntry.objects.all())
    assert [e.action for e in entries] == ["intent.change"] and "tenant-red" in entries[0].after["toml"]


def test_api_token_issue_and_revoke_are_audited(users):
    token, secret = api_token_issue(user=users["viewer"], name="grafana")
    api_token_revoke(token=token)
    assert [e.action for e in AuditEntry.objects.filter(action__startswith="api_token.").order_by("id")] == ["api_token.issue", "api_token.revoke"]
    assert secret not in json.dumps([e.after for e in AuditEntry.objects.all()])
    assert not ApiToken.objects.filter(token_hash=secret).exists()


def test_a_page_action_is_attributed_to_the_logged_in_user(client, users):
    host = Host.objects.create(hostname="web-edit")
    client.force_login(users["admin"])
    response = client.post(f"/admin/inventory/host/{host.pk}/change/", {"hostname": "web-edit", "machine_id": "", "role": "dpdk", "enrollment": "pending"}, REMOTE_ADDR="198.51.100.4")
    assert response.status_code == 302
    [entry] = _entries("host.update")
    assert entry.actor == users["admin"] and entry.remote_addr == "198.51.100.4"


def _operator_edits_host(client, users, hostname):
    # A host named by its agent (untrusted), whose role an operator then sets in the admin.
    host = Host.objects.create(hostname=hostname)
    client.force_login(users["operator"])
    assert client.post(f"/admin/inventory/host/{host.pk}/change/", _host_form(host, role="dpdk")).status_code == 302
    client.logout()


def test_audit_export_as_csv_and_json_round_trips(client, users):
    _operator_edits_host(client, users, "=cmd|' /C calc'!A0")  # a hostile hostname must not become a spreadsheet formula
    client.force_login(users["security-reviewer"])
    rows = list(csv.DictReader(io.StringIO(client.get("/audit/?format=csv").content.decode())))
    data = json.loads(client.get("/audit/?format=json").content)
    assert len(rows) == len(data) == AuditEntry.objects.count()
    edited = next(r for r in rows if r["action"] == "host.update")
    assert "calc" in edited["subject"] and edited["subject"][:1] not in "=+-@"
    assert {d["action"] for d in data} == set(AuditEntry.objects.values_list("action", flat=True))


def test_viewer_cannot_read_the_audit_log(client, users):
    client.force_login(users["viewer"])
    assert client.get("/audit/").status_code == 403
    assert client.get("/audit/?format=json").status_code == 403


def test_the_audit_page_shows_hostile_subjects_as_text(client, users):
    _operator_edits_host(client, users, "<script>alert(1)</script>")
    client.force_login(users["operator"])
    html = client.get("/audit/?action=host.").content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>alert(1)" not in html
