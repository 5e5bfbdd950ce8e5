"""What a hostile host can make the engine do stays bounded (issue 10 item 5): holders × groups work,
findings per rule (one summarising finding past the cap), evidence and text per finding.

The hostile states stand for a compromised host: its agent reports whatever makes evaluation
expensive (thousands of holders each naming every group, thousands of world-writable nodes, one
group of thousands of devices). Assertions are on counts and sizes, never on time.
"""
import json

import pytest
from django.utils import timezone

from agent.paths import Root
from agent.snapshot import build
from fleet.inventory.models import Host
from fleet.policy import limits
from fleet.policy.engine import evaluate
from fleet.policy.facts import HostFacts
from fleet.policy.models import Violation
from fleet.policy.services import violations_sync_for_host
from tests.conftest import CAPTURE_NAMES

from .hostile import holders_naming_every_group, one_huge_group, world_writable_nodes
from .states import state


def _evidence_bytes(findings):
    return [len(json.dumps(f.evidence, default=str)) for f in findings]


def test_five_thousand_holders_naming_two_thousand_groups_each_are_cut_to_the_caps_and_said_so():
    st = holders_naming_every_group(5_000, 2_000)
    bounded, cut = limits.holders_bounded(st)
    per_holder = 2 * limits.MAX_REFS_PER_HOLDER  # its groups and its nodes, each cut to the per-holder cap
    kept = limits.MAX_HOLDER_REFS // per_holder
    assert len(bounded["holders"]) == kept and all(len(h["groups"]) == limits.MAX_REFS_PER_HOLDER for h in bounded["holders"])
    assert cut == {"holders": 5_000 - kept, "references": kept * (2_000 + 2_001 - per_holder)}
    facts = HostFacts.build(bounded)
    assert sum(len(hs) for hs in facts.holders_by_device.values()) <= limits.MAX_HOLDER_REFS  # the holders × groups work

    findings = evaluate(st)
    [left_out] = [f for f in findings if f.rule == "unknown-holder" and f.subject_kind == "host"]
    assert left_out.evidence["holders_left_out"] == 5_000 - kept and left_out.severity == "high"
    by_rule = {}
    for f in findings:
        by_rule[f.rule] = by_rule.get(f.rule, 0) + 1
    assert max(by_rule.values()) <= limits.MAX_FINDINGS_PER_RULE + 1
    assert max(_evidence_bytes(findings)) <= limits.MAX_EVIDENCE_BYTES
    assert max(len(f.message) for f in findings) <= limits.MAX_TEXT_CHARS


def test_ten_thousand_would_be_findings_of_one_rule_become_the_cap_and_one_summary():
    # 10,000 world-writable VFIO group nodes: each one is a device-node-permissions finding.
    findings = [f for f in evaluate(world_writable_nodes(10_000)) if f.rule == "device-node-permissions"]
    assert len(findings) == limits.MAX_FINDINGS_PER_RULE + 1
    [summary] = [f for f in findings if f.subject_kind == "rule"]
    assert summary.evidence["left_out"] == 10_000 - limits.MAX_FINDINGS_PER_RULE
    listed = sorted(f"/dev/vfio/{g}" for g in range(10_000))  # the first subjects in order are kept, the next named
    assert [f.subject_id for f in findings if f.subject_kind == "node"] == listed[:limits.MAX_FINDINGS_PER_RULE]
    assert summary.evidence["first_left_out"][0] == f"node {listed[limits.MAX_FINDINGS_PER_RULE]}"
    assert "9800 more device-node-permissions findings" in summary.message


@pytest.mark.django_db
def test_a_hostile_host_opens_at_most_the_cap_of_violations_per_rule_and_they_resolve():
    host = Host.objects.create(hostname="hostile-1", enrollment=Host.Enrollment.ACTIVE, last_seen=timezone.now())
    counts = violations_sync_for_host(host=host, state=world_writable_nodes(10_000, hostname="hostile-1"))
    open_rows = Violation.objects.filter(host=host, rule="device-node-permissions", status="open")
    assert open_rows.count() == limits.MAX_FINDINGS_PER_RULE + 1 and counts["opened"] >= open_rows.count()
    assert open_rows.filter(subject_kind="rule", subject_id="device-node-permissions").exists()
    violations_sync_for_host(host=host, state=state(hostname="hostile-1"))
    assert not Violation.objects.filter(host=host, rule="device-node-permissions", status="open").exists()


def test_one_group_of_three_thousand_devices_gives_a_finding_within_the_evidence_and_text_caps():
    # One IOMMU group naming 3,000 endpoints, all on vfio-pci and held by one VM: group-shared-p2p lists them all.
    (f,) = [f for f in evaluate(one_huge_group(3_000)) if f.rule == "group-shared-p2p"]
    size = len(json.dumps(f.evidence, default=str))
    assert size <= limits.MAX_EVIDENCE_BYTES and f.evidence["truncated"] is True and f.evidence["bytes"] > size
    # What is kept still shows the group: its first members, and how many more there were.
    assert f.evidence["group"] == 7 and f.evidence["members"][0]["bdf"] == "0000:01:00.0"
    assert f.evidence["members"][-1].startswith("… ") and f.evidence["members"][-1].endswith(" more")
    assert len(f.message) <= limits.MAX_TEXT_CHARS and f.message.endswith("…")
    assert len(f.remediation) <= limits.MAX_TEXT_CHARS


@pytest.fixture(scope="module")
def snapshots(captures_root):
    return {name: build(Root.of(captures_root / name)) for name in CAPTURE_NAMES}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_no_cap_touches_a_real_hosts_state_or_findings(snapshots, name):
    st = snapshots[name]
    assert limits.holders_bounded(st) == (st, {})
    findings = evaluate(st)
    assert all(limits.finding_bounded(f) is f for f in findings)
    assert not any(f.subject_kind == "rule" for f in findings)
