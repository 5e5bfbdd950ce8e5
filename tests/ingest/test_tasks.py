"""The apply task and the sweeper: ordering by seq, idempotence, failures, re-queueing, staleness."""
import json
import random
import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from fleet.ingest.models import Snapshot
from fleet.ingest.services import hosts_mark_stale, snapshot_receive_document, snapshots_requeue_stuck
from fleet.ingest.tasks import snapshot_apply_task, snapshot_queue_apply, sweep
from fleet.inventory.models import Change, Device, Host
from fleet.policy.models import Violation
from tests.agent.groundtruth import lspci_drivers
from tests.inventory.documents import document_of

pytestmark = pytest.mark.django_db

BEFORE, AFTER = "shared-bridge-group", "shared-group-all-vfio"


def stored(host, root, seq):
    result = snapshot_receive_document(host=host, document=document_of(root, seq=seq, hostname=host.hostname))
    assert result.http_status == 202, result.body
    return result.body["id"]


def drivers_of(host):
    return dict(Device.objects.filter(host=host).values_list("bdf", "driver"))


def expected_drivers(root):
    return {bdf: v["driver"] for bdf, v in lspci_drivers(root).items()}


def test_an_older_snapshot_arriving_after_a_newer_one_is_superseded_and_changes_nothing(capture, queued):
    host = Host.objects.create(hostname="h")
    newer = stored(host, capture(AFTER), seq=2)
    assert snapshot_apply_task(newer) == "applied"
    older = stored(host, capture(BEFORE), seq=1)
    assert snapshot_apply_task(older) == "superseded"
    host.refresh_from_db()
    assert host.applied_seq == 2 and host.applied_snapshot_id == newer
    assert drivers_of(host) == expected_drivers(capture(AFTER))


def test_pending_snapshots_of_a_host_apply_in_seq_order_whichever_task_runs_first(capture, queued):
    host = Host.objects.create(hostname="h")
    first = stored(host, capture(BEFORE), seq=1)
    second = stored(host, capture(AFTER), seq=2)
    assert snapshot_apply_task(second) == "applied"
    assert snapshot_apply_task(first) == "applied"  # already applied as part of the batch: nothing more happens
    kinds = list(Change.objects.filter(host=host).order_by("id").values_list("snapshot_id", "kind"))
    assert kinds[0] == (first, Change.Kind.HOST_ENROLLED)
    assert (second, Change.Kind.DRIVER_CHANGED) in kinds
    assert drivers_of(host) == expected_drivers(capture(AFTER))


def test_running_the_task_twice_changes_nothing_the_second_time(capture, queued):
    host = Host.objects.create(hostname="h")
    stored_id = stored(host, capture(BEFORE), seq=1)
    snapshot_apply_task(stored_id)
    changes = Change.objects.count()
    processed = Snapshot.objects.get(pk=stored_id).processed_at
    assert snapshot_apply_task(stored_id) == "applied"
    assert Change.objects.count() == changes
    assert Snapshot.objects.get(pk=stored_id).processed_at == processed


def test_a_snapshot_that_cannot_be_applied_is_marked_failed_with_its_error(queued):
    host = Host.objects.create(hostname="h")
    broken = Snapshot.objects.create(host=host, raw=zlib.compress(b"{not json"), content_hash="x" * 64, seq=1, received_at=timezone.now())
    assert snapshot_apply_task(broken.pk) == "failed"
    broken.refresh_from_db()
    assert broken.error and broken.processed_at is not None
    assert Device.objects.filter(host=host).count() == 0



def test_snapshots_are_stored_zstd_compressed_and_those_stored_with_zlib_before_still_apply(capture, queued):
    import zstandard

    host = Host.objects.create(hostname="h")
    new_id = stored(host, capture(BEFORE), seq=1)
    raw = bytes(Snapshot.objects.get(pk=new_id).raw)
    document = zstandard.ZstdDecompressor().decompress(raw)  # a zstd frame, readable by any zstd tool
    assert json.loads(document)["seq"] == 1 and len(raw) < len(document) / 5
    assert snapshot_apply_task(new_id) == "applied"
    # A row written by the previous release: zlib.
    older = document_of(capture(AFTER), seq=2, hostname="h")
    legacy = Snapshot.objects.create(host=host, raw=zlib.compress(json.dumps(older).encode(), 6), content_hash="y" * 64,
                                     seq=2, received_at=timezone.now())
    assert json.loads(legacy.document_bytes()) == older
    assert snapshot_apply_task(legacy.pk) == "applied"
    assert drivers_of(host) == expected_drivers(capture(AFTER))

def test_the_sweeper_requeues_a_snapshot_left_received_and_it_then_applies(capture, queued):
    host = Host.objects.create(hostname="h")
    lost = stored(host, capture(BEFORE), seq=1)
    queued.clear()  # the broker lost it
    Snapshot.objects.filter(pk=lost).update(received_at=timezone.now() - timedelta(minutes=10))
    fresh_host = Host.objects.create(hostname="fresh")
    fresh = stored(fresh_host, capture(AFTER), seq=1)
    queued.clear()
    assert snapshots_requeue_stuck(older_than_seconds=120, queue=snapshot_queue_apply) == [lost]
    assert queued == [lost] and fresh not in queued
    snapshot_apply_task(queued[0])
    assert Snapshot.objects.get(pk=lost).status == Snapshot.Status.APPLIED
    assert drivers_of(host) == expected_drivers(capture(BEFORE))


def test_hosts_silent_for_the_configured_intervals_are_marked_stale(settings):
    settings.FLEET_REPORT_INTERVAL, settings.FLEET_STALE_AFTER_INTERVALS = 60, 3
    now = timezone.now()
    silent = Host.objects.create(hostname="silent", last_seen=now - timedelta(seconds=181))
    recent = Host.objects.create(hostname="recent", last_seen=now - timedelta(seconds=179))
    never = Host.objects.create(hostname="never-reported")
    assert hosts_mark_stale(now=now) == 1
    assert [h.stale for h in Host.objects.filter(pk__in=[silent.pk, recent.pk, never.pk]).order_by("hostname")] == [False, False, True]


def test_the_sweep_task_does_both(queued, settings):
    Host.objects.create(hostname="silent", last_seen=timezone.now() - timedelta(days=1))
    assert sweep() == {"requeued": 0, "stale": 1}


def test_policy_is_evaluated_after_the_apply(capture, queued):
    host = Host.objects.create(hostname="h")
    snapshot_apply_task(stored(host, capture("no-iommu"), seq=1))
    uio = {bdf for bdf, v in lspci_drivers(capture("no-iommu")).items() if v["driver"] == "uio_pci_generic"}
    assert uio
    assert Violation.objects.filter(host=host, rule="uio-driver").exists()


def test_a_policy_failure_is_logged_and_does_not_undo_the_apply(capture, queued, monkeypatch, caplog):
    def broken(**kwargs):
        raise RuntimeError("rule bug")

    monkeypatch.setattr("fleet.policy.services.violations_sync_for_host", broken)
    host = Host.objects.create(hostname="h")
    assert snapshot_apply_task(stored(host, capture(BEFORE), seq=1)) == "applied"
    assert drivers_of(host) == expected_drivers(capture(BEFORE))
    assert "policy evaluation of host h failed" in caplog.text


def test_violations_are_written_in_the_apply_transaction_and_roll_back_with_it(capture, queued, monkeypatch):
    from fleet.ingest.services import apply as services

    real_policy_sync = services._policy_sync

    def commit_lost_after_policy(host, replaced, *args):
        real_policy_sync(host, replaced, *args)
        assert Violation.objects.filter(host=host, rule="uio-driver").exists(), "policy ran inside the transaction"
        raise services.OperationalError("connection lost before the commit")

    host = Host.objects.create(hostname="h")
    snapshot_id = stored(host, capture("no-iommu"), seq=1)
    monkeypatch.setattr(services, "_policy_sync", commit_lost_after_policy)
    with pytest.raises(services.OperationalError):
        services.snapshot_apply(snapshot_id=snapshot_id)
    assert not Violation.objects.filter(host=host).exists() and not Device.objects.filter(host=host).exists()
    assert Snapshot.objects.get(pk=snapshot_id).status == Snapshot.Status.RECEIVED, "the retry applies it again"
    monkeypatch.setattr(services, "_policy_sync", real_policy_sync)
    assert snapshot_apply_task(snapshot_id) == "applied"
    assert Violation.objects.filter(host=host, rule="uio-driver").exists()


def _plan_nodes(plan):
    yield plan
    for child in plan.get("Plans", []):
        yield from _plan_nodes(child)


@pytest.mark.django_db(transaction=True)  # committed rows, analysed as the autovacuum daemon would see them
def test_the_apply_finds_a_hosts_pending_snapshots_without_reading_its_history(postgres_service):
    """The batch lookup must cost the same for a host with years of snapshots as for a new one, backlog or not."""
    from django.db import connection

    from fleet.ingest.services.apply import pending_batch

    if connection.vendor != "postgresql":
        pytest.fail("the test database is not PostgreSQL although PostgreSQL is reachable")
    host = Host.objects.create(hostname="long-history")
    others = Host.objects.bulk_create(Host(hostname=f"busy-{n}") for n in range(400))
    now = timezone.now()
    # A thousand snapshots of this host's history among the rest of the fleet's, in arrival order (interleaved),
    # and a backlog elsewhere: "every pending snapshot" is no shortcut either.
    rows = [Snapshot(host=host, raw=b"", content_hash=f"{n:064x}", seq=n, received_at=now, status=Snapshot.Status.APPLIED)
            for n in range(1, 1001)]
    rows += [Snapshot(host=other, raw=b"", content_hash="e" * 64, seq=n, received_at=now,
                      status=Snapshot.Status.RECEIVED if n == 11 else Snapshot.Status.APPLIED)
             for other in others for n in range(1, 12)]
    random.Random(3).shuffle(rows)
    Snapshot.objects.bulk_create(rows)
    pending = Snapshot.objects.create(host=host, raw=b"", content_hash="f" * 64, seq=1001, received_at=now)
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE ingest_snapshot")
    plan = json.loads(pending_batch(host, pending.pk, 1001).explain(format="json", analyze=True))[0]["Plan"]
    nodes = list(_plan_nodes(plan))
    assert plan["Actual Rows"] == 1
    assert sum(node.get("Rows Removed by Filter", 0) + node.get("Rows Removed by Index Recheck", 0) for node in nodes) == 0
    assert not any(node["Node Type"] == "Seq Scan" for node in nodes)


def test_a_hosts_first_applied_snapshot_activates_it_and_the_audit_log_records_it(capture, queued):
    from fleet.accounts.models import AuditEntry
    from fleet.ingest.services import host_token_create

    host, _ = host_token_create(hostname="pending-host")
    assert host.enrollment == Host.Enrollment.PENDING
    assert snapshot_apply_task(stored(host, capture("isolated-nics"), seq=1)) == "applied"
    assert Host.objects.get(pk=host.pk).enrollment == Host.Enrollment.ACTIVE
    entry = AuditEntry.objects.get(action="host.update", subject__contains="pending-host")
    assert entry.before == {"enrollment": "pending"} and entry.after == {"enrollment": "active"}
    # Later snapshots change no audited column: nothing more is recorded.
    assert snapshot_apply_task(stored(host, capture("shared-group-all-vfio"), seq=2)) == "applied"
    assert AuditEntry.objects.filter(action="host.update", subject__contains="pending-host").count() == 1

