"""The engine on the real captures: every finding is one their ground truth implies, and no other."""
import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.policy.engine import evaluate
from tests.conftest import CAPTURE_NAMES

from .oracle import expected_findings
from .truth import parse


@pytest.fixture(scope="module")
def snapshots(captures_root):
    return {name: build(Root.of(captures_root / name)) for name in CAPTURE_NAMES}


def _keys(findings):
    return {(f.rule, f.subject_kind, f.subject_id) for f in findings}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_each_capture_yields_exactly_the_findings_its_ground_truth_implies(name, snapshots, capture):
    assert _keys(evaluate(snapshots[name])) == expected_findings(parse(capture(name)))


def test_shared_bridge_group_is_mixed_ownership_of_the_vfio_nic_and_the_e1000_nic(snapshots, capture):
    truth = parse(capture("shared-bridge-group"))
    vfio = {b for b, d in truth.drivers.items() if d == "vfio-pci"}
    e1000 = {b for b, d in truth.drivers.items() if d == "e1000"}
    (gid,) = {truth.group_of(b) for b in vfio | e1000}
    findings = [f for f in evaluate(snapshots["shared-bridge-group"]) if f.rule == "group-mixed-ownership"]
    assert [f.subject_id for f in findings] == [str(gid)]
    (finding,) = findings
    assert finding.severity == "critical"
    assert set(finding.evidence["assigned"]) == vfio and set(finding.evidence["host_dma"]) == e1000
    assert {m["bdf"]: m["driver"] for m in finding.evidence["members"]} == {b: truth.drivers[b] for b in truth.groups[gid]}
    bridge = next(b for b, kind in truth.express.items() if kind.startswith("PCI-Express to PCI"))
    assert all(f"bind {b} to vfio-pci" in finding.remediation for b in e1000)
    # The agent's sentence (the one `fleet-agent show` prints), with its short BDFs.
    endpoints = sorted(b.removeprefix("0000:") for b in truth.groups[gid] if not truth.is_bridge(b))
    assert (f"why they share group {gid}: {', '.join(endpoints[:-1])} and {endpoints[-1]} sit behind PCIe-to-PCI bridge "
            f"{bridge.removeprefix('0000:')}") in finding.remediation
    assert finding.evidence["explained_by"][0].startswith(f"{', '.join(endpoints[:-1])} and {endpoints[-1]} sit behind")


def test_shared_group_all_vfio_is_peer_to_peer_exposure_held_by_one_vm_and_not_mixed(snapshots, capture):
    truth = parse(capture("shared-group-all-vfio"))
    findings = evaluate(snapshots["shared-group-all-vfio"])
    rules = {f.rule for f in findings}
    assert "group-mixed-ownership" not in rules and "group-split-owners" not in rules
    (p2p,) = [f for f in findings if f.rule == "group-shared-p2p"]
    vms = set(truth.vm_devices.values())
    assert len(vms) == 1 and p2p.evidence["holders"] == sorted(vms)
    assert set(p2p.evidence["endpoints"]) == {b for b in truth.groups[int(p2p.subject_id)] if not truth.is_bridge(b)}


def test_no_iommu_capture_is_uio_and_iommu_disabled_but_not_noiommu_mode(snapshots, capture):
    truth = parse(capture("no-iommu"))
    assert not truth.groups  # ground truth: find lists no group at all
    rules = {(f.rule, f.subject_id) for f in evaluate(snapshots["no-iommu"])}
    uio = {b for b, d in truth.drivers.items() if d == "uio_pci_generic"}
    assert uio and {("uio-driver", b) for b in uio} <= rules
    assert ("iommu-disabled", truth.hostname) in rules
    assert not any(rule == "noiommu-mode" for rule, _ in rules)


def test_passthrough_capture_flags_identity_domains_while_a_device_is_assigned_to_a_tenant(snapshots, capture):
    truth = parse(capture("iommu-passthrough"))
    (finding,) = [f for f in evaluate(snapshots["iommu-passthrough"]) if f.rule == "identity-domain-multitenant"]
    assert finding.evidence["identity_groups"] == sorted(g for g, t in truth.group_types.items() if t == "identity")
    owners = {b: {o["vm"] for o in os_} for b, os_ in finding.evidence["assigned"].items()}
    assert owners == {b: {vm} for b, vm in truth.vm_devices.items()}
    assert all(f"{b} (held by {vm})" in finding.message for b, vm in truth.vm_devices.items())
    identity = sum(1 for t in truth.group_types.values() if t == "identity")
    assert f"{identity} of {len(truth.groups)} groups use identity" in finding.message


def test_no_iommu_remediation_names_the_dpdk_process_to_stop_and_the_device_it_holds(snapshots, capture):
    truth = parse(capture("no-iommu"))
    (finding,) = [f for f in evaluate(snapshots["no-iommu"]) if f.rule == "iommu-disabled"]
    assert truth.vm_devices and all(f"({name}), which holds {bdf}" in finding.remediation for bdf, name in truth.vm_devices.items())


def test_the_shared_group_p2p_message_names_both_endpoints(snapshots, capture):
    truth = parse(capture("shared-group-all-vfio"))
    (p2p,) = [f for f in evaluate(snapshots["shared-group-all-vfio"]) if f.rule == "group-shared-p2p"]
    a, b = sorted(m for m in truth.groups[int(p2p.subject_id)] if not truth.is_bridge(m))
    assert f"({a} and {b})" in p2p.message and "each can reach the other by" in p2p.message


def test_sriov_vfs_have_their_own_groups_so_vf_shares_pf_group_does_not_fire(snapshots, capture):
    truth = parse(capture("sriov-nvme"))
    nvme = sorted(b for b, c in truth.classes.items() if c == "0108")
    assert len({truth.group_of(b) for b in nvme}) == len(nvme)  # PF and each VF: distinct groups
    assert not [f for f in evaluate(snapshots["sriov-nvme"]) if f.rule in ("vf-shares-pf-group", "pf-userspace-vfs-elsewhere")]


@pytest.mark.parametrize("name", [n for n in CAPTURE_NAMES if n != "no-iommu"])
def test_nested_host_follows_the_caching_mode_bit_dmesg_prints_for_each_emulated_vtd(name, snapshots, capture):
    # QEMU here ran intel-iommu without caching-mode=on: cap bit 7 (CM) is 0 in dmesg, so no finding.
    truth = parse(capture(name))
    cm = bool((truth.intel_cap >> 7) & 1)
    assert any(f.rule == "nested-host" for f in evaluate(snapshots[name])) == cm


def test_old_kernel_viability_does_not_fire_on_the_captures_6_1_kernel(snapshots, capture):
    assert parse(capture("isolated-nics")).kernel.startswith("6.1")
    assert not [f for n in CAPTURE_NAMES for f in evaluate(snapshots[n]) if f.rule == "old-kernel-viability"]


def test_every_finding_has_one_sentence_evidence_and_a_remediation(snapshots):
    for name in CAPTURE_NAMES:
        for f in evaluate(snapshots[name]):
            assert f.message.endswith(".") and f.message.count(". ") == 0, f.message
            assert f.evidence and f.remediation
