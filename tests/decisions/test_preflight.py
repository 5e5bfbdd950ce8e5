"""The pre-flight: the real rule engine on the hypothetical state, the closure, the plan and its order,
on a real capture's ground truth and hand-made states (each naming the real case it stands for)."""
import copy

import pytest

from fleet.decisions.preflight import PreflightInvalid, preflight, remediation_plan
from fleet.policy.facts import HostContext
from fleet.policy.intent import EMPTY, Intent, Tenant
from tests.agent.groundtruth import find_groups, lspci_drivers, lspci_tree_parents
from tests.policy.states import device, holder, state

CTX = HostContext(hostname="hand-made")


def capture_state(root):
    from agent.paths import Root
    from agent.snapshot import build
    return build(Root.of(root), seq=1)


def run(doc, devices, *, vm="acme-vm7", tenant=None, intent=EMPTY):
    return preflight(doc, devices, vm=vm, tenant=tenant, intent=intent, context=CTX)


def test_shared_bridge_group_is_denied_with_the_plan_that_makes_it_pass(capture):
    # shared-bridge-group: 02:01.0 on vfio-pci and 02:02.0 on e1000 behind one PCIe-to-PCI bridge; the capture's attempt
    # log shows SET_CONTAINER failing with EPERM.
    root = capture("shared-bridge-group")
    doc = capture_state(root)
    drivers, groups = lspci_drivers(root), find_groups(root)
    assigned = next(b for b, d in drivers.items() if d["driver"] == "vfio-pci")
    gid = next(g for g, b in groups if b == assigned)
    members = sorted(b for g, b in groups if g == gid)
    host_nic = next(b for b in members if drivers[b]["driver"] == "e1000")
    bridge = next(b for b in members if lspci_tree_parents(root).get(assigned) == b)

    result = run(doc, [assigned])
    assert not result.allow
    assert any(r.startswith("group-mixed-ownership") or "group-mixed-ownership" in r for r in result.reasons)
    assert [m["bdf"] for c in result.closure for m in c["members"]] == members
    closure = {m["bdf"]: m for c in result.closure for m in c["members"]}
    assert closure[host_nic]["driver"] == "e1000" and closure[bridge]["is_bridge"]
    assert [(s["phase"], s["device"]) for s in result.plan] == [
        ("override", host_nic), ("unbind", host_nic), ("bind", host_nic), ("persist", host_nic)]

    after = copy.deepcopy(doc)
    for d in after["devices"]:
        if d["bdf"] == host_nic:  # the plan carried out
            d["driver"], d["driver_override"] = "vfio-pci", "vfio-pci"
    passed = run(after, [assigned])
    assert passed.allow, passed.reasons


def test_naming_every_member_of_the_group_allows_it(capture):
    root = capture("shared-bridge-group")
    doc = capture_state(root)
    drivers = lspci_drivers(root)
    nics = sorted(b for b, d in drivers.items() if d["driver"] in ("vfio-pci", "e1000"))
    assert run(doc, nics).allow


def test_a_device_held_by_another_vm_is_denied_as_split_owners():
    # Two tenants' VMs on one shared group: the DGX "split-group" case, seen from the second VM's start.
    doc = state(devices=[device("0000:0a:00.0", driver="vfio-pci", group=20, cls="030200"),
                         device("0000:0b:00.0", driver="vfio-pci", group=20, cls="030200")],
                holders=[holder(4242, vm="acme-vm1", groups=[20], devices=["0000:0a:00.0"])])
    result = run(doc, ["0000:0b:00.0"], vm="globex-vm2")
    assert not result.allow
    assert "group-split-owners" in {f.rule for f in result.opens}
    members = {m["bdf"]: m for c in result.closure for m in c["members"]}
    assert members["0000:0a:00.0"]["holders"] == ["acme-vm1"]


def test_a_host_critical_companion_is_denied_unless_named():
    # Firmware put a GPU in one group with the boot NVMe (no ACS on the root port above both).
    doc = state(devices=[device("0000:04:00.0", driver="nvidia", group=13, cls="030200"),
                         device("0000:05:00.0", driver="nvme", group=13, cls="010802")])
    denied = run(doc, ["0000:04:00.0"])
    assert not denied.allow and any("0000:05:00.0" in r and "host driver nvme" in r for r in denied.reasons)
    assert run(doc, ["0000:04:00.0", "0000:05:00.0"]).allow


def test_the_intent_mapping_the_vm_to_another_tenant_denies():
    doc = state(devices=[device("0000:01:00.0", driver="vfio-pci", group=1, cls="030200")])
    intent = Intent(tenants=(Tenant(name="globex", vm_patterns=("globex-*",)),))
    assert not run(doc, ["0000:01:00.0"], vm="globex-vm3", tenant="acme", intent=intent).allow
    assert run(doc, ["0000:01:00.0"], vm="globex-vm3", tenant="globex", intent=intent).allow


def test_plan_unbinds_vfs_before_their_pf_and_binds_pfs_first():
    # A PF without ACS whose VFs land in its own group (vf-shares-pf-group), all going to one VM.
    pf = device("0000:3b:00.0", driver="ixgbe", group=30, sriov={"total_vfs": 4, "num_vfs": 1, "physfn": None,
                                                                 "vfs": ["0000:3b:10.0"], "drivers_autoprobe": True})
    vf = device("0000:3b:10.0", driver="ixgbevf", group=30, sriov={"total_vfs": None, "num_vfs": None, "physfn": "0000:3b:00.0",
                                                                  "vfs": [], "drivers_autoprobe": None})
    plan = remediation_plan(state(devices=[pf, vf]), ["0000:3b:00.0", "0000:3b:10.0"])
    phases = [(s["phase"], s["device"]) for s in plan]
    assert phases[:2] == [("override", "0000:3b:00.0"), ("override", "0000:3b:10.0")]
    assert phases[2:4] == [("unbind", "0000:3b:10.0"), ("unbind", "0000:3b:00.0")]
    assert phases[4:6] == [("bind", "0000:3b:00.0"), ("bind", "0000:3b:10.0")]
    assert "VFs disappear" in plan[3]["why"]


def test_unknown_devices_bridges_and_groupless_devices_are_invalid_with_their_path(capture):
    doc = capture_state(capture("shared-bridge-group"))
    bridge = next(d["bdf"] for d in doc["devices"] if d.get("is_bridge"))
    some = next(d["bdf"] for d in doc["devices"] if not d.get("is_bridge"))
    for devices, path in (([some, "0000:7f:00.0"], "devices[1]"), (["0000:7f:00.0"], "devices[0]"), ([some, bridge], "devices[1]")):
        with pytest.raises(PreflightInvalid) as exc:
            run(doc, devices)
        assert exc.value.path == path
    no_iommu = state(devices=[device("0000:01:00.0", driver="e1000e", group=None)])
    with pytest.raises(PreflightInvalid, match="no IOMMU group"):
        run(no_iommu, ["0000:01:00.0"])


def test_the_readmes_demo_preflight_is_denied_and_the_whole_group_allowed():
    # The demo's mixed-ownership DGX-2H (showcase host 8): one GPU of a merged group on vfio-pci, the others on nvidia.
    from fleet.demo.synth import host as synth_host
    doc = synth_host(8)
    by_bdf = {d["bdf"]: d for d in doc["devices"]}
    gid, members = next((g["id"], g["devices"]) for g in doc["groups"]
                        if sum(by_bdf[b]["class"].startswith("03") for b in g["devices"] if b in by_bdf) > 1)
    gpus = [b for b in members if by_bdf[b]["class"].startswith("03")]
    on_vfio = [b for b in gpus if by_bdf[b]["driver"] == "vfio-pci"]
    assert len(on_vfio) == 1
    assert (doc["host"]["hostname"], on_vfio) == ("gpu-i01-r01", ["0000:34:00.0"])  # what README.md's example names
    denied = preflight(doc, on_vfio, vm="acme-vm9", tenant=None, intent=EMPTY, context=HostContext(hostname=doc["host"]["hostname"]))
    assert not denied.allow and any("group-mixed-ownership" in r for r in denied.reasons)
    assert {s["device"] for s in denied.plan if s["phase"] == "bind"} == set(gpus) - set(on_vfio)
    whole = preflight(doc, gpus, vm="acme-vm9", tenant=None, intent=EMPTY, context=HostContext(hostname=doc["host"]["hostname"]))
    assert whole.allow, whole.reasons
