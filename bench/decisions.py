"""Decisions benchmark: capacity finder and pre-flight server time on a large synthetic fleet.

    .venv/bin/python bench/decisions.py [--hosts 10000] [--rebuild] [--runs 20]

Data lives in the PostgreSQL database `fleet_bench_decisions` (created on first run, reused after). It is
bench/ui.py's fleet (its helpers are reused: templates from `fleet.demo.synth` through the real ingest path,
~99% of clones of a 504-device DGX-2H template), with what the finder needs and bench/ui.py leaves out:
each clone gets its template's Group rows, and its devices point at them, so "the rest of the group" is
real on every host; clones carry rack labels (40 racks) for the per-label counts.

Printed: generation time; finder server time (Django test client, no network; GET /api/v1/capacity, count=4)
per query and overall p50/p95; pre-flight server time (POST /api/v1/preflight with a scoped token) on a 504-device
host, an allowed whole group and a denied one, cold (the host's state rebuilt from the tables) and warm (the
state cache of fleet/decisions/services.py, as for the next VM start on that host), p50/p95.
Targets: finder p95 <= 300 ms on 10,000 hosts; pre-flight p95 <= 50 ms for a 480-device host.
"""
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("FLEET_BENCH_DB", "fleet_bench_decisions")
os.environ.setdefault("FLEET_VAR_DIR", "/tmp/fleet-bench-decisions")

from bench.ui import clone_hosts, copy_rows, export_rows, fleet_database, pct, violation_lines  # noqa: E402

QUERIES = [
    "class:gpu",
    "class:gpu role:gpu-passthrough",
    "class:gpu label:rack-r07",
    "10de:* numa:0",
    "class:nic vf:yes",
    "class:gpu host:bench-host-0042*",
]
RACKS = 40


def populate(n_hosts: int) -> dict:
    from django.db import connection

    from fleet.inventory.models import Device, Group, Host, Label
    from fleet.policy.models import Violation

    t0 = time.perf_counter()
    clones = clone_hosts(n_hosts, t0)
    templates, plan, hosts = clones.templates, clones.plan, clones.hosts
    racks = [Label.objects.get_or_create(name=f"rack-r{r:02d}")[0] for r in range(1, RACKS + 1)]
    Host.labels.through.objects.bulk_create(
        [Host.labels.through(host_id=h.pk, label_id=racks[i % RACKS].pk) for i, h in enumerate(hosts)], batch_size=5000)
    t_templates, t_hosts = clones.t_templates, time.perf_counter() - t0

    group_cols = [f.column for f in Group._meta.concrete_fields if f.column not in {"id", "host_id"}]
    device_cols = [f.column for f in Device._meta.concrete_fields if f.column not in {"id", "host_id", "group_id"}]
    viol_cols = [f.column for f in Violation._meta.concrete_fields if f.column not in {"id", "host_id", "fingerprint"}]
    with connection.cursor() as cur:
        raw = cur.cursor if hasattr(cur, "cursor") else cur
        raw.execute("SELECT coalesce(max(id), 0) + 1 FROM inventory_group")
        base = raw.fetchone()[0]
        group_rows, group_index, dev_rows, viol_rows = {}, {}, {}, {}
        for t in templates:
            rows = export_rows(raw, f"SELECT id, {', '.join(group_cols)} FROM inventory_group WHERE host_id = %s ORDER BY id", [t.pk])
            group_index[t.pk] = {line.split(b"\t", 1)[0]: j for j, line in enumerate(rows)}
            group_rows[t.pk] = [line.split(b"\t", 1)[1] for line in rows]
            dev_rows[t.pk] = [line.split(b"\t", 1) for line in export_rows(
                raw, f"SELECT group_id, {', '.join(device_cols)} FROM inventory_device WHERE host_id = %s ORDER BY bdf", [t.pk])]
            viol_rows[t.pk] = export_rows(raw, f"SELECT {', '.join(viol_cols)}, md5(subject_kind || subject_id || rule) "
                                               "FROM policy_violation WHERE host_id = %s", [t.pk])
        stride = max(len(g) for g in group_rows.values())

        def new_group_id(k: int, t, old: bytes) -> bytes:
            j = group_index[t.pk].get(old)
            return b"\\N" if j is None else str(base + k * stride + j).encode()

        def group_lines():
            for k, (h, t) in enumerate(zip(hosts, plan)):
                yield b"".join(f"{base + k * stride + j}\t{h.pk}\t".encode() + line for j, line in enumerate(group_rows[t.pk]))

        def device_lines():
            for k, (h, t) in enumerate(zip(hosts, plan)):
                yield b"".join(f"{h.pk}\t".encode() + new_group_id(k, t, gid) + b"\t" + rest for gid, rest in dev_rows[t.pk])

        copy_rows(raw, "inventory_group", ["id", "host_id"] + group_cols, group_lines())
        raw.execute("SELECT setval(pg_get_serial_sequence('inventory_group', 'id'), (SELECT max(id) FROM inventory_group))")
        copy_rows(raw, "inventory_device", ["host_id", "group_id"] + device_cols, device_lines())
        t_devices = time.perf_counter() - t0
        copy_rows(raw, "policy_violation", ["host_id"] + viol_cols + ["fingerprint"], violation_lines(clones, viol_rows))
        raw.execute("ANALYZE")
    return {"templates_s": t_templates, "hosts_s": t_hosts, "devices_s": t_devices, "total_s": time.perf_counter() - t0}


def timed(call, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    args = fleet_database(__doc__.split("\n")[0], populate)
    from django.contrib.auth.models import User
    from django.test import Client

    from fleet.accounts.services import api_token_issue
    from fleet.decisions import services
    from fleet.inventory.models import Device, Host

    print(f"fleet: {Host.objects.count()} hosts, {Device.objects.count():,} devices")

    user, _ = User.objects.get_or_create(username="bench", defaults={"is_superuser": True, "is_staff": True})
    client = Client()
    client.force_login(user)
    print("\ncapacity finder, GET /api/v1/capacity?count=4, server time (ms):")
    every = []
    for q in QUERIES:
        def find(q=q):
            response = client.get("/api/v1/capacity", {"q": q, "count": "4"})
            assert response.status_code == 200, response.content[:300]
            return response
        body = find().json()
        t = timed(find, args.runs)
        every += t
        print(f"  {q:36s} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}   ({len(body['picks'])} picks of {body['free_groups']} free groups)")
    print(f"  ALL finder queries: p50 {pct(every, 50):.1f} ms, p95 {pct(every, 95):.1f} ms (target p95 <= 300)")

    large = Host.objects.get(hostname="bench-large-0")
    token = api_token_issue(user=user, name="bench", scopes=("preflight",))[1]
    pick = client.get("/api/v1/capacity", {"q": f"host:{large.hostname} class:gpu", "count": "1"}).json()["picks"][0]
    held = Device.objects.filter(host=large, owner_vm__isnull=False, class_code__startswith="03").values_list("bdf", flat=True).first()
    print(f"\npre-flight, POST /api/v1/preflight on {large.hostname} ({Device.objects.filter(host=large).count()} devices), server time (ms):")
    every = []
    cases = [(f"{what}, {how}", devices, how == "cold")
             for what, devices in (("allowed: a free group", pick["devices"]), ("denied: a GPU another VM holds", [held]))
             for how in ("cold", "warm")]
    for what, devices, cold in cases:
        body = json.dumps({"host": large.hostname, "devices": devices, "owner": {"vm": "bench-vm", "tenant": "bench"}})

        def run(body=body, cold=cold):
            if cold:  # the host's state rebuilt from the tables, as for the first VM start after a snapshot
                services._states.clear()
            response = client.post("/api/v1/preflight", body, content_type="application/json", HTTP_AUTHORIZATION=f"Bearer {token}")
            assert response.status_code == 200, response.content[:300]
            return response
        decision = run().json()["decision"]
        t = timed(run, args.runs)
        every += t
        print(f"  {what:42s} p50 {pct(t, 50):7.1f}  p95 {pct(t, 95):7.1f}   ({decision})")
    print(f"  ALL pre-flights: p50 {pct(every, 50):.1f} ms, p95 {pct(every, 95):.1f} ms (target p95 <= 50)")


if __name__ == "__main__":
    main()
