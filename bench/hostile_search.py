"""Hostile-viewer benchmark: the search language's and the read API's worst requests against a fleet a
compromised host has flooded, with time and peak database backend memory per request.

    .venv/bin/python bench/hostile_search.py [--hosts 300] [--rebuild] [--runs 3]

The fleet lives in its own PostgreSQL database `fleet_bench_hostile` (created and migrated on first
use, reused unless --rebuild): `--hosts` ordinary hosts of 120 devices each, one host whose 10,000
devices each carry a driver name of their own (100 characters), and one host with 5,000 holders whose
command lines are 256 arguments (~16 KB) each. Rows are bulk-inserted: they stand for what the inventory
holds once such reports were applied (ingest's own caps are benchmarked in bench/ingest.py).

Every request goes through the Django test client with the dashboard middleware (statement timeout
on), on a fresh database session; a thread samples that backend's /proc/<pid>/status while it runs.
Printed per request: status, median and worst time, peak private memory of the backend (RssAnon) and
its VmHWM (which also counts the shared buffers it touched). Targets (issue 10): every search
<= 1 s and <= 256 MB of backend memory with those hosts present.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = os.environ.get("FLEET_BENCH_DB", "fleet_bench_hostile")
TARGET_S = 1.0
TARGET_MB = 256
DRIVER_NAMES = 10_000
HOLDERS = 5_000
ARGV = [f"-device=vfio-pci,host=0000:{i % 256:02x}:00.0,id=hostdev{i},bus=pcie.{i % 32}" for i in range(256)]

SEARCHES = [
    "class:gpu driver:!vfio-pci",
    "class:gpu driver:!vfio-pci role:gpu-passthrough",
    "driver:!vfio-pci driver:!nvidia driver:!none",
    "class:gpu class:nic class:nvme class:bridge driver:!vfio-pci driver:!mlx5_core",
    "class:display driver:!nvidia owner:!userspace vm:!tenant-a-vm1",
    "host:hostile-* driver:!vfio-pci vf:no",
    "vm:* driver:!vfio-pci",
    "tenant:tenant-a driver:!vfio-pci",
    "label:bench class:gpu driver:!nvidia",
    " ".join(f"driver:d{i}" for i in range(29)) + " class:gpu",  # at the 32-value cap (30 terms, 32 values)
    "group:!3 class:nvme driver:!nvme",
]
OTHER = [
    "/search/export.csv?" + urlencode({"q": "driver:!vfio-pci"}),
    "/search/export.json?" + urlencode({"q": "class:gpu driver:!vfio-pci"}),
    "/api/v1/holders/?host=hostile-holders&page_size=500",
    "/api/v1/holders/?host=hostile-holders&page=10&page_size=500",
    "/api/v1/devices/?host=hostile-drivers&page_size=500",
    "/api/v1/devices/?class_code=03&page_size=500",
    "/?q=hostile",
    "/violations/?status=all",
]


def prepare_database(rebuild: bool) -> None:
    os.environ["FLEET_DB_CONN_MAX_AGE"] = "600"  # the benchmark closes the session itself, once per request
    os.environ.setdefault("FLEET_LOG_LEVEL", "ERROR")  # the refusals it provokes would log a warning each
    os.environ.setdefault("FLEET_VAR_DIR", "/tmp/fleet-bench-hostile")
    from bench.policy import _prepare_database

    _prepare_database(rebuild, BENCH_DB)


def populate(n_hosts: int) -> float:
    from django.db import connection

    from fleet.inventory.models import Device, Holder, Host, Label

    t0 = time.perf_counter()
    bench = Label.objects.get_or_create(name="bench")[0]
    classes = ["030000", "030200", "020000", "020700", "010802", "060400", "0c0330", "120000"]
    drivers = {"030000": "nvidia", "030200": "vfio-pci", "020000": "ixgbe", "020700": "mlx5_core", "010802": "nvme",
               "060400": "pcieport", "0c0330": "xhci_hcd", "120000": "vfio-pci"}
    hosts = Host.objects.bulk_create([Host(hostname=f"bench-{i:05d}", role="gpu-passthrough" if i % 4 == 0 else "compute",
                                           enrollment="active") for i in range(n_hosts)], batch_size=1000)
    Host.labels.through.objects.bulk_create([Host.labels.through(host_id=h.pk, label_id=bench.pk) for h in hosts[::5]])

    def bdf(n):
        return f"{(n >> 16) & 0xffff:04x}:{(n >> 8) & 0xff:02x}:{(n >> 3) & 0x1f:02x}.{n & 7}"

    rows = []
    for h in hosts:
        for n in range(120):
            cls = classes[n % len(classes)]
            driver = drivers[cls] if n % 13 else None
            rows.append(Device(host=h, bdf=bdf(n), class_code=cls, vendor_id="10de" if cls.startswith("03") else "8086",
                               device_id="1db4", driver=driver, group_number=n // 2,
                               owner_kind="userspace" if driver == "vfio-pci" else "host" if driver else "unbound",
                               owner_vm=f"tenant-a-vm{n % 5}" if driver == "vfio-pci" else None, path=f"p{n}"))
    flood = Host.objects.create(hostname="hostile-drivers", enrollment="active")
    for n in range(DRIVER_NAMES):
        rows.append(Device(host=flood, bdf=bdf(n), class_code=classes[n % 2], vendor_id="10de", device_id="1db4",
                           driver=f"evil-{n:05d}-" + "x" * 89, group_number=n, owner_kind="host", path=f"p{n}"))
    Device.objects.bulk_create(rows, batch_size=5000)
    holders_host = Host.objects.create(hostname="hostile-holders", enrollment="active")
    for start in range(0, HOLDERS, 250):
        Holder.objects.bulk_create([
            Holder(host=holders_host, pid=1000 + i, name="qemu-system-x86", vm=f"vm{i}", kind="qemu", cmdline=ARGV,
                   nodes=[f"/dev/vfio/{g}" for g in range(64)], groups=list(range(64)), devices=[])
            for i in range(start, start + 250)])
    with connection.cursor() as cur:
        cur.execute("ANALYZE")
    return time.perf_counter() - t0


class BackendSampler(threading.Thread):
    """Peak RssAnon of one PostgreSQL backend while a request runs, read from /proc every 5 ms."""

    def __init__(self, pid: int):
        super().__init__(daemon=True)
        self.pid, self.peak_anon_kb, self.hwm_kb, self.done = pid, 0, 0, threading.Event()

    def _status(self) -> dict[str, int]:
        out = {}
        try:
            for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
                key, _, value = line.partition(":")
                if key in {"RssAnon", "VmHWM"}:
                    out[key] = int(value.split()[0])
        except OSError:
            pass
        return out

    def run(self):
        while not self.done.is_set():
            status = self._status()
            self.peak_anon_kb = max(self.peak_anon_kb, status.get("RssAnon", 0))
            self.hwm_kb = max(self.hwm_kb, status.get("VmHWM", 0))
            self.done.wait(0.005)

    def stop(self):
        status = self._status()
        self.peak_anon_kb = max(self.peak_anon_kb, status.get("RssAnon", 0))
        self.hwm_kb = max(self.hwm_kb, status.get("VmHWM", 0))
        self.done.set()
        self.join()


def measure(client, url: str, runs: int) -> dict:
    from django.db import connection

    times, anon, hwm, status = [], [], [], None
    for _ in range(runs):
        connection.close()  # a fresh backend: VmHWM is this request's alone
        with connection.cursor() as cur:
            cur.execute("SELECT pg_backend_pid()")
            pid = cur.fetchone()[0]
        sampler = BackendSampler(pid)
        sampler.start()
        t = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - t)
        sampler.stop()
        status = response.status_code
        anon.append(sampler.peak_anon_kb / 1024)
        hwm.append(sampler.hwm_kb / 1024)
    return {"status": status, "median_s": statistics.median(times), "max_s": max(times),
            "anon_mb": max(anon), "hwm_mb": max(hwm), "bytes": len(response.content)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--hosts", type=int, default=300)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args()
    prepare_database(args.rebuild)

    from django.contrib.auth.models import User
    from django.test import Client

    from fleet.inventory.models import Device, Holder, Host

    if not Host.objects.filter(hostname="hostile-holders").exists():
        if Host.objects.exists():
            print("the benchmark database is incomplete: run with --rebuild")
            sys.exit(2)
        print(f"generating {args.hosts} hosts + the two hostile ones in {BENCH_DB} …", flush=True)
        print(f"generated in {populate(args.hosts):.1f} s")
    distinct = Device.objects.order_by().values("driver").distinct().count()
    print(f"fleet: {Host.objects.count()} hosts, {Device.objects.count():,} devices, {distinct:,} distinct driver "
          f"names, {Holder.objects.count():,} holders")

    user, _ = User.objects.get_or_create(username="bench-hostile", defaults={"is_superuser": True, "is_staff": True})
    client = Client()
    client.force_login(user)
    worst_search = (0.0, 0.0)
    print(f"\n{'request':<86} {'status':>6} {'median':>8} {'worst':>8} {'RssAnon':>9} {'VmHWM':>8} {'body':>9}")
    for url in ["/search/?" + urlencode({"q": q}) for q in SEARCHES] + OTHER:
        client.get(url)  # warm the plan cache and the shared buffers once
        r = measure(client, url, args.runs)
        shown = url if len(url) <= 86 else url[:83] + "…"
        print(f"{shown:<86} {r['status']:>6} {r['median_s'] * 1000:>6.0f}ms {r['max_s'] * 1000:>6.0f}ms "
              f"{r['anon_mb']:>7.1f}MB {r['hwm_mb']:>6.1f}MB {r['bytes'] / 1024:>7.0f}kB")
        if url.startswith("/search/?"):
            worst_search = (max(worst_search[0], r["max_s"]), max(worst_search[1], r["anon_mb"]))
    ok = worst_search[0] <= TARGET_S and worst_search[1] <= TARGET_MB
    print(f"\nworst search: {worst_search[0] * 1000:.0f} ms, {worst_search[1]:.1f} MB backend private memory "
          f"(targets <= {TARGET_S * 1000:.0f} ms, <= {TARGET_MB} MB): {'within' if ok else 'OVER'} target")


if __name__ == "__main__":
    main()
