#!/usr/bin/env python
"""Ingest benchmark against real PostgreSQL, Redis, gunicorn and `celery worker` processes.

Prints, in one run:
1. unchanged reports per second through HTTP (gunicorn, concurrent keep-alive clients), for the
   heartbeat the agent sends when nothing changed (`POST /api/v1/heartbeat`) and for the full
   unchanged document (what an agent without heartbeat support, or after a 409, sends);
2. changed 480-device snapshots applied per second by ONE worker (`celery worker -c 1`, pool solo
   = one process, and prefork = parent + one child; the whole task: load, diff, write, change
   rows, policy sync), for two kinds of change: a realistic one (8 of the host's GPUs move between
   nvidia and vfio-pci, each snapshot the reverse of the previous one) and the worst case (every
   device's driver moves: every device row and ~480 change rows written, policy findings churn);
   plus the in-process split apply / policy of the realistic one;
3. the time to apply one changed large snapshot, and one whose every row is new, next to a
   baseline that bulk-inserts the same rows with plain SQL (psycopg COPY and executemany).

Uses its own database (`fleet_bench`, dropped and re-created) and its own Redis database
number (default 9, flushed), so nobody else's worker takes its tasks.

    .venv/bin/python bench/ingest.py [--hosts 200] [--seconds 8] [--changed 60]
"""
from __future__ import annotations

import argparse
import copy
import gzip
import http.client
import json
import multiprocessing
import os
import socket
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default="fleet_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--hosts", type=int, default=200, help="enrolled small hosts reporting unchanged")
    parser.add_argument("--seconds", type=float, default=8.0, help="duration of each HTTP load phase")
    parser.add_argument("--client-procs", type=int, default=2)
    parser.add_argument("--client-threads", type=int, default=8)
    parser.add_argument("--web-workers", type=int, help="gunicorn workers (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--web-threads", type=int, help="threads per gunicorn worker (default: deploy/gunicorn.conf.py's)")
    parser.add_argument("--large-hosts", type=int, default=4)
    parser.add_argument("--changed", type=int, default=60, help="changed 480-device snapshots for the worker phase")
    parser.add_argument("--pool", default="solo,prefork", help="celery worker pools for the worker phase, each -c 1 (solo: one process)")
    parser.add_argument("--prefetch", type=int, help="worker --prefetch-multiplier (default: the settings', 1)")
    parser.add_argument("--port", type=int, default=8799)
    parser.add_argument("--keep", action="store_true", help="keep the benchmark database")
    parser.add_argument("--phases", default="http,worker,apply", help="comma-separated subset of http,worker,apply")
    return parser.parse_args()


def env_for(args) -> dict:
    return {
        **os.environ,
        "DATABASE_URL": f"postgres://postgres@127.0.0.1:5432/{args.db}",
        "FLEET_BROKER_URL": args.redis,
        "DJANGO_SETTINGS_MODULE": "fleet.settings",
        "FLEET_LOG_LEVEL": "WARNING",
        "FLEET_DB_CONN_MAX_AGE": "600",
        "FLEET_INGEST_MAX_QUEUE": "0",
        "PYTHONPATH": str(ROOT),
    }


def recreate_database(name: str, *, create: bool = True) -> None:
    import psycopg

    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        if create:
            conn.execute(f'CREATE DATABASE "{name}"')


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listening on {port}")


def wait_applied(ids: list[int], timeout: float = 600.0) -> float:
    from fleet.ingest.models import Snapshot

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pending = Snapshot.objects.filter(id__in=ids, status=Snapshot.Status.RECEIVED).count()
        if pending == 0:
            return time.perf_counter()
        time.sleep(0.05)
    raise RuntimeError(f"{pending} snapshots still not applied after {timeout}s")


# --- HTTP load --------------------------------------------------------------------------------


def _client_process(port, path, jobs, seconds, threads, start_at, out):
    counts = {"ok": 0, "other": 0, "latencies": []}
    lock = threading.Lock()

    def run(my_jobs):
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ok = other = 0
        lat = []
        i = 0
        while time.time() < start_at:
            time.sleep(0.001)
        stop = start_at + seconds
        while time.time() < stop:
            token, body, headers = my_jobs[i % len(my_jobs)]
            i += 1
            t = time.perf_counter()
            try:
                conn.request("POST", path, body=body, headers={"Authorization": f"Bearer {token}", **headers})
                resp = conn.getresponse()
                resp.read()
            except (OSError, http.client.HTTPException):
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                other += 1
                continue
            lat.append(time.perf_counter() - t)
            if resp.status == 200:
                ok += 1
            else:
                other += 1
        with lock:
            counts["ok"] += ok
            counts["other"] += other
            counts["latencies"].extend(lat)

    slices = [jobs[i::threads] for i in range(threads)]
    workers = [threading.Thread(target=run, args=(s,)) for s in slices if s]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    out.put(counts)


def http_load(args, path: str, jobs: list) -> dict:
    out = multiprocessing.Queue()
    start_at = time.time() + 1.0
    procs = [
        multiprocessing.Process(target=_client_process, args=(args.port, path, jobs[i::args.client_procs], args.seconds, args.client_threads, start_at, out))
        for i in range(args.client_procs)
    ]
    for p in procs:
        p.start()
    results = [out.get() for _ in procs]
    for p in procs:
        p.join()
    ok = sum(r["ok"] for r in results)
    other = sum(r["other"] for r in results)
    latencies = sorted(lat for r in results for lat in r["latencies"])
    p50 = latencies[len(latencies) // 2] * 1000 if latencies else float("nan")
    p99 = latencies[int(len(latencies) * 0.99)] * 1000 if latencies else float("nan")
    return {"rate": ok / args.seconds, "ok": ok, "other": other, "p50_ms": p50, "p99_ms": p99}


def web_shape(args) -> str:
    sys.path.insert(0, str(ROOT / "deploy"))
    conf: dict = {}
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", tempfile.mkdtemp(prefix="bench-prometheus-"))
    exec((ROOT / "deploy" / "gunicorn.conf.py").read_text(), conf)
    return f"{args.web_workers or conf['workers']} workers x {args.web_threads or conf['threads']} threads, deploy/gunicorn.conf.py"


def report_http(args, jobs_hb: list, jobs_full: list) -> None:
    hb = http_load(args, "/api/v1/heartbeat", jobs_hb)
    full = http_load(args, "/api/v1/snapshots", jobs_full)
    clients = args.client_procs * args.client_threads
    print(f"unchanged reports via HTTP, heartbeat (the agent's unchanged report): {hb['rate']:8.0f}/s  "
          f"(p50 {hb['p50_ms']:.1f} ms, p99 {hb['p99_ms']:.1f} ms, non-200 {hb['other']}; {clients} clients, "
          f"gunicorn {web_shape(args)})  target >= 1000/s")
    print(f"unchanged reports via HTTP, full gzip document (10-device hosts):    {full['rate']:8.0f}/s  "
          f"(p50 {full['p50_ms']:.1f} ms, p99 {full['p99_ms']:.1f} ms, non-200 {full['other']})")


# --- documents ----------------------------------------------------------------------------------


def small_documents(n: int) -> list[dict]:
    """n small hosts: the real captures, collected by the agent, under bench hostnames."""
    import tarfile

    from agent.paths import Root
    from agent.snapshot import build

    captures = sorted((ROOT / "tests" / "fixtures" / "captures").glob("*.tar.gz"))
    base = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in captures:
            dest = Path(tmp) / path.name
            dest.mkdir()
            with tarfile.open(path) as tar:
                tar.extractall(dest, filter="fully_trusted")
            base.append(build(Root.of(dest), seq=1))
    docs = []
    for i in range(n):
        doc = copy.deepcopy(base[i % len(base)])
        doc["host"]["hostname"] = f"bench-{i:05d}"
        doc["host"]["machine_id"] = f"{i:032x}"
        docs.append(doc)
    return docs


def large_pair(hostname: str) -> tuple[dict, dict]:
    """A 480-device host (D's synthetic DGX-2 tree) and the same host with 8 GPUs moved to vfio-pci."""
    from fleet.demo.synth import large_host

    a = large_host(480, hostname=hostname)
    b = copy.deepcopy(a)
    moved = 0
    for device in b["devices"]:
        if device["driver"] not in (None, "vfio-pci", "pcieport") and moved < 8:
            device["driver"] = "vfio-pci"
            moved += 1
    return a, b


def every_device_moved(doc: dict) -> dict:
    """The same host with every device that has a driver (bridges too) bound to vfio-pci: every device row changes."""
    out = copy.deepcopy(doc)
    for device in out["devices"]:
        device["driver"] = "vfio-pci" if device["driver"] != "vfio-pci" else "nvidia"
    return out


# --- baseline -----------------------------------------------------------------------------------


def baseline_bulk_insert(conn_info: str, host_id: int, rows: dict, method: str) -> float:
    """Seconds to insert `rows` (groups, devices, units, nodes, holders) for `host_id` with plain psycopg."""
    import psycopg

    from fleet.inventory.rows import DEVICES, GROUPS, HOLDERS, UNITS, VFIO_NODES

    from django.db import models

    tables = [(table.model._meta.db_table, table, rows[table.name]) for table in (GROUPS, DEVICES, UNITS, VFIO_NODES, HOLDERS)]
    with psycopg.connect(conn_info) as conn:
        t = time.perf_counter()
        with conn.cursor() as cur:
            for db_table, table, items in tables:
                pairs = [(column, key) for column, key in zip(table.columns, table.keys) if column != "group_id"]
                # JSON columns from the model itself: a column added to the mapping is sent as JSON too.
                json_columns = {c for c, _ in pairs if isinstance(table.model._meta.get_field(c), models.JSONField)}
                cols = [f'"{table.model._meta.get_field(c).column}"' for c in ("host_id", "fingerprint", *(c for c, _ in pairs))]
                values = [
                    (host_id, "", *[json.dumps(r[k]) if c in json_columns and r[k] is not None else r[k] for c, k in pairs])
                    for r in items.values()
                ]
                if method == "copy":
                    with cur.copy(f"COPY {db_table} ({', '.join(cols)}) FROM STDIN") as copy_in:
                        for row in values:
                            copy_in.write_row(row)
                else:
                    placeholders = ", ".join(["%s"] * len(cols))
                    cur.executemany(f"INSERT INTO {db_table} ({', '.join(cols)}) VALUES ({placeholders})", values)
        conn.commit()
        return time.perf_counter() - t


def main() -> int:
    sys.stdout.reconfigure(line_buffering=True)
    args = parse_args()
    env = env_for(args)
    os.environ.update({k: env[k] for k in ("DATABASE_URL", "FLEET_BROKER_URL", "DJANGO_SETTINGS_MODULE", "FLEET_LOG_LEVEL", "FLEET_DB_CONN_MAX_AGE", "FLEET_INGEST_MAX_QUEUE")})
    sys.path.insert(0, str(ROOT))
    python = sys.executable
    print(f"# ingest benchmark: PostgreSQL db {args.db}, Redis {args.redis}, {os.cpu_count()} CPUs, load avg {os.getloadavg()[0]:.1f}")

    recreate_database(args.db)
    subprocess.run([python, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, check=True)
    import redis

    redis.Redis.from_url(args.redis).flushdb()

    import django

    django.setup()
    from django.db import connection
    from django.db.models import Count
    from django.utils import timezone

    import orjson

    from agent.snapshot import content_hash
    from fleet.ingest.models import Snapshot
    from fleet.ingest.services import host_authenticate, host_token_create, snapshot_receive, snapshot_receive_document
    from fleet.ingest.tasks import snapshot_apply_task, snapshot_queue_apply
    from fleet.inventory.models import Host
    from fleet.inventory.rows import rows_from_document
    from django.db import transaction

    from fleet.inventory.services import host_state_replace
    from fleet.policy.services import violations_sync_for_host

    procs: list[subprocess.Popen] = []
    worker_log = tempfile.TemporaryFile(mode="w+")
    try:
        worker = subprocess.Popen(
            [python, "-m", "celery", "-A", "fleet", "worker", "-c", "1", "-P", "solo", "--without-gossip", "--without-mingle",
             "--without-heartbeat", "-l", "INFO"],
            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=worker_log,
        )
        procs.append(worker)
        # The deployed configuration (deploy/gunicorn.conf.py), access log included; sizes from the options.
        web = subprocess.Popen(
            [python, "-m", "gunicorn", "-c", "deploy/gunicorn.conf.py", "fleet.wsgi:application", "--log-level", "warning"],
            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            env={**env, "FLEET_BIND": f"127.0.0.1:{args.port}",
                 **({"FLEET_WEB_WORKERS": str(args.web_workers)} if args.web_workers else {}),
                 **({"FLEET_WEB_THREADS": str(args.web_threads)} if args.web_threads else {})},
        )
        procs.append(web)

        # --- enrol the small hosts through the real path (worker applies them) ---
        docs = small_documents(args.hosts)
        jobs_hb, jobs_full, ids = [], [], []
        for doc in docs:
            host, token = host_token_create(hostname=doc["host"]["hostname"])
            result = snapshot_receive_document(host=host, document=doc, queue=snapshot_queue_apply)
            ids.append(result.body["id"])
            digest = content_hash(doc)
            jobs_hb.append((token, json.dumps({"content_hash": digest, "seq": 2}).encode(), {"Content-Type": "application/json"}))
            unchanged = dict(doc, seq=2, collected_at="2030-01-01T00:00:00Z")  # same state, later collection: the unchanged path
            jobs_full.append((token, gzip.compress(json.dumps(unchanged).encode()), {"Content-Type": "application/json", "Content-Encoding": "gzip"}))
        wait_applied(ids)
        wait_port(args.port)

        phases = set(args.phases.split(","))
        # --- 1. unchanged reports through HTTP ---
        if "http" in phases:
            report_http(args, jobs_hb, jobs_full)
        web.terminate()
        web.wait(timeout=30)
        if not phases & {"worker", "apply"}:
            return 0
        # --- 2. changed 480-device snapshots through one worker ---
        web.terminate()  # (already stopped above when the HTTP phase ran; harmless)
        worker.terminate()
        worker.wait(timeout=30)
        pairs = [large_pair(f"large-{i}") for i in range(args.large_hosts)]
        hashes = [(content_hash(a), content_hash(b)) for a, b in pairs]
        hosts = []
        enrol_ids = []
        for (a, _), (hash_a, _) in zip(pairs, hashes):
            host, _ = host_token_create(hostname=a["host"]["hostname"])
            hosts.append(host)
            enrol_ids.append(snapshot_receive_document(host=host, document=a, queue=snapshot_queue_apply).body["id"])
        all_pairs = [(a, every_device_moved(a)) for a, _ in pairs]
        all_hashes = [(hash_a, content_hash(c)) for (hash_a, _), (_, c) in zip(hashes, all_pairs)]
        seq_base = [2]

        def worker_phase(pool: str, docs: list, digests: list, label: str) -> None:
            """Queue args.changed snapshots alternating each host between its two documents; one worker applies them."""
            log_file = tempfile.TemporaryFile(mode="w+")
            proc = subprocess.Popen(
                [python, "-m", "celery", "-A", "fleet", "worker", "-c", "1", "-P", pool, "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-l", "INFO", *(["--prefetch-multiplier", str(args.prefetch)] if args.prefetch else [])],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file,
            )
            procs.append(proc)
            try:
                if seq_base[0] == 2:
                    wait_applied(enrol_ids)
                raw = [(Snapshot.compress(json.dumps(x).encode()), Snapshot.compress(json.dumps(y).encode())) for x, y in docs]
                pending = []
                now = timezone.now()
                for n in range(args.changed):
                    i = n % len(hosts)
                    round_ = n // len(hosts)
                    use_b = round_ % 2 == 0
                    snap = Snapshot.objects.create(
                        host=hosts[i], raw=raw[i][1 if use_b else 0], size=0, content_hash=digests[i][1 if use_b else 0],
                        seq=seq_base[0] + round_, received_at=now, status=Snapshot.Status.RECEIVED,
                    )
                    pending.append(snap.pk)
                seq_base[0] += args.changed // len(hosts) + 2
                if args.changed // len(hosts) % 2:  # leave every host on its first document for the next phase
                    final = [Snapshot.objects.create(host=h, raw=raw[i][0], size=0, content_hash=digests[i][0], seq=seq_base[0] - 1,
                                                     received_at=now, status=Snapshot.Status.RECEIVED).pk for i, h in enumerate(hosts)]
                else:
                    final = []
                t0 = time.perf_counter()
                for snapshot_id in pending:
                    snapshot_apply_task.delay(snapshot_id)
                t1 = wait_applied(pending)
                for snapshot_id in final:
                    snapshot_apply_task.delay(snapshot_id)
                wait_applied(final)
                statuses = dict(Snapshot.objects.filter(id__in=pending).values_list("status").annotate(n=Count("id")).order_by())
                rate = len(pending) / (t1 - t0)
                log_file.seek(0)
                runtimes = [float(x) for x in re.findall(r"succeeded in ([0-9.]+)s: 'applied'", log_file.read())][:len(pending)]
                print(f"{label}, 1 worker ({pool}): {rate:6.1f}/s  ({len(pending)} in {t1 - t0:.2f}s; {statuses}; "
                      f"task median {statistics.median(runtimes) * 1000:.1f} ms by the worker's log; load {os.getloadavg()[0]:.1f})")
            finally:
                proc.terminate()
                proc.wait(timeout=30)

        print("changed 480-device snapshots applied per second per worker (task = load, diff, write, change rows, policy sync); target >= 40/s")
        for pool in args.pool.split(","):
            worker_phase(pool, pairs, hashes, "  realistic change (8 GPUs nvidia <-> vfio-pci)")
        for pool in args.pool.split(","):
            worker_phase(pool, all_pairs, all_hashes, "  every device row changed (all drivers -> vfio-pci) ")

        # In-process split of one task's work, on the same documents.
        host = hosts[0]
        a, b = pairs[0]
        apply_times, policy_times = [], []
        seq = 10_000
        for k in range(10):
            doc = b if k % 2 == 0 else a
            seq += 1
            document = orjson.loads(orjson.dumps(doc))  # a fresh parse, as the task has, outside the timing
            t = time.perf_counter()
            with transaction.atomic():
                applied = host_state_replace(host=host, document=document, snapshot_id=None, seq=seq, at=timezone.now(),
                                             content_hash=hashes[0][1 if doc is b else 0])
                apply_times.append(time.perf_counter() - t)
                t = time.perf_counter()
                violations_sync_for_host(host=host, state=applied.state(host))
                policy_times.append(time.perf_counter() - t)
        changed_apply = statistics.median(apply_times)
        print(f"  in process, median of 10 (realistic change): host_state_replace {changed_apply * 1000:.1f} ms, "
              f"violations_sync_for_host on the applied state {statistics.median(policy_times) * 1000:.1f} ms")

        # What the API does with a changed 480-device push before answering 202 (queueing stubbed out).
        _, receiver_token = host_token_create(hostname=a["host"]["hostname"] + "-rx")
        receive_times = []
        for k in range(6):
            doc = dict(b if k % 2 == 0 else a, seq=20_000 + k)
            doc["host"] = dict(doc["host"], hostname=a["host"]["hostname"] + "-rx")
            body = gzip.compress(json.dumps(doc).encode(), 6)
            t = time.perf_counter()
            receiver, _refusal = host_authenticate(receiver_token)
            result = snapshot_receive(host=receiver, body=body, content_encoding="gzip", queue=None)
            receive_times.append(time.perf_counter() - t)
            assert result.http_status == 202, result.body
        print(f"  receive of a changed 480-device push (gzip {len(body) // 1024} KB -> {len(json.dumps(doc)) // 1024} KB; inflate, parse, "
              f"validate, hash, store): median {statistics.median(receive_times) * 1000:.1f} ms")

        # --- 3. one large apply next to plain-SQL bulk inserts of the same rows ---
        fresh_times, copy_times, many_times = [], [], []
        conn_info = f"postgresql://postgres@127.0.0.1:5432/{args.db}"
        for k in range(5):
            fresh = Host.objects.create(hostname=f"fresh-{k}")
            t = time.perf_counter()
            host_state_replace(host=fresh, document=a, snapshot_id=None, seq=1, at=timezone.now(), content_hash=hashes[0][0])
            fresh_times.append(time.perf_counter() - t)
            for method, bucket in (("copy", copy_times), ("executemany", many_times)):
                target = Host.objects.create(hostname=f"baseline-{method}-{k}")
                bucket.append(baseline_bulk_insert(conn_info, target.pk, rows_from_document(a), method))
        connection.close()
        base_copy, base_many = statistics.median(copy_times), statistics.median(many_times)
        fresh_apply = statistics.median(fresh_times)
        n_rows = sum(len(v) for k, v in rows_from_document(a).items() if k in ("groups", "devices", "units", "vfio_nodes", "holders"))
        print(f"baseline: plain-SQL bulk insert of the same {n_rows} rows: COPY {base_copy * 1000:.1f} ms, executemany {base_many * 1000:.1f} ms (median of 5)")
        print(f"apply of a changed 480-device snapshot (8 drivers moved): {changed_apply * 1000:.1f} ms = {changed_apply / base_copy:.2f}x COPY  target <= 1x")
        print(f"apply of a 480-device snapshot whose every row is new:   {fresh_apply * 1000:.1f} ms = {fresh_apply / base_copy:.2f}x COPY, "
              f"{fresh_apply / base_many:.2f}x executemany")
        print(f"# load avg at the end {os.getloadavg()[0]:.1f} (the machine is shared: figures move with it)")
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in procs:
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
        if not args.keep:
            from django.db import connections

            connections.close_all()
            recreate_database(args.db, create=False)
    return 0


if __name__ == "__main__":
    sys.exit(main())
