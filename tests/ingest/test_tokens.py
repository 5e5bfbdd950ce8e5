"""The token lifecycle records each operator decision in the audit log exactly once."""
import pytest

from fleet.accounts.models import AuditEntry
from fleet.ingest.models import HostToken
from fleet.ingest.services import host_token_create, host_token_revoke, host_token_rotate
from fleet.inventory.models import Host, Label

pytestmark = pytest.mark.django_db


def actions():
    return [(e.action, e.before, e.after) for e in AuditEntry.objects.order_by("id")]


def test_issuing_a_token_with_a_role_and_labels_audits_each_decision_once():
    # Stands for `manage.py host_token create gpu-07 --role gpu-passthrough --label tenant-a --label rack-3`.
    Label.objects.bulk_create([Label(name="rack-3")])  # an existing label, created before (bulk: not audited)
    host, secret = host_token_create(hostname="gpu-07", role="gpu-passthrough", labels=["tenant-a", "rack-3", "tenant-a"])
    tenant, rack = Label.objects.get(name="tenant-a"), Label.objects.get(name="rack-3")
    token = HostToken.objects.get(host=host)
    assert actions() == [
        ("host.update", {"role": ""}, {"role": "gpu-passthrough"}),
        ("label.create", None, {"id": tenant.pk, "name": "tenant-a"}),
        ("host.labels_add", None, {"ids": sorted([tenant.pk, rack.pk]), "names": ["rack-3", "tenant-a"]}),
        ("host_token.issue", None, {"id": token.pk, "host": "gpu-07"}),
    ]
    assert set(Host.objects.get(pk=host.pk).labels.values_list("name", flat=True)) == {"tenant-a", "rack-3"}
    assert all("gpu-07" in e.subject or "tenant-a" in e.subject for e in AuditEntry.objects.all())
    assert secret not in str(actions())
    # The same role and labels again: only the new token is a decision.
    AuditEntry.objects.all().delete()
    host_token_create(hostname="gpu-07", role="gpu-passthrough", labels=["rack-3"])
    assert [a for a, _, _ in actions()] == ["host_token.issue"]


def test_revoking_audits_each_token_by_id_and_host_and_rotating_issues_one_more():
    host, _ = host_token_create(hostname="rack1-node7")
    host_token_create(hostname="rack1-node7")
    ids = sorted(HostToken.objects.filter(host=host).values_list("id", flat=True))
    assert host_token_revoke(hostname="rack1-node7") == 2
    revoked = list(AuditEntry.objects.filter(action="host_token.revoke").order_by("id"))
    assert [e.subject for e in revoked] == [f"token {pk} of host rack1-node7" for pk in ids]
    assert HostToken.objects.filter(host=host, revoked_at__isnull=True).count() == 0
    host_token_rotate(hostname="rack1-node7")
    assert AuditEntry.objects.filter(action="host_token.issue").count() == 3
    assert AuditEntry.objects.filter(action="host_token.revoke").count() == 2  # nothing was left to revoke
