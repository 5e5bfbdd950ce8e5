"""Nothing accepted is ever lost: the web server stopped while the agent keeps collecting, a worker
SIGKILLed in the middle of applying a snapshot, Redis stopped and started. Real gunicorn, Celery,
redis-server and fleet-agent processes against the per-run PostgreSQL test database."""
import json
import re
import threading
import time

import psutil
import psycopg
import pytest

from tests.e2e.processes import BIN, free_port, wait_until
from tests.e2e.rebind import NIC, driver_of, flip_driver
from tests.e2e.stack import agent_args, enrol, hostname_of, snapshots_of

pytestmark = pytest.mark.django_db(transaction=True)

COLLECTED = re.compile(r"collected seq=(\d+) (changed|unchanged)")


def _statuses(hostname):
    """(seq counted from the host's first snapshot, status) in arrival order."""
    stored = snapshots_of(hostname)
    return [(s.seq - stored[0].seq + 1, s.status) for s in stored]


def _driver_changes(hostname, snapshot_id=None):
    from fleet.inventory.models import Change

    rows = Change.objects.filter(host__hostname=hostname, kind=Change.Kind.DRIVER_CHANGED)
    if snapshot_id is not None:
        rows = rows.filter(snapshot_id=snapshot_id)
    return list(rows.order_by("id"))


class FlipAfterEachCollection(threading.Thread):
    """Watches the agent's log and rebinds the NIC right after each collection, so the next differs."""

    def __init__(self, agent, root):
        super().__init__(daemon=True)
        self.agent, self.root, self.done = agent, root, threading.Event()
        self.flipped: set[int] = set()

    def run(self):
        while not self.done.is_set():
            for seq, _ in COLLECTED.findall(self.agent.text()):
                if int(seq) not in self.flipped:
                    self.flipped.add(int(seq))
                    flip_driver(self.root)
            if self.agent.popen.poll() is not None:
                return
            time.sleep(0.02)


def _enrolled_stack(procs, redis_port, root, tmp_path):
    procs.redis(redis_port)
    worker = procs.worker()
    port = free_port()
    web = procs.web(port)
    hostname = hostname_of(root)
    return worker, web, port, hostname, enrol(procs, hostname, tmp_path)


def test_every_snapshot_collected_while_the_server_was_down_arrives_in_seq_order(procs, redis_port, writable_capture, tmp_path):
    root = writable_capture("isolated-nics")
    worker, web, port, hostname, token = _enrolled_stack(procs, redis_port, root, tmp_path)
    iterations = 12
    agent = procs.agent(*agent_args(port, token, root, tmp_path / "spool"), "--interval", "0.4", "--max-iterations",
                        str(iterations), "--drain-timeout", "30", "--backoff-base", "0.2", "--backoff-max", "0.5")
    flipper = FlipAfterEachCollection(agent, root)
    flipper.start()
    try:
        wait_until(lambda: len(snapshots_of(hostname)) >= 2, timeout=30, what="two snapshots stored", proc=agent)
        web.stop()
        stored_before_outage = len(snapshots_of(hostname))
        wait_until(lambda: agent.text().count("not delivered") >= 3, timeout=30, what="the agent to spool during the outage",
                   proc=agent)
        procs.web(port)
        assert agent.popen.wait(60) == 0, agent.tail()
    finally:
        flipper.done.set()
        flipper.join(5)

    collected = [(int(seq), kind) for seq, kind in COLLECTED.findall(agent.text())]
    first = collected[0][0]
    assert [seq for seq, _ in collected] == list(range(first, first + iterations))
    # Each collection normally follows a flip; a flip that lost the race with the next collection under
    # load only makes that collection "unchanged" (not sent), it must not break the checks below.
    changed = [seq for seq, kind in collected if kind == "changed"]
    assert len(changed) >= iterations - 2, collected
    assert stored_before_outage < len(changed)
    wait_until(lambda: [s for _, s in _statuses(hostname)] == ["applied"] * len(changed), timeout=60,
               what="every snapshot applied", proc=worker)
    # Arrival order (ids) is seq order, with no gap and no duplicate.
    assert [s.seq for s in snapshots_of(hostname)] == changed
    # Consecutive changed collections differ by the NIC's driver alone: one driver change each, alternating.
    changes = _driver_changes(hostname)
    assert len(changes) == len(changed) - 1
    assert [(c.before, c.after) for c in changes[1:]] == [(c.after, c.before) for c in changes[:-1]]
    from fleet.inventory.models import Device

    last = snapshots_of(hostname)[-1]
    sent = json.loads(last.document_bytes())
    assert Device.objects.get(host__hostname=hostname, bdf=NIC).driver == next(
        d["driver"] for d in sent["devices"] if d["bdf"] == NIC)


def _beat(procs, tmp_path):
    """celery beat running the ingest sweeper every second, re-queueing what waited over a second."""
    return procs.start("beat", [str(BIN / "celery"), "-A", "fleet", "beat", "--loglevel=INFO",
                                "-s", str(tmp_path / "beat-schedule")])


def _wait_for_blocked_update(database_url: str, dbname: str) -> str:
    """The query a worker is stuck on behind our row lock (its apply transaction is open)."""
    with psycopg.connect(database_url, autocommit=True) as watch:
        def blocked():
            row = watch.execute(
                "SELECT query FROM pg_stat_activity WHERE datname = %s AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()",
                [dbname]).fetchone()
            return row[0] if row else None

        return wait_until(blocked, timeout=30, what="the worker to block inside its apply transaction")


@pytest.mark.parametrize("victim", ["worker", "pool process"])
def test_a_worker_killed_in_the_middle_of_applying_leaves_the_snapshot_applied_exactly_once(
        procs, redis_port, writable_capture, tmp_path, database_url, victim):
    """`worker`: the whole (solo) worker dies; its message stays unacknowledged and the sweeper re-queues
    the snapshot for a new worker. `pool process`: a prefork child dies; the parent rejects the message
    back to the queue (reject_on_worker_lost) and a fresh child applies it, no sweeper involved."""
    root = writable_capture("isolated-nics")
    worker, web, port, hostname, token = _enrolled_stack(procs, redis_port, root, tmp_path)
    spool = tmp_path / "spool"
    assert procs.agent(*agent_args(port, token, root, spool), "--once").popen.wait(60) == 0
    wait_until(lambda: _statuses(hostname) == [(1, "applied")], timeout=30, what="the first snapshot applied", proc=worker)
    worker.stop()

    new_driver = flip_driver(root)
    agent = procs.agent(*agent_args(port, token, root, spool), "--once")
    assert agent.popen.wait(60) == 0, agent.tail()
    [first, second] = snapshots_of(hostname)
    assert (second.seq, second.status) == (first.seq + 1, "received")

    # Hold the snapshot row: the worker's apply writes the inventory and its changes, then blocks
    # on marking the snapshot applied, with everything it wrote still uncommitted.
    with psycopg.connect(database_url) as holder:
        holder.execute("SELECT id FROM ingest_snapshot WHERE id = %s FOR UPDATE", [second.pk])
        doomed = procs.worker(pool="solo" if victim == "worker" else "prefork")
        query = _wait_for_blocked_update(database_url, database_url.rsplit("/", 1)[1])
        assert "ingest_snapshot" in query and query.lstrip().upper().startswith("UPDATE")
        if victim == "worker":
            assert doomed.kill() == -9
        else:
            [child] = psutil.Process(doomed.popen.pid).children()
            child.kill()
            child.wait(10)
        holder.rollback()

    if victim == "worker":
        survivor = procs.worker()
        _beat(procs, tmp_path)
    else:
        survivor = doomed
    wait_until(lambda: _statuses(hostname) == [(1, "applied"), (2, "applied")], timeout=60,
               what="the second snapshot applied after the restart", proc=survivor)
    [change] = _driver_changes(hostname, second.pk)
    assert (change.subject, change.before, change.after) == (NIC, "e1000e", new_driver)
    from fleet.inventory.models import Change, Device

    rows = list(Change.objects.filter(snapshot_id=second.pk).values_list("kind", "subject"))
    assert len(rows) == len(set(rows)), f"a change was written twice: {rows}"
    assert Device.objects.get(host__hostname=hostname, bdf=NIC).driver == new_driver


def _ingest_with_redis_down(procs, redis_port, root, tmp_path):
    """Enrol and apply seq 1, stop Redis, rebind the NIC and push seq 2: returns (agent, hostname, token, new driver)."""
    worker, web, port, hostname, token = _enrolled_stack(procs, redis_port, root, tmp_path)
    assert procs.agent(*agent_args(port, token, root, tmp_path / "spool"), "--once").popen.wait(60) == 0
    wait_until(lambda: _statuses(hostname) == [(1, "applied")], timeout=30, what="the first snapshot applied", proc=worker)
    next(c for c in procs.children if c.name == "redis").stop()
    new_driver = flip_driver(root)
    agent = procs.agent(*agent_args(port, token, root, tmp_path / "spool"), "--once")
    agent.popen.wait(60)
    return agent, port, hostname, token, new_driver


def test_the_api_commits_and_answers_202_while_the_broker_is_down(procs, redis_port, writable_capture, tmp_path):
    agent, _, hostname, _, _ = _ingest_with_redis_down(procs, redis_port, writable_capture("isolated-nics"), tmp_path)
    web = next(c for c in procs.children if c.name == "web")
    assert re.search(r"delivered seq=\d+: HTTP 202", agent.text()), (
        "the server must commit the snapshot and answer 202 when publishing to the broker fails\n" + agent.tail() + web.tail())
    assert _statuses(hostname) == [(1, "applied"), (2, "received")]


def test_a_snapshot_accepted_while_redis_was_down_is_applied_after_the_sweeper_requeues_it(
        procs, redis_port, writable_capture, tmp_path):
    root = writable_capture("isolated-nics")
    agent, port, hostname, token, new_driver = _ingest_with_redis_down(procs, redis_port, root, tmp_path)
    # Stored before anything was published: whatever the answer was, the row is there.
    assert _statuses(hostname) == [(1, "applied"), (2, "received")]

    # A fresh, empty Redis: the task message published while it was down is gone for good.
    procs.redis(redis_port)
    beat = _beat(procs, tmp_path)
    wait_until(lambda: _statuses(hostname) == [(1, "applied"), (2, "applied")], timeout=60,
               what="the sweeper to re-queue and a worker to apply the snapshot", proc=beat)
    [_, second] = snapshots_of(hostname)
    [change] = _driver_changes(hostname, second.pk)
    assert (change.subject, change.before, change.after) == (NIC, "e1000e", new_driver)
    from fleet.inventory.models import Device

    assert Device.objects.get(host__hostname=hostname, bdf=NIC).driver == new_driver

    # If the agent kept seq 2 spooled (no 202 while the broker was down), its replay is recognised, not re-applied.
    again = procs.agent(*agent_args(port, token, root, tmp_path / "spool"), "--once")
    assert again.popen.wait(60) == 0, again.tail()
    assert [seq for seq, _ in _statuses(hostname)] == [1, 2]
    assert len(_driver_changes(hostname, second.pk)) == 1
