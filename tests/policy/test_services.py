"""Violation lifecycle with the database: open, keep, resolve, reopen; waivers; acknowledgements; intent changes."""
import copy
import json
from datetime import datetime, timedelta, timezone
from io import StringIO

import pytest
from django.core.management import call_command

from agent.paths import Root
from agent.snapshot import build
from fleet.policy import selectors, services
from fleet.policy.intent import Intent, Role, Tenant
from fleet.policy.models import GroupBaseline, IntentChange, Violation, ViolationEvent, Waiver

from .dbhosts import apply_and_sync, host_named, open_keys
from .truth import parse

T0 = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)
pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def docs(captures_root):
    names = ("shared-bridge-group", "shared-group-all-vfio", "no-iommu", "isolated-nics")
    return {n: build(Root.of(captures_root / n)) for n in names}


def _group_of_shared_bridge(capture) -> str:
    truth = parse(capture("shared-bridge-group"))
    return str(next(g for g, m in truth.groups.items() if any(truth.drivers.get(b) == "vfio-pci" for b in m)))


def _events(v):
    return list(ViolationEvent.objects.filter(violation=v).order_by("at", "id").values_list("kind", flat=True))


def test_a_violation_opens_stays_the_same_row_while_it_fires_and_resolves_after_the_fixing_snapshot(docs, capture):
    gid = _group_of_shared_bridge(capture)
    host = host_named("hv-1")
    apply_and_sync(host, docs["shared-bridge-group"], T0)
    mixed = Violation.objects.get(host=host, rule="group-mixed-ownership", subject_id=gid)
    assert (mixed.status, mixed.severity, mixed.opened_at) == ("open", "critical", T0)

    apply_and_sync(host, docs["shared-bridge-group"], T0 + timedelta(minutes=1))
    again = Violation.objects.get(host=host, rule="group-mixed-ownership", subject_id=gid)
    assert again.pk == mixed.pk and again.status == "open"
    assert (again.opened_at, again.last_seen_at) == (T0, T0 + timedelta(minutes=1))

    # The operator binds the e1000 NIC to vfio-pci and gives the group to one VM: the group becomes viable.
    counts = apply_and_sync(host, docs["shared-group-all-vfio"], T0 + timedelta(minutes=2))
    mixed.refresh_from_db()
    assert (mixed.status, mixed.resolved_at) == ("resolved", T0 + timedelta(minutes=2))
    assert ("group-shared-p2p", "group", gid) in open_keys(host)
    assert counts["resolved"] == 1 and counts["opened"] == 1
    assert _events(mixed) == ["opened", "resolved"]

    apply_and_sync(host, docs["shared-bridge-group"], T0 + timedelta(minutes=3))
    mixed.refresh_from_db()
    assert mixed.status == "open" and mixed.resolved_at is None and _events(mixed) == ["opened", "resolved", "reopened"]
    assert Violation.objects.filter(host=host, rule="group-mixed-ownership").count() == 1


def _listed(host=None):
    out = StringIO()
    call_command("violations", "--json", *(["--host", host] if host else []), stdout=out)
    return json.loads(out.getvalue())


def test_a_waived_violation_is_hidden_until_its_waiver_expires_and_then_shows_again(docs, capture):
    host = host_named("hv-2")
    apply_and_sync(host, docs["no-iommu"], T0)
    uio = Violation.objects.get(host=host, rule="uio-driver")
    services.violation_waive(violation=uio, by="carol", justification="DPDK lab box until the IOMMU BIOS fix",
                             expires_at=T0 + timedelta(hours=1), now=T0)
    listed = lambda now: {v.rule for v in selectors.violations_open(host=host, now=now)}  # noqa: E731
    assert "uio-driver" not in listed(T0 + timedelta(minutes=30))
    assert "iommu-disabled" in listed(T0 + timedelta(minutes=30))

    apply_and_sync(host, docs["no-iommu"], T0 + timedelta(minutes=30))  # still firing, still waived
    assert "uio-driver" not in listed(T0 + timedelta(minutes=30))

    assert services.waivers_expire(now=T0 + timedelta(hours=2)) == 1
    uio.refresh_from_db()
    assert uio.status == "open" and uio.waived_until is None
    assert "uio-driver" in listed(T0 + timedelta(hours=2))
    assert Waiver.objects.get(violation=uio).expired_at == T0 + timedelta(hours=2)
    waived = ViolationEvent.objects.get(violation=uio, kind="waived")
    assert (waived.by, waived.at, waived.detail["justification"]) == ("carol", T0, "DPDK lab box until the IOMMU BIOS fix")
    waiver = Waiver.objects.get(violation=uio)
    assert (waiver.created_by, waiver.created_at) == ("carol", T0)  # who and when, kept after it expired
    assert _events(uio)[-1] == "waiver_expired"


def test_the_violations_command_lists_open_unwaived_ones_with_the_documented_json_fields(docs):
    host = host_named("hv-3")
    apply_and_sync(host, docs["no-iommu"], T0)
    rows = _listed("hv-3")
    assert {r["rule"] for r in rows} == {"uio-driver", "iommu-disabled"}
    for r in rows:
        assert {"rule", "severity", "host", "subject", "message", "evidence", "remediation", "opened_at"} <= set(r)
        assert r["host"] == "hv-3"
    services.violation_waive(violation=Violation.objects.get(host=host, rule="uio-driver"), by="carol",
                             justification="lab", expires_at=datetime.now(timezone.utc) + timedelta(days=1))
    assert {r["rule"] for r in _listed("hv-3")} == {"iommu-disabled"}
    out = StringIO()
    call_command("violations", "--json", "--severity", "critical", "--rule", "iommu-disabled", stdout=out)
    assert [r["host"] for r in json.loads(out.getvalue())] == ["hv-3"]


def test_a_waiver_needs_a_justification_and_a_future_expiry(docs):
    host = host_named("hv-4")
    apply_and_sync(host, docs["no-iommu"], T0)
    v = Violation.objects.get(host=host, rule="uio-driver")
    with pytest.raises(services.PolicyError):
        services.violation_waive(violation=v, by="carol", justification="  ", expires_at=T0 + timedelta(days=1), now=T0)
    with pytest.raises(services.PolicyError):
        services.violation_waive(violation=v, by="carol", justification="ok", expires_at=T0 - timedelta(days=1), now=T0)
    assert not Waiver.objects.exists()


def test_acknowledging_records_who_and_keeps_the_violation_listed(docs):
    host = host_named("hv-5")
    apply_and_sync(host, docs["no-iommu"], T0)
    v = Violation.objects.get(host=host, rule="uio-driver")
    services.violation_acknowledge(violation=v, by="dave", now=T0)
    v.refresh_from_db()
    assert (v.acknowledged_by, v.acknowledged_at) == ("dave", T0)
    assert ViolationEvent.objects.get(violation=v, kind="acknowledged").by == "dave"
    assert "uio-driver" in {r["rule"] for r in _listed("hv-5")}


def test_an_intent_change_re_evaluates_the_fleet_and_is_audited(docs, django_capture_on_commit_callbacks):
    # isolated-nics assigns a NIC through a real IOMMU: nothing open. A role that demands vfio-pci only for
    # hosts named hv-* and an allowed-driver list that excludes vfio-pci make it drift.
    host = host_named("hv-6")
    apply_and_sync(host, docs["isolated-nics"], T0)
    assert open_keys(host) == set()
    intent = Intent(roles=(Role(name="hypervisor", host_patterns=("hv-*",), expects_assignment=True),),
                    allowed_userspace_drivers=("uio_pci_generic",))
    with django_capture_on_commit_callbacks(execute=True):
        change = services.intent_replace(intent=intent, user="erin", source="import")
    assert (change.by, change.source) == ("erin", "import") and "uio_pci_generic" in change.after
    vfio = [b for b, d in parse_drivers(docs["isolated-nics"]).items() if d == "vfio-pci"]
    assert {k for k in open_keys(host) if k[0] == "driver-drift"} == {("driver-drift", "device", b) for b in vfio}


def parse_drivers(doc):
    return {d["bdf"]: d["driver"] for d in doc["devices"]}


def test_accepting_a_baseline_then_a_regrouped_snapshot_opens_group_changed_for_the_moved_devices(docs, capture):
    gid = int(_group_of_shared_bridge(capture))
    host = host_named("hv-7")
    apply_and_sync(host, docs["shared-group-all-vfio"], T0)
    baseline = services.baseline_accept(host=host, user="frank", now=T0)
    assert IntentChange.objects.get(source="baseline-accept").by == "frank"
    assert sorted(map(sorted, baseline.groups)) == sorted(sorted(m) for m in parse(capture("shared-group-all-vfio")).groups.values())
    apply_and_sync(host, docs["shared-group-all-vfio"], T0 + timedelta(minutes=1))
    assert not {k for k in open_keys(host) if k[0] == "group-changed"}

    # Stands for a BIOS update that put the second NIC into a group of its own.
    regrouped = copy.deepcopy(docs["shared-group-all-vfio"])
    group = next(g for g in regrouped["groups"] if g["id"] == gid)
    moved = group["devices"].pop()
    regrouped["groups"].append({**group, "id": 99, "devices": [moved]})
    next(d for d in regrouped["devices"] if d["bdf"] == moved)["iommu_group"] = 99
    apply_and_sync(host, regrouped, T0 + timedelta(minutes=2))
    (changed,) = Violation.objects.filter(host=host, rule="group-changed", status="open")
    truth = next(sorted(m) for m in parse(capture("shared-group-all-vfio")).groups.values() if moved in m)
    assert changed.evidence["change"] == "split"
    assert [[m["bdf"] for m in g] for g in changed.evidence["baseline_groups"]] == [sorted(truth)]
    assert sorted(sorted(m["bdf"] for m in g["members"]) for g in changed.evidence["current_groups"]) == sorted(
        [sorted(set(truth) - {moved}), [moved]])
    assert GroupBaseline.objects.get(hostname="hv-7").accepted_by == "frank"


def test_a_host_that_stops_reporting_gets_stale_host_from_the_periodic_sync(docs):
    host = host_named("hv-8")
    apply_and_sync(host, docs["isolated-nics"], T0)
    assert services.stale_hosts_sync(now=T0 + timedelta(seconds=30)) == 0
    assert services.stale_hosts_sync(now=T0 + timedelta(hours=1)) == 1
    assert ("stale-host", "host", "hv-8") in open_keys(host)
    assert services.stale_hosts_sync(now=T0 + timedelta(hours=2)) == 0  # already flagged: no re-evaluation


def test_the_batch_state_rebuild_equals_the_inventorys_host_state_for_each_host(docs):
    from fleet.inventory.selectors import host_state

    hosts = [host_named(f"batch-{name}") for name in docs]
    for host, doc in zip(hosts, docs.values()):
        apply_and_sync(host, doc, T0)
    batch = selectors.host_states(hosts)
    assert all(batch[h.pk] == host_state(h) for h in hosts)


def test_a_fleet_sync_after_an_intent_change_opens_and_then_resolves_across_hosts(docs):
    hosts = [host_named(f"fleet-{i}") for i in range(3)]
    for host in hosts:
        apply_and_sync(host, docs["isolated-nics"], T0)
    vfio = {b for b, d in parse_drivers(docs["isolated-nics"]).items() if d == "vfio-pci"}
    drift = Intent(allowed_userspace_drivers=("uio_pci_generic",))
    totals = services.violations_sync_fleet(now=T0 + timedelta(minutes=1), intent=drift)
    assert totals["hosts"] == 3 and totals["opened"] == 3 * len(vfio)
    assert all({k for k in open_keys(h) if k[0] == "driver-drift"} == {("driver-drift", "device", b) for b in vfio} for h in hosts)
    totals = services.violations_sync_fleet(now=T0 + timedelta(minutes=2), intent=Intent())
    assert totals["resolved"] == 3 * len(vfio) and not any(open_keys(h) for h in hosts)


def test_the_periodic_policy_task_expires_waivers_and_flags_silent_hosts(docs):
    from fleet.policy.tasks import policy_tick

    host = host_named("hv-9")
    past = T0 - timedelta(days=2)
    apply_and_sync(host, docs["no-iommu"], past)
    uio = Violation.objects.get(host=host, rule="uio-driver")
    services.violation_waive(violation=uio, by="carol", justification="lab", expires_at=past + timedelta(hours=1), now=past)
    policy_tick()  # runs at the real clock, long after both the expiry and the last report
    uio.refresh_from_db()
    assert uio.waived_until is None and _events(uio)[-1] == "waiver_expired"
    assert ("stale-host", "host", "hv-9") in open_keys(host)


def test_a_host_that_stays_silent_keeps_one_stale_host_violation_without_update_events(docs):
    host = host_named("hv-10")
    apply_and_sync(host, docs["isolated-nics"], T0)
    services.violations_sync_for_host(host=host, now=T0 + timedelta(hours=1))
    services.violations_sync_for_host(host=host, now=T0 + timedelta(hours=2))
    stale = Violation.objects.get(host=host, rule="stale-host")
    assert stale.last_seen_at == T0 + timedelta(hours=2) and _events(stale) == ["opened"]


def test_the_baseline_accept_command_records_the_hosts_groups_and_refuses_unknown_hosts(docs, capture):
    from django.core.management.base import CommandError

    host = host_named("hv-11")
    apply_and_sync(host, docs["shared-bridge-group"], T0)
    call_command("policy", "baseline", "accept", "hv-11", "--by", "ivan", stdout=StringIO())
    baseline = GroupBaseline.objects.get(hostname="hv-11")
    assert baseline.accepted_by == "ivan"
    assert sorted(map(sorted, baseline.groups)) == sorted(sorted(m) for m in parse(capture("shared-bridge-group")).groups.values())
    with pytest.raises(CommandError, match="no host"):
        call_command("policy", "baseline", "accept", "no-such-host")


def _idxd_document(hostname, pids):
    # DSA shared work queues on two hypervisors, opened by tenant a's VMs (each opener gets a PASID).
    from .states import device, holder, state

    users = [{"device": "0000:6a:01.0", "pid": pid, "source": "idxd-wq"} for pid in pids]
    holders = [holder(pid, vm=f"a-vm{pid}", groups=[], devices=[], nodes=["/dev/iommu"], kind="other") for pid in pids]
    return state(hostname=hostname, devices=[device("0000:6a:01.0", driver="idxd", group=5)], holders=holders, pasid_users=users)


def _quota_open(host):
    return ("pasid-quota", "tenant", "a") in open_keys(host)


def test_a_tenant_pasid_quota_sums_the_fleet_and_rechecks_the_other_hosts_when_one_host_tips_it(django_capture_on_commit_callbacks):
    services.intent_replace(intent=Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=4),)), user="alice")
    hv1, hv2 = host_named("hv-1"), host_named("hv-2")
    apply_and_sync(hv1, _idxd_document("hv-1", [501, 502, 503]), T0)
    apply_and_sync(hv2, _idxd_document("hv-2", []), T0)
    assert not _quota_open(hv1) and not _quota_open(hv2)

    # Two more of tenant a's VMs open the work queue on hv-2: 5 PASIDs in the fleet, over 4.
    with django_capture_on_commit_callbacks(execute=True):
        apply_and_sync(hv2, _idxd_document("hv-2", [601, 602]), T0 + timedelta(minutes=1))
    assert _quota_open(hv2) and _quota_open(hv1)  # hv-1 re-checked once hv-2's counts were committed
    v = Violation.objects.get(host=hv1, rule="pasid-quota")
    assert (v.evidence["fleet_total"], v.evidence["on_this_host"], v.evidence["on_other_hosts"]) == (5, 3, 2)

    with django_capture_on_commit_callbacks(execute=True):
        apply_and_sync(hv2, _idxd_document("hv-2", []), T0 + timedelta(minutes=2))
    assert not _quota_open(hv2) and not _quota_open(hv1)


def test_an_intent_change_recounts_tenant_pasids_across_the_fleet_before_evaluating_any_host():
    hv1, hv2 = host_named("hv-1"), host_named("hv-2")
    apply_and_sync(hv1, _idxd_document("hv-1", [501, 502, 503]), T0)
    apply_and_sync(hv2, _idxd_document("hv-2", [601, 602]), T0)
    assert not _quota_open(hv1)  # no tenant declared yet
    # Declaring the tenant and its quota: both hosts see the fleet total (5 > 4) in the same re-evaluation.
    services.intent_replace(intent=Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=4),)), user="alice")
    services.violations_sync_fleet(now=T0 + timedelta(minutes=1))
    assert _quota_open(hv1) and _quota_open(hv2)
    services.intent_replace(intent=Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=5),)), user="alice")
    services.violations_sync_fleet(now=T0 + timedelta(minutes=2))
    assert not _quota_open(hv1) and not _quota_open(hv2)


def test_tenant_pasids_sums_each_tenants_users_over_the_hosts_against_its_quota():
    services.intent_replace(intent=Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=4),
                                                   Tenant(name="b", vm_patterns=("b-*",)))), user="alice")
    apply_and_sync(host_named("hv-1"), _idxd_document("hv-1", [501, 502, 503]), T0)
    apply_and_sync(host_named("hv-2"), _idxd_document("hv-2", [601, 602]), T0)
    assert selectors.tenant_pasids() == [{"tenant": "a", "used": 5, "hosts": 2, "quota": 4, "over": True},
                                         {"tenant": "b", "used": 0, "hosts": 0, "quota": None, "over": False}]
