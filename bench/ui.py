"""Dashboard benchmark: host page draw time, fleet overview and device search server time, in one run.

    .venv/bin/python bench/ui.py [--hosts 10000] [--rebuild] [--runs 20]

Data lives in the PostgreSQL database `fleet_bench_ui` (created on first run, reused after):
a few template hosts from the demo generator (`fleet.demo.synth`) go through the real ingest
path (so their devices, groups, holders and violations are what the product computes), then
every other host is a bulk COPY of one template's device and violation rows under a new host.
Cloned hosts have no Group/Holder rows (the fleet page and the search do not read them; their
`group_count` and `group_number` are the template's).

Printed: generation time, the host page's navigation-to-drawn time for a 480+ device host
(Playwright, Debian chromium, median and p95), and server time (Django test client, no network)
for fleet overview variants and device-search queries (p50/p95 over all runs).
Targets: host page <= 1 s; fleet page <= 300 ms; device search p95 <= 200 ms.
"""
from __future__ import annotations

import argparse
import io
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DB_NAME = os.environ.get("FLEET_BENCH_DB", "fleet_bench_ui")
PG = "postgres://postgres@127.0.0.1:5432"
os.environ["DATABASE_URL"] = f"{PG}/{DB_NAME}"
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")
os.environ.setdefault("FLEET_VAR_DIR", "/tmp/fleet-bench-ui")
os.environ.setdefault("FLEET_LOG_LEVEL", "WARNING")
os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"  # Playwright's sync API keeps an event loop in this thread

LARGE_TEMPLATES = 3
VARIED_TEMPLATES = 9
LARGE_SHARE = 0.99  # share of cloned hosts built from a large (504-device) template: ~500 devices per host on average
DEVICE_COLUMNS = None  # filled from the table at run time (every column except id and host_id)

SEARCHES = [
    "vendor:15b3 vf:yes",
    "class:gpu driver:!vfio-pci role:gpu-passthrough",
    "driver:vfio-pci",
    "10de:*",
    "class:nvme",
    "0000:3b:00.0",
    "host:bench-host-04242",
    "vm:* owner:userspace host:bench-host-0777*",
    "group:17 driver:nvidia",
    "tenant:tenant-a",
    "label:bench",
]
FLEET_PAGES = [
    "/",
    "/?page=100",
    "/?severity=critical",
    "/?sort=-devices&page=20",
    "/?sort=worst",
    "/?sort=-worst&page=50",
    "/?rule=group-shared-p2p",
    "/?role=gpu-passthrough&stale=no",
    "/?q=bench-host-09",
]


def ensure_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [DB_NAME]).fetchone():
            conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def drop_database() -> None:
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')


def ingest(doc: dict):
    from fleet.ingest.models import Snapshot
    from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

    synthetic = doc.get("synthetic") or {}
    host, _ = host_token_create(hostname=doc["host"]["hostname"], role=synthetic.get("role") or None,
                                labels=list(synthetic.get("labels") or []) or None)
    result = snapshot_receive_document(host=host, document=doc)
    snap = Snapshot.objects.get(pk=result.body["id"])
    if snap.status == Snapshot.Status.RECEIVED:
        snapshot_apply(snapshot_id=snap.pk)
    host.refresh_from_db()
    return host


def copy_rows(cursor, table: str, columns: list[str], lines) -> None:
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for chunk in lines:
            copy.write(chunk)


def export_rows(cursor, sql: str, params) -> list[bytes]:
    buf = io.BytesIO()
    with cursor.copy(f"COPY ({sql}) TO STDOUT", params) as copy:
        for data in copy:
            buf.write(data)
    return [line + b"\n" for line in buf.getvalue().split(b"\n") if line]


@dataclass
class Clones:
    """Template hosts ingested through the real path, and the cloned hosts made from them."""

    templates: list
    plan: list   # the template of each clone, in clone order
    hosts: list  # the clones' Host rows
    t_templates: float
    t_hosts: float


HOST_FIELDS = ["kernel", "kernel_version", "cmdline", "cmdline_flags", "iommu_enabled", "iommu_mode", "device_count",
               "group_count", "assigned_count", "role", "vfio_parameters", "dmi"]


def clone_hosts(n_hosts: int, t0: float, *, stale_every: int | None = None) -> Clones:
    """LARGE_TEMPLATES DGX-2H templates and VARIED_TEMPLATES synthetic ones through ingest, then Host rows for the
    rest of `n_hosts`, LARGE_SHARE of them large (shared by the benchmarks that need a big fleet)."""
    from django.utils import timezone

    from fleet.demo import synth
    from fleet.inventory.models import Host

    templates = [ingest(synth.large_host(480, seed=s, hostname=f"bench-large-{s}")) for s in range(LARGE_TEMPLATES)]
    templates += [ingest(synth.host(i, seed=7)) for i in range(VARIED_TEMPLATES)]
    t_templates = time.perf_counter() - t0
    now = timezone.now()
    plan = []
    for i in range(n_hosts - len(templates)):
        large = (i * 7919 % 1000) < LARGE_SHARE * 1000
        plan.append(templates[i % LARGE_TEMPLATES] if large else templates[LARGE_TEMPLATES + i % VARIED_TEMPLATES])
    hosts = Host.objects.bulk_create([
        Host(hostname=f"bench-host-{i:05d}", enrollment="active", last_seen=now, applied_at=now,
             stale=bool(stale_every) and i % stale_every == 0, **{f: getattr(t, f) for f in HOST_FIELDS})
        for i, t in enumerate(plan)
    ], batch_size=2000)
    return Clones(templates, plan, hosts, t_templates, time.perf_counter() - t0)


def violation_lines(clones: Clones, viol_rows: dict):
    """COPY lines of each clone's violations, its template's with the clone's host id; the fingerprint must be
    unique, so it is the template's per-subject digest prefixed by the new host id."""
    for h, t in zip(clones.hosts, clones.plan):
        yield b"".join(f"{h.pk}\t".encode() + line[:-33] + f"{h.pk:08d}".encode() + line[-25:-1] + b"\n"
                       for line in viol_rows[t.pk])


def populate(n_hosts: int) -> dict:
    from django.db import connection

    from fleet.inventory.models import Device, Host, Label
    from fleet.policy.models import Violation

    t0 = time.perf_counter()
    clones = clone_hosts(n_hosts, t0, stale_every=37)
    templates, plan, hosts = clones.templates, clones.plan, clones.hosts
    bench_label, _ = Label.objects.get_or_create(name="bench")
    Host.labels.through.objects.bulk_create(
        [Host.labels.through(host_id=h.pk, label_id=bench_label.pk) for h in hosts[::10]], batch_size=5000)
    t_templates, t_hosts = clones.t_templates, time.perf_counter() - t0

    device_cols = [f.column for f in Device._meta.concrete_fields if f.column not in {"id", "host_id", "group_id"}]
    viol_cols = [f.column for f in Violation._meta.concrete_fields if f.column not in {"id", "host_id", "fingerprint"}]
    with connection.cursor() as cur:
        raw = cur.cursor if hasattr(cur, "cursor") else cur
        dev_rows = {t.pk: export_rows(raw, f"SELECT {', '.join(device_cols)} FROM inventory_device WHERE host_id = %s ORDER BY bdf", [t.pk]) for t in templates}
        viol_rows = {t.pk: export_rows(raw, f"SELECT {', '.join(viol_cols)}, md5(subject_kind || subject_id || rule) FROM policy_violation WHERE host_id = %s", [t.pk]) for t in templates}

        def device_lines():
            for h, t in zip(hosts, plan):
                prefix = f"{h.pk}\t\\N\t".encode()
                yield b"".join(prefix + line for line in dev_rows[t.pk])

        copy_rows(raw, "inventory_device", ["host_id", "group_id"] + device_cols, device_lines())
        t_devices = time.perf_counter() - t0
        copy_rows(raw, "policy_violation", ["host_id"] + viol_cols + ["fingerprint"], violation_lines(clones, viol_rows))
        raw.execute("ANALYZE")
    return {"templates_s": t_templates, "hosts_s": t_hosts, "devices_s": t_devices, "total_s": time.perf_counter() - t0}


def timed_get(client, url: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        response = client.get(url)
        out.append((time.perf_counter() - t) * 1000)
        assert response.status_code == 200, (url, response.status_code)
    return out


def pct(values: list[float], p: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(p / 100 * (len(values) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def host_page_times(hostname: str, username: str, password: str, runs: int) -> list[float]:
    from playwright.sync_api import sync_playwright

    port = free_port()
    env = {**os.environ}
    server = subprocess.Popen([sys.executable, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.1)
        base = f"http://127.0.0.1:{port}"
        times = []
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", headless=True,
                                        args=["--no-sandbox", "--disable-gpu", "--no-first-run"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(f"{base}/accounts/login/")
            page.fill("#id_username", username)
            page.fill("#id_password", password)
            page.click("button[type=submit]")
            page.wait_for_url(f"{base}/")
            for i in range(runs + 1):
                page.goto(f"{base}/hosts/{hostname}/", wait_until="commit")
                page.wait_for_selector("#topology[data-state=ready]", timeout=30000)
                # Idle: the drawing is attached; wait one animation frame so layout and paint happened.
                elapsed = page.evaluate("() => new Promise(r => requestAnimationFrame(() => r(performance.now())))")
                if i:  # the first load warms the server's caches and the browser's static cache
                    times.append(elapsed)
            drawn = (page.locator("[data-bdf]").count(), page.locator("[data-aggregate]").count(),
                     page.locator("[data-group]").count())
            # Worst case: "Expand all" redraws every device and group shape (SVG, no folding).
            expand = []
            for _ in range(max(3, runs // 2)):
                page.goto(f"{base}/hosts/{hostname}/", wait_until="commit")
                page.wait_for_selector("#topology[data-state=ready]", timeout=30000)
                expand.append(page.evaluate("""() => {
                    const t = performance.now();
                    document.getElementById('topo-expand-all').click();
                    return new Promise(r => requestAnimationFrame(() => r(performance.now() - t)));
                }"""))
            full = (page.locator("[data-bdf]").count(), page.locator("[data-group]").count())
            browser.close()
        print(f"  drawn: {drawn[0]} device nodes, {drawn[1]} counted aggregates, {drawn[2]} group shapes")
        print(f"  'Expand all' redraw with {full[0]} device nodes and {full[1]} group shapes: "
              f"median {statistics.median(expand):.0f} ms, p95 {pct(expand, 95):.0f} ms")
        return times
    finally:
        server.terminate()
        server.wait(10)


def fleet_database(description: str, populate) -> argparse.Namespace:
    """--hosts/--runs/--rebuild parsed, Django set up on the benchmark database, filled by `populate(n)` when empty."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--hosts", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--rebuild", action="store_true", help="drop and regenerate the benchmark database")
    args = parser.parse_args()

    if args.rebuild:
        drop_database()
    ensure_database()
    import django

    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from fleet.inventory.models import Host

    call_command("migrate", verbosity=0)
    with connection.cursor() as cur:
        cur.execute("ANALYZE")  # statistics added by a migration (web 0002) only count once analysed
    existing = Host.objects.count()
    if existing < args.hosts:
        if existing:
            print(f"database has {existing} hosts, fewer than {args.hosts}: run with --rebuild")
            sys.exit(2)
        print(f"generating {args.hosts} hosts in {DB_NAME} …", flush=True)
        gen = populate(args.hosts)
        print(f"generation: templates through ingest {gen['templates_s']:.1f} s, hosts {gen['hosts_s']:.1f} s, "
              f"devices COPY done at {gen['devices_s']:.1f} s, total {gen['total_s']:.1f} s")
    return args


def main() -> None:
    args = fleet_database(__doc__.split("\n")[0], populate)
    from django.contrib.auth.models import User
    from django.db import connection
    from django.test import Client

    from fleet.inventory.models import Device, Host

    n_hosts = Host.objects.count()
    with connection.cursor() as cur:
        cur.execute("SELECT reltuples::bigint FROM pg_class WHERE relname = 'inventory_device'")
        n_devices = cur.fetchone()[0]
    print(f"fleet: {n_hosts} hosts, ~{n_devices:,} devices (pg_class estimate)")

    password = "bench-password"
    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    user.set_password(password)
    user.save()
    client = Client()
    client.force_login(user)

    print("\nfleet overview, server time (ms):")
    all_fleet = []
    for url in FLEET_PAGES:
        timed_get(client, url, 1)  # warm
        t = timed_get(client, url, args.runs)
        all_fleet += t
        print(f"  {url:40s} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}")
    t = timed_get(client, "/fleet/tiles.json", max(3, args.runs // 4))
    print(f"  {'/fleet/tiles.json (every host)':40s} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}")
    print(f"  ALL fleet pages: p50 {pct(all_fleet, 50):.1f} ms, p95 {pct(all_fleet, 95):.1f} ms (target <= 300)")

    print("\ndevice search, server time (ms):")
    all_search = []
    from urllib.parse import urlencode
    for q in SEARCHES:
        url = "/search/?" + urlencode({"q": q})
        timed_get(client, url, 1)
        t = timed_get(client, url, args.runs)
        all_search += t
        print(f"  {q:48s} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}")
    print(f"  ALL searches: p50 {pct(all_search, 50):.1f} ms, p95 {pct(all_search, 95):.1f} ms (target p95 <= 200)")

    large = Host.objects.filter(hostname__startswith="bench-large-").order_by("hostname").first()
    print(f"\nhost page, navigation to drawn and idle (ms), {large.hostname} with "
          f"{Device.objects.filter(host=large).count()} devices:")
    times = host_page_times(large.hostname, user.username, password, max(5, args.runs // 2))
    print(f"  median {statistics.median(times):.0f}  p95 {pct(times, 95):.0f}  (target <= 1000)")


if __name__ == "__main__":
    main()
