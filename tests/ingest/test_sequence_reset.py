"""`manage.py host_sequence_reset`: the way out for a host whose applied seq is beyond what its agent sends."""
import pytest
from django.core.management import CommandError, call_command

from fleet.accounts.models import AuditEntry
from fleet.ingest.models import Snapshot
from fleet.ingest.services import snapshot_receive_document
from fleet.ingest.tasks import snapshot_apply_task
from fleet.inventory.models import Device, Host
from tests.agent.groundtruth import lspci_drivers
from tests.ingest.test_poison import plain_document, stored_row
from tests.inventory.documents import document_of

pytestmark = pytest.mark.django_db

BEFORE, AFTER = "shared-bridge-group", "shared-group-all-vfio"
AGENT_SEQ = 1_764_000_000_000  # what an agent's clock-seeded counter sends


def test_a_host_frozen_by_a_huge_seq_applies_its_real_report_again_after_an_audited_reset(capture, capsys,
                                                                                         django_capture_on_commit_callbacks):
    host = Host.objects.create(hostname="frozen")
    # A report stored before seq was bounded (receive refuses it now) applied with seq 10**18 ...
    bad = stored_row(host, plain_document(capture(BEFORE), "frozen", seq=10**18), seq=10**18)
    assert snapshot_apply_task(bad.pk) == "applied"
    # ... and the agent's real reports are superseded from then on.
    real = snapshot_receive_document(host=host, document=document_of(capture(AFTER), seq=AGENT_SEQ, hostname="frozen"))
    assert snapshot_apply_task(real.body["id"]) == "superseded"

    with django_capture_on_commit_callbacks(execute=True):  # the re-queue goes out once the reset commits
        call_command("host_sequence_reset", "frozen")

    assert f"applied seq {10**18} -> None; its latest report (snapshot {real.body['id']}) queued again" in capsys.readouterr().out
    assert Snapshot.objects.get(pk=real.body["id"]).status == "applied"  # tasks run in process here
    host.refresh_from_db()
    assert host.applied_seq == AGENT_SEQ
    assert dict(Device.objects.filter(host=host).values_list("bdf", "driver")) == {
        bdf: v["driver"] for bdf, v in lspci_drivers(capture(AFTER)).items()}
    entry = AuditEntry.objects.get(action="host.sequence_reset")
    assert entry.subject == "host frozen" and entry.before == {"applied_seq": 10**18}
    assert entry.after == {"applied_seq": None, "requeued_snapshot": real.body["id"]}
    # The next real report applies in order.
    nxt = snapshot_receive_document(host=host, document=document_of(capture(BEFORE), seq=AGENT_SEQ + 1, hostname="frozen"))
    assert snapshot_apply_task(nxt.body["id"]) == "applied"


def test_a_reset_to_a_given_seq_keeps_older_reports_superseded(capture):
    host = Host.objects.create(hostname="h")
    assert snapshot_apply_task(stored_row(host, plain_document(capture(BEFORE), "h", seq=500), seq=500).pk) == "applied"
    call_command("host_sequence_reset", "h", "--to", "100")
    assert Host.objects.get(pk=host.pk).applied_seq == 100
    assert snapshot_apply_task(stored_row(host, plain_document(capture(AFTER), "h", seq=50), seq=50).pk) == "superseded"
    assert snapshot_apply_task(stored_row(host, plain_document(capture(AFTER), "h", seq=101), seq=101).pk) == "applied"


@pytest.mark.parametrize("args, message", [(["nobody"], "no host 'nobody'"), (["h", "--to", "1e18"], "--to: a whole number"),
                                           (["h", "--to", str(2**53)], "--to: a whole number")])
def test_bad_arguments_are_refused_and_nothing_is_audited(args, message):
    Host.objects.create(hostname="h", applied_seq=7)
    with pytest.raises(CommandError, match=message):
        call_command("host_sequence_reset", *args)
    assert Host.objects.get(hostname="h").applied_seq == 7
    assert not AuditEntry.objects.filter(action="host.sequence_reset").exists()
