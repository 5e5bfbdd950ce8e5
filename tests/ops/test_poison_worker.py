"""The apply's bounds with a real Celery worker (solo pool, as deploy/systemd runs it), Redis and PostgreSQL:
a poison snapshot ends `failed` and the host's next report applies; an apply stuck past its soft time
limit is stopped, marked failed, and the same worker goes on (issue 10 items 2 and 5)."""
import json

import psycopg
from django.utils import timezone

from fleet.ingest.models import Snapshot
from fleet.inventory.models import Host
from tests.e2e.processes import wait_until
from tests.ingest.test_poison import deep_document, plain_document, poisoned

CAPTURE, LATER = "shared-bridge-group", "shared-group-all-vfio"


def _row(host, body: bytes, seq: int) -> int:
    return Snapshot.objects.create(host=host, raw=Snapshot.compress(body), size=len(body), content_hash=f"{seq:064x}",
                                   seq=seq, received_at=timezone.now()).pk


def _queue(procs, *ids: int) -> None:
    code = f"from fleet.ingest.tasks import snapshot_queue_apply; assert all(snapshot_queue_apply(i) for i in {list(ids)!r})"
    done = procs.manage("shell", "-c", code)
    assert done.returncode == 0, done.stdout + done.stderr


def _status(pk: int) -> str:
    return Snapshot.objects.filter(pk=pk).values_list("status", flat=True).get()


def test_a_poison_snapshot_fails_and_the_hosts_next_report_applies_on_a_real_worker(procs, redis_port, capture):
    procs.redis(redis_port)
    worker = procs.worker()
    host = Host.objects.create(hostname="poisoned")
    poison = _row(host, deep_document(capture(CAPTURE), "poisoned", seq=1), 1)
    _queue(procs, poison)
    wait_until(lambda: _status(poison) == "failed", timeout=60, what="the poison snapshot to fail", proc=worker)
    assert poisoned(Snapshot.objects.get(pk=poison).error)
    later = _row(host, plain_document(capture(LATER), "poisoned", seq=2), 2)
    _queue(procs, later)
    wait_until(lambda: _status(later) == "applied", timeout=60, what="the next snapshot to apply", proc=worker)
    assert Snapshot.objects.get(pk=poison).attempts == 1, "tried once, never again"


def test_an_apply_stuck_past_its_soft_time_limit_is_stopped_and_the_worker_goes_on(procs, redis_port, capture, database_url):
    procs.redis(redis_port)
    worker = procs.start("worker", [*procs.worker_argv("solo")], env={"FLEET_APPLY_SOFT_TIME_LIMIT": "2", "FLEET_APPLY_TIME_LIMIT": "60"})
    wait_until(lambda: " ready." in worker.text(), timeout=60, what="the worker", proc=worker)
    host = Host.objects.create(hostname="stuck")
    other = Host.objects.create(hostname="other")
    stuck = _row(host, plain_document(capture(CAPTURE), "stuck", seq=1), 1)
    # Another session holds the host's row: the apply waits for the lock, as one stuck on anything would.
    with psycopg.connect(database_url) as blocker:
        blocker.execute("SELECT id FROM inventory_host WHERE id = %s FOR UPDATE", [host.pk])
        _queue(procs, stuck)
        wait_until(lambda: _status(stuck) == "failed", timeout=30, what="the soft time limit to end the stuck apply", proc=worker)
        blocker.rollback()
    assert "SoftTimeLimitExceeded" in Snapshot.objects.get(pk=stuck).error
    fine = _row(other, json.dumps(json.loads(plain_document(capture(LATER), "other", seq=1))).encode(), 1)
    _queue(procs, fine)
    wait_until(lambda: _status(fine) == "applied", timeout=60, what="the same worker to apply the next one", proc=worker)
    assert worker.popen.poll() is None, "the soft limit stops the task, not the worker"
