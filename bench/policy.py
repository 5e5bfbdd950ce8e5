"""Policy benchmark: all rules on a 480-device host (pure engine), hostile hosts against the engine's
caps (fleet/policy/limits.py), and a 1,000-host fleet re-evaluation after an intent change (through
the services and PostgreSQL).

    .venv/bin/python bench/policy.py [--hosts 1000] [--rebuild] [--runs 50] [--only engine,hostile,fleet]

Targets (issue 4): one 480-device host in at most 20 ms; the whole fleet re-evaluated after an
intent change in at most 30 s on this machine. Hostile hosts (issue 10 item 5): each evaluated in
at most 5 s here, findings and evidence within the caps. The fleet lives in the PostgreSQL database
`fleet_bench_policy` (created and migrated on first use, reused afterwards unless --rebuild),
filled by applying `fleet.demo.synth.fleet(n)` snapshots through `host_state_replace`.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

BENCH_DB = "fleet_bench_policy"
PG = "postgres://postgres@127.0.0.1:5432"
ENGINE_TARGET_MS = 20.0
FLEET_TARGET_S = 30.0
HOSTILE_TARGET_S = 5.0


def _prepare_database(rebuild: bool, name: str = BENCH_DB) -> None:
    """Create (or with `rebuild` recreate) the database `name`, point Django at it, set up and migrate."""
    import psycopg

    with psycopg.connect(f"{PG}/postgres", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
        if exists and rebuild:
            conn.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
            exists = None
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')
    os.environ["DATABASE_URL"] = f"{PG}/{name}"
    # In-process tasks: the intent change's fleet re-evaluation runs inside the timed call.
    os.environ.pop("FLEET_BROKER_URL", None)
    os.environ.pop("REDIS_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "fleet.settings")
    os.environ.setdefault("FLEET_LOG_LEVEL", "WARNING")
    import django

    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)


def bench_engine(runs: int) -> float:
    from fleet.demo.synth import large_host
    from fleet.policy.engine import evaluate
    from fleet.policy.facts import HostContext
    from fleet.policy.intent import Baseline, parse_toml

    doc = large_host(480)
    intent = parse_toml((ROOT / "fleet" / "demo" / "intent.toml").read_text())
    # A baseline for this host makes group-changed compare every device, the costliest rule.
    groups = tuple(tuple(sorted(g["devices"])) for g in doc["groups"])
    intent = replace(intent, baselines=(Baseline(hostname=doc["host"]["hostname"], groups=groups[1:]),))
    context = HostContext(hostname=doc["host"]["hostname"], role="gpu-passthrough", now=datetime.now(timezone.utc),
                          last_seen=datetime.now(timezone.utc))
    evaluate(doc, intent, context=context)  # warm caches (pattern compilation)
    times, findings = [], []
    for _ in range(runs):
        start = time.perf_counter()
        findings = evaluate(doc, intent, context=context)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    p95 = times[int(0.95 * (len(times) - 1))]
    median = statistics.median(times)
    print(f"engine: {len(doc['devices'])} devices, {len(doc['groups'])} groups, {len(doc['holders'])} holders, "
          f"{len(findings)} findings; {runs} runs: median {median:.2f} ms, p95 {p95:.2f} ms, "
          f"max {times[-1]:.2f} ms (target <= {ENGINE_TARGET_MS:.0f} ms, judged on the median: the tail is other "
          "processes on this shared 2-core machine)")
    return median


def bench_hostile() -> float:
    """Seconds of the slowest hostile evaluation (CPU time of this process: the machine is shared)."""
    import json

    from fleet.policy import limits
    from fleet.policy.engine import evaluate
    from tests.policy.hostile import holders_naming_every_group, one_huge_group, world_writable_nodes

    worst = 0.0
    for name, build in (("5,000 holders x 2,000 groups", lambda: holders_naming_every_group(5_000, 2_000)),
                        ("10,000 world-writable nodes", lambda: world_writable_nodes(10_000)),
                        ("one group of 3,000 devices", lambda: one_huge_group(3_000))):
        state = build()
        start = time.process_time()
        findings = evaluate(state)
        elapsed = time.process_time() - start
        worst = max(worst, elapsed)
        per_rule: dict[str, int] = {}
        for f in findings:
            per_rule[f.rule] = per_rule.get(f.rule, 0) + 1
        biggest = max(len(json.dumps(f.evidence, default=str)) for f in findings)
        print(f"hostile: {name}: {elapsed:.2f} s CPU, {len(findings)} findings (most per rule {max(per_rule.values())}, "
              f"cap {limits.MAX_FINDINGS_PER_RULE} + 1), largest evidence {biggest} B (cap {limits.MAX_EVIDENCE_BYTES} B) "
              f"(target <= {HOSTILE_TARGET_S:.0f} s)")
    return worst


def _fill_fleet(n: int) -> None:
    from fleet.demo.synth import fleet
    from fleet.inventory.models import Host
    from fleet.inventory.services import host_state_replace

    have = Host.objects.count()
    if have == n:
        print(f"fleet: reusing {n} hosts in {BENCH_DB}")
        return
    Host.objects.all().delete()
    start = time.perf_counter()
    now = datetime.now(timezone.utc)
    for doc in fleet(n):
        host = Host.objects.create(hostname=doc["host"]["hostname"], enrollment=Host.Enrollment.ACTIVE)
        host_state_replace(host=host, document=doc, snapshot_id=None, seq=None, at=now)
    print(f"fleet: applied {n} synthetic snapshots in {time.perf_counter() - start:.1f} s (setup, not a target)")


def bench_fleet(n: int) -> float:
    from django.db import connection

    from fleet.inventory.models import Host
    from fleet.policy import services
    from fleet.policy.intent import DeviceExpectation, parse_toml
    from fleet.policy.models import Violation

    _fill_fleet(n)
    Host.objects.update(last_seen=datetime.now(timezone.utc))  # a reused fleet must not be all stale-host
    demo = parse_toml((ROOT / "fleet" / "demo" / "intent.toml").read_text())
    # Fleet-wide tenant PASID quotas on: every re-evaluation first recounts each tenant's PASIDs over the fleet.
    demo = replace(demo, tenants=tuple(replace(t, pasid_quota=t.pasid_quota or 256) for t in demo.tenants))
    services.intent_replace(intent=demo, user="bench", source="bench")  # triggers a fleet sync: the starting point
    start = time.perf_counter()
    totals = services.violations_sync_fleet()
    steady = time.perf_counter() - start
    print(f"fleet: steady re-evaluation (nothing changed) of {totals['hosts']} hosts: {steady:.1f} s, "
          f"{totals['open']} open findings")

    # The change: every NIC must be on vfio-pci; most are not, so thousands of violations open.
    changed = replace(demo, devices=demo.devices + (DeviceExpectation(name="bench-nics-to-vfio", class_prefix="0200", driver="vfio-pci"),))
    before = Violation.objects.filter(status="open").count()
    start = time.perf_counter()
    services.intent_replace(intent=changed, user="bench", source="bench")  # audited; re-evaluates the fleet on commit
    elapsed = time.perf_counter() - start
    after = Violation.objects.filter(status="open").count()
    print(f"fleet: intent change + full re-evaluation of {n} hosts: {elapsed:.1f} s ({elapsed / n * 1000:.1f} ms/host), "
          f"open violations {before} -> {after} (target <= {FLEET_TARGET_S:.0f} s) [{connection.vendor}]")
    start = time.perf_counter()
    services.intent_replace(intent=demo, user="bench", source="bench")  # and back: the opened ones resolve
    back = time.perf_counter() - start
    print(f"fleet: intent change back (resolving them): {back:.1f} s")
    return max(elapsed, back)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, default=1000)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--rebuild", action="store_true", help="drop and recreate the bench database")
    parser.add_argument("--only", default="engine,hostile,fleet", help="comma-separated phases to run")
    args = parser.parse_args()
    phases = set(args.only.split(","))
    _prepare_database(args.rebuild)
    results = []
    if "engine" in phases:
        engine_ms = bench_engine(args.runs)
        results.append((f"engine median {engine_ms:.2f} ms / {ENGINE_TARGET_MS:.0f} ms", engine_ms <= ENGINE_TARGET_MS))
    if "hostile" in phases:
        hostile_s = bench_hostile()
        results.append((f"hostile worst {hostile_s:.2f} s / {HOSTILE_TARGET_S:.0f} s", hostile_s <= HOSTILE_TARGET_S))
    if "fleet" in phases:
        fleet_s = bench_fleet(args.hosts)
        results.append((f"fleet {fleet_s:.1f} s / {FLEET_TARGET_S:.0f} s", fleet_s <= FLEET_TARGET_S))
    ok = all(met for _, met in results)
    print(f"result: {', '.join(text for text, _ in results)}: {'targets met' if ok else 'TARGET MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
