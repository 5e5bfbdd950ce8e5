"""Hostile host and hostile viewer against a real deployment: gunicorn (deploy/gunicorn.conf.py), a Celery
worker (solo pool, as deploy/systemd runs it), a private Redis and PostgreSQL, in database
`fleet_bench_hostile_live`.

    .venv/bin/python bench/hostile.py [--hosts 300] [--rebuild] [--runs 2]

The fleet is bench/hostile_search.py's (ordinary hosts, one host whose 10,000 devices carry a driver name
each, one with 5,000 holders: rows as a server before the ingest caps would have applied them). Then:

- a hostile host pushes over HTTP what issue 10 lists: 10,000 distinct driver names, 5,000 holders,
  nesting 1,000 deep, seq 10^18 and 2^53; and one poison snapshot (nesting 5,000 deep: past the JSON parser, stored as a server
  before the depth limit accepted it) is queued, followed by that host's next, valid report;
- meanwhile five ordinary hosts push a changed snapshot every 0.3 s, and their apply latency (received
  to applied) is recorded per phase;
- a hostile viewer runs bench/hostile_search.py's worst searches and reads over HTTP with a session.

Printed per snapshot and per query: answer, time, peak private memory (RssAnon) and VmHWM over the
database's backends while it ran (sampled from /proc every 5 ms), and the other hosts' apply latency
meanwhile. Targets (issue 10): every search <= 1 s and <= 256 MB of backend memory; a poison snapshot
delays its host's next snapshot by no more than its retry budget and other hosts not at all.
"""
from __future__ import annotations

import argparse
import gzip
import json
import os
import shutil
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.hostile_search import OTHER, SEARCHES, TARGET_MB, TARGET_S, populate  # noqa: E402
from bench.ingest import small_documents  # noqa: E402
from bench.policy import PG, _prepare_database  # noqa: E402
from tests.e2e.processes import BIN, Processes, free_port, port_open, wait_until  # noqa: E402

BENCH_DB = "fleet_bench_hostile_live"
OTHERS = 5


class Backends(threading.Thread):
    """Peak RssAnon and VmHWM over the backends of the bench database while a step runs. The servers run with
    FLEET_DB_CONN_MAX_AGE=0, so each request and task has a backend of its own and VmHWM is its alone; the
    benchmark's own session (`own_pid`) is left out."""

    own_pid = 0

    def __init__(self):
        super().__init__(daemon=True)
        self.anon_kb = self.hwm_kb = 0
        self.done = threading.Event()

    def _pids(self) -> list[int]:
        import psycopg

        with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
            return [r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND backend_type = "
                                               "'client backend' AND pid <> %s", (BENCH_DB, self.own_pid))]

    def _sample(self, pids) -> None:
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    key, _, value = line.partition(":")
                    if key == "RssAnon":
                        self.anon_kb = max(self.anon_kb, int(value.split()[0]))
                    elif key == "VmHWM":
                        self.hwm_kb = max(self.hwm_kb, int(value.split()[0]))
            except OSError:
                pass

    def run(self):
        pids, refreshed = self._pids(), time.monotonic()
        while not self.done.is_set():
            if time.monotonic() - refreshed > 0.2:
                pids, refreshed = self._pids(), time.monotonic()
            self._sample(pids)
            self.done.wait(0.005)

    def stop(self) -> tuple[float, float]:
        self.done.set()
        self.join()
        return self.anon_kb / 1024, self.hwm_kb / 1024


class OtherHosts(threading.Thread):
    """Ordinary hosts pushing a changed snapshot in turn every 0.3 s; apply latency of each, with its time."""

    def __init__(self, server: str, hosts: list[tuple[str, dict]]):
        super().__init__(daemon=True)
        self.server, self.hosts, self.done = server, hosts, threading.Event()
        self.sent: list[tuple[float, int]] = []  # (monotonic time sent, snapshot id)

    def run(self):
        seq = 1_800_000_000_000
        while not self.done.is_set():
            for token, doc in self.hosts:
                seq += 1
                doc = dict(doc, seq=seq, warnings=[f"tick {seq}"])  # a changed state: it must be applied
                status, body, _ = post(self.server, "/api/v1/snapshots", token, doc)
                if status == 202:
                    self.sent.append((time.monotonic(), body["id"]))
            self.done.wait(0.3)

    def latencies(self, since: float, until: float) -> list[float]:
        """Received-to-applied of the snapshots sent in [since, until], once they are settled (inf: not within 120 s)."""
        from fleet.ingest.models import Snapshot

        ids = [i for t, i in self.sent if since <= t <= until]
        deadline = time.monotonic() + 120
        while Snapshot.objects.filter(pk__in=ids, processed_at__isnull=True).exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        rows = Snapshot.objects.filter(pk__in=ids).values_list("received_at", "processed_at", "status")
        return [(done - got).total_seconds() if done else float("inf") for got, done, status in rows]


def post(server: str, path: str, token: str, payload) -> tuple[int, dict, float]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    request = urllib.request.Request(server + path, data=gzip.compress(body, 1), method="POST", headers={
        "Authorization": f"Bearer {token}", "Content-Type": "application/json", "Content-Encoding": "gzip"})
    t = time.perf_counter()
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            status, text = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, text = exc.code, exc.read()
    try:
        answer = json.loads(text)
    except ValueError:
        answer = {"raw": text[:200].decode(errors="replace")}
    return status, answer, time.perf_counter() - t


def nested_text(depth: int) -> bytes:
    return ("".join('{"k":' if i % 2 == 0 else "[" for i in range(depth)) + "0"
            + "".join("}" if i % 2 == 0 else "]" for i in reversed(range(depth)))).encode()


def hostile_payloads(doc: dict) -> list[tuple[str, bytes]]:
    template = doc["devices"][0]

    def device(i, **extra):
        return dict(template, bdf=f"{i // 65536 + 1:04x}:{i // 256 % 256:02x}:{i // 8 % 32:02x}.{i % 8}", iommu_group=None, **extra)

    holder = {"pid": 1, "comm": "qemu-system-x86", "exe": None, "uid": 0, "cmdline": [], "nodes": [], "device_fds": 0,
              "groups": [], "devices": [], "kind": "qemu", "vm": None, "workload": None, "cgroup": None, "start_time": None}
    marked = dict(doc, seq=2)
    marked["devices"] = [dict(template, vendor_extension="DEEP")] + doc["devices"][1:]
    deep = json.dumps(marked).encode().replace(b'"DEEP"', nested_text(1000))
    return [
        ("10,000 distinct driver names", json.dumps(dict(doc, seq=3, groups=[], devices=[
            device(i, driver=f"evil-{i:05d}-" + "x" * 89) for i in range(10_000)])).encode()),
        ("5,000 holders", json.dumps(dict(doc, seq=4, holders=[dict(holder, pid=1000 + i) for i in range(5_000)])).encode()),
        ("nesting 1,000 deep in a free-form field", deep),
        ("seq 10^18 (a float)", json.dumps(dict(doc, seq=5)).encode().replace(b'"seq": 5', b'"seq": 1e18')),
        ("seq 2^53", json.dumps(dict(doc, seq=2**53)).encode()),
    ]


def step(label: str, action, others: OtherHosts) -> None:
    sampler = Backends()
    sampler.start()
    since = time.monotonic()
    outcome, seconds = action()
    anon, hwm = sampler.stop()
    lat = others.latencies(since, time.monotonic())
    shown = "no other snapshot in this step" if not lat else \
        f"others: {len(lat)} applied, median {statistics.median(lat) * 1000:.0f} ms, worst {max(lat) * 1000:.0f} ms"
    print(f"{label[:58]:<58} {outcome[:60]:<60} {seconds * 1000:>7.0f}ms {anon:>7.1f}MB {hwm:>6.1f}MB  {shown}", flush=True)
    return lat


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    os.environ.setdefault("FLEET_VAR_DIR", "/tmp/fleet-bench-hostile-live")
    os.environ.setdefault("FLEET_LOG_LEVEL", "ERROR")
    _prepare_database(args.rebuild, BENCH_DB)

    from django.test import Client
    from django.utils import timezone

    from django.contrib.auth.models import User
    from fleet.ingest.models import Snapshot
    from fleet.ingest.services import host_token_create
    from fleet.inventory.models import Device, Host

    if not Host.objects.filter(hostname="hostile-holders").exists():
        print(f"generating {args.hosts} hosts + the two flooded ones in {BENCH_DB} …", flush=True)
        print(f"generated in {populate(args.hosts):.1f} s")
    print(f"fleet: {Host.objects.count()} hosts, {Device.objects.count():,} devices, "
          f"{Device.objects.order_by().values('driver').distinct().count():,} distinct driver names")

    logs = Path(os.environ["FLEET_VAR_DIR"]) / "logs"
    shutil.rmtree(logs, ignore_errors=True)
    redis_port, web_port = free_port(), free_port()
    procs = Processes(logs, database_url=f"{PG}/{BENCH_DB}", broker_url=f"redis://127.0.0.1:{redis_port}/0")
    procs.env["FLEET_DB_CONN_MAX_AGE"] = "0"  # a backend per request and per task: VmHWM per step
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        Backends.own_pid = cursor.fetchone()[0]
    try:
        procs.redis(redis_port)
        worker = procs.worker()
        web = procs.start("web", [str(BIN / "gunicorn"), "-c", "deploy/gunicorn.conf.py", "fleet.wsgi:application"], env={
            "FLEET_BIND": f"127.0.0.1:{web_port}", "FLEET_WEB_WORKERS": "2", "FLEET_ACCESS_LOG": "0",
            "FLEET_LOG_LEVEL": "ERROR", "PROMETHEUS_MULTIPROC_DIR": str(logs / "prometheus")})
        wait_until(lambda: port_open(web_port), timeout=60, what="gunicorn", proc=web)
        server = f"http://127.0.0.1:{web_port}"

        docs = small_documents(OTHERS + 1)
        stamp = int(time.time())
        tokens = []
        for i, doc in enumerate(docs):
            doc["host"]["hostname"] = f"live-{stamp}-{i}"
            doc["host"]["machine_id"] = None
            tokens.append(host_token_create(hostname=doc["host"]["hostname"])[1])
        hostile_doc, hostile_token = docs[0], tokens[0]
        hostile = Host.objects.get(hostname=hostile_doc["host"]["hostname"])
        first = post(server, "/api/v1/snapshots", hostile_token, dict(hostile_doc, seq=1))
        others = OtherHosts(server, list(zip(tokens[1:], docs[1:])))
        others.start()
        time.sleep(2)

        print(f"\n{'hostile host: snapshot':<58} {'answer':<60} {'time':>9} {'RssAnon':>9} {'VmHWM':>8}  other hosts' applies meanwhile")
        step("a valid first report", lambda: (f"{first[0]} {first[1].get('status', '')}", first[2]), others)
        for label, payload in hostile_payloads(hostile_doc):
            def push(payload=payload):
                status, answer, seconds = post(server, "/api/v1/snapshots", hostile_token, payload)
                message = (answer.get("errors") or [{}])[0]
                return f"{status} {message.get('path', answer.get('status', ''))}", seconds
            step(label, push, others)

        # A poison snapshot as a server before the depth limit stored it, queued, then the host's next report.
        marked = dict(hostile_doc, seq=10)
        marked["devices"] = [dict(hostile_doc["devices"][0], vendor_extension="DEEP")] + hostile_doc["devices"][1:]
        raw = json.dumps(marked).encode().replace(b'"DEEP"', nested_text(5000))
        poison = Snapshot.objects.create(host=hostile, raw=Snapshot.compress(raw), size=len(raw), content_hash="e" * 64,
                                         seq=10, received_at=timezone.now())

        def poison_then_next():
            done = procs.manage("shell", "-c", f"from fleet.ingest.tasks import snapshot_queue_apply; snapshot_queue_apply({poison.pk})")
            assert done.returncode == 0, done.stderr
            status, answer, _ = post(server, "/api/v1/snapshots", hostile_token, dict(hostile_doc, seq=11, warnings=["next"]))
            wait_until(lambda: Snapshot.objects.filter(pk=answer["id"], status="applied").exists(), timeout=300,
                       what="the next report", proc=worker)
            poisoned = Snapshot.objects.get(pk=poison.pk)
            nxt = Snapshot.objects.get(pk=answer["id"])
            took = (poisoned.processed_at - poisoned.received_at).total_seconds()
            return (f"{poisoned.status} x{poisoned.attempts} ({poisoned.error[:14]}); next applied "
                    f"{(nxt.processed_at - nxt.received_at).total_seconds() * 1000:.0f} ms after receipt"), took
        step("poison (nesting 5000, stored): stored to failed", poison_then_next, others)

        user, _ = User.objects.get_or_create(username="bench-hostile", defaults={"is_superuser": True, "is_staff": True})
        client = Client()
        client.force_login(user)
        cookie = f"sessionid={client.cookies['sessionid'].value}"

        def view(url):
            def get():
                request = urllib.request.Request(server + url, headers={"Cookie": cookie})
                t = time.perf_counter()
                try:
                    with urllib.request.urlopen(request, timeout=120) as response:
                        status, size = response.status, len(response.read())
                except urllib.error.HTTPError as exc:
                    status, size = exc.code, len(exc.read())
                return f"{status} {size / 1024:.0f} kB", time.perf_counter() - t
            return get

        print(f"\n{'hostile viewer: request':<58} {'answer':<34} {'time':>9} {'RssAnon':>9} {'VmHWM':>8}  other hosts' applies meanwhile")
        worst = (0.0, 0.0)
        for url in ["/search/?" + urlencode({"q": q}) for q in SEARCHES] + OTHER:
            view(url)()  # warm the plan cache and the shared buffers once
            for _ in range(args.runs):
                sampler = Backends()
                sampler.start()
                outcome, seconds = view(url)()
                anon, hwm = sampler.stop()
                if url.startswith("/search/?"):
                    worst = (max(worst[0], seconds), max(worst[1], anon))
            shown = url if len(url) <= 58 else url[:55] + "…"
            lat = others.latencies(time.monotonic() - seconds - 0.5, time.monotonic())
            meanwhile = f"others: {len(lat)} applied, worst {max(lat) * 1000:.0f} ms" if lat else ""
            print(f"{shown:<58} {outcome:<34} {seconds * 1000:>7.0f}ms {anon:>7.1f}MB {hwm:>6.1f}MB  {meanwhile}", flush=True)
        others.done.set()
        others.join()
        everything = others.latencies(0, time.monotonic())
        unapplied = sum(1 for x in everything if x == float("inf"))
        ok = worst[0] <= TARGET_S and worst[1] <= TARGET_MB
        print(f"\nworst search: {worst[0] * 1000:.0f} ms, {worst[1]:.1f} MB backend private memory (targets <= "
              f"{TARGET_S * 1000:.0f} ms, <= {TARGET_MB} MB): {'within' if ok else 'OVER'} target")
        finite = [x for x in everything if x != float("inf")]
        print(f"other hosts: {len(everything)} snapshots during the run, {unapplied} not applied, apply latency median "
              f"{statistics.median(finite) * 1000:.0f} ms, worst {max(finite) * 1000:.0f} ms")
    finally:
        procs.close()


if __name__ == "__main__":
    main()
