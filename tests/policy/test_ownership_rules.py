"""Rules on the ownership model: a group fd the kernel refuses is no ownership; cdevs and iommufd contexts count
as groups do; one address space shared across tenants. Real captures where they show the case, hand-made states
(naming the real case) where they cannot."""
import re

import pytest

from fleet.policy.engine import evaluate
from fleet.policy.intent import Intent, Tenant
from tests.inventory.documents import document_of
from tests.iommufd_captures import NAMES, iommufd_capture, iommufd_contexts, vm_names  # noqa: F401

from .oracle import expected_findings
from .states import device, holder, node, root_port, state
from .truth import parse


def nic(bdf, group, driver="vfio-pci", parent="0000:00:1c.0", **kw):
    return device(bdf, driver=driver, group=group, parent=parent, **kw)


def by_rule(findings, rule):
    return [f for f in findings if f.rule == rule]


def attempt_holder(root) -> dict:
    """The process of `ground-truth/attempt-nonviable-qemu.log`, as if it had stayed: what it opened, by fd."""
    text = (root / "ground-truth" / "attempt-nonviable-qemu.log").read_text()
    pid = int(re.search(r"\[holder pid (\d+)\]", text)[1])
    opened = re.findall(r"opened (/dev/vfio/\S+) fd=(\d+)", text)
    device = re.search(r"device (\S+) driver=vfio-pci", text)[1]
    group = next(int(p.rsplit("/", 1)[1]) for p, _ in opened if p.rsplit("/", 1)[1].isdigit())
    fds = [{"fd": int(fd), "target": path, "kind": "container" if path == "/dev/vfio/vfio" else "group",
            "group": None if path == "/dev/vfio/vfio" else group, "device": None, "device_source": None} for path, fd in opened]
    return {"pid": pid, "name": "qemu-system-x86", "user": None, "uid": 0,
            "cmdline": ["/usr/bin/qemu-system-x86_64", "-name", "guest=held-vm", "-device", f"vfio-pci,host={device}"],
            "nodes": sorted(p for p, _ in opened), "device_fds": 0, "groups": [group], "devices": [device], "kind": "qemu",
            "vm": "held-vm", "workload": "held-vm", "cgroup": None, "vm_pinned_kb": None, "start_time": None,
            "fds": fds, "claims": [{"device": device, "source": "qemu-argv", "backend": "legacy"}], "vm_locked_kb": None}


def test_a_held_non_viable_group_is_mixed_ownership_and_not_shared_p2p(capture):
    # shared-bridge-group: 02:01.0 on vfio-pci, 02:02.0 on e1000 in group 4; the attempt log's QEMU held /dev/vfio/4
    # and the container, got GET_STATUS flags 0 and SET_CONTAINER EPERM. Held or not, the group is mixed.
    root = capture("shared-bridge-group")
    doc = document_of(root, hostname="h")
    baseline = evaluate(doc)
    held = attempt_holder(root)
    doc = {**doc, "schema": 2, "holders": [held]}
    found = evaluate(doc)
    assert [f.subject_id for f in by_rule(baseline, "group-mixed-ownership")] == ["4"]
    (mixed,) = by_rule(found, "group-mixed-ownership")
    assert mixed.subject_id == "4" and "held-vm is holding its fd, refused by the kernel" in mixed.message
    assert mixed.evidence["refused_holders"] == [{"pid": held["pid"], "vm": "held-vm", "workload": "held-vm"}]
    assert not by_rule(found, "group-shared-p2p") and not by_rule(found, "group-split-owners")
    members = {m["bdf"]: m for m in mixed.evidence["members"]}
    e1000 = next(b for b, m in members.items() if m["driver"] == "e1000")
    assert members[e1000]["owners"] == [] and members[e1000]["reach"] == []  # the host's device is never the VM's


def test_a_cdev_held_on_a_non_viable_group_is_mixed_ownership_too():
    # A 6.6+ host: QEMU opens 03:00.0's cdev while its sibling 03:00.1 stays on e1000e; BIND_IOMMUFD fails (EPERM).
    st = state(devices=[root_port("0000:00:1c.0", 14), nic("0000:03:00.0", 14, multifunction=True),
                        nic("0000:03:00.1", 14, driver="e1000e", multifunction=True)],
               nodes=[node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0"), node("/dev/iommu", kind="iommufd", mode="0660")],
               holders=[holder(301, vm="vm1", devices=["0000:03:00.0"], nodes=["/dev/iommu", "/dev/vfio/devices/vfio0"])])
    found = evaluate(st)
    (mixed,) = by_rule(found, "group-mixed-ownership")
    assert "vm1 is holding its fd, refused by the kernel" in mixed.message
    assert not by_rule(found, "group-shared-p2p")


def test_a_viable_group_held_by_one_vm_is_still_shared_p2p():
    # The twin: both functions on vfio-pci (like shared-group-all-vfio), one VM holds the group.
    st = state(devices=[root_port("0000:00:1c.0", 14), nic("0000:03:00.0", 14), nic("0000:03:00.1", 14)],
               holders=[holder(301, vm="vm1", groups=[14])])
    assert [f.subject_id for f in by_rule(evaluate(st), "group-shared-p2p")] == ["14"]
    assert not by_rule(evaluate(st), "group-mixed-ownership")


def test_an_unnamed_process_holding_only_a_cdev_and_iommufd_is_an_unknown_holder():
    # A test tool left running on an iommufd host: no -name, no workload; it reaches 03:00.0 through the cdev.
    st = state(devices=[root_port("0000:00:1c.0", 14), nic("0000:03:00.0", 15)],
               nodes=[node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0"), node("/dev/iommu", kind="iommufd", mode="0660")],
               holders=[holder(777, kind="other", nodes=["/dev/iommu", "/dev/vfio/devices/vfio0"], device_fds=0)])
    (f,) = by_rule(evaluate(st), "unknown-holder")
    assert "/dev/vfio/devices/vfio0" in f.message and "it can reach 0000:03:00.0" in f.message
    assert [s["kind"] for s in f.evidence["address_spaces"]] == ["iommufd"]


def _shared_container(vm_b: str):
    # libvirt bug / a debugging session: the group fd of 03:00.0 passed (SCM_RIGHTS) to a second QEMU.
    return state(devices=[root_port("0000:00:1c.0", 14), nic("0000:03:00.0", 15)],
                 holders=[holder(301, vm="a-vm1", groups=[15]), holder(302, vm=vm_b, groups=[15])])


def test_one_address_space_mapping_devices_of_two_tenants_is_address_space_multitenant():
    intent = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",)), Tenant(name="b", vm_patterns=("b-*",))))
    found = by_rule(evaluate(_shared_container("b-vm1"), intent), "address-space-multitenant")
    assert {f.subject_id.split(":")[0] for f in found} == {"301", "302"}
    assert all(f.subject_kind == "address-space" and f.evidence["owners"] == {"a": ["0000:03:00.0"], "b": ["0000:03:00.0"]}
               for f in found)
    assert not by_rule(evaluate(_shared_container("a-vm2"), intent), "address-space-multitenant")  # one tenant


def test_without_tenants_two_vms_in_one_address_space_are_multitenant():
    assert by_rule(evaluate(_shared_container("b-vm1")), "address-space-multitenant")
    alone = state(devices=[nic("0000:03:00.0", 15)], holders=[holder(301, vm="a-vm1", groups=[15])])
    assert not by_rule(evaluate(alone), "address-space-multitenant")


@pytest.mark.parametrize("name", NAMES)
def test_the_iommufd_captures_give_what_their_ground_truth_implies(iommufd_capture, name):
    root = iommufd_capture(name)
    truth = parse(root)
    got = {(f.rule, f.subject_kind, f.subject_id) for f in evaluate(document_of(root))}
    assert got == expected_findings(truth)


def test_two_tenants_each_on_their_own_iommufd_are_not_multitenant(iommufd_capture):
    # iommufd-two-devices-one-ioas: tenant-n-vm21 binds two devices to one context, tenant-o-vm22 has its own.
    root = iommufd_capture("iommufd-two-devices-one-ioas")
    names = vm_names(root)
    intent = Intent(tenants=tuple(Tenant(name=n.rsplit("-", 1)[0], vm_patterns=(n,)) for n in names.values()))
    found = evaluate(document_of(root), intent)
    assert not by_rule(found, "address-space-multitenant") and not by_rule(found, "unknown-holder")
    assert len(iommufd_contexts(root)) == 2


def test_pasid_users_attributed_through_their_holder_reach_the_tenants_quota():
    # A VM's QEMU that also opened a DSA shared work queue (6.4+ lists the opener): its tenant's quota counts it.
    dsa = nic("0000:6a:01.0", 30, driver="idxd", cls="088000")
    st = state(devices=[nic("0000:03:00.0", 15), dsa], holders=[holder(301, vm="a-vm1", groups=[15])],
               pasid_users=[{"device": "0000:6a:01.0", "pid": 301, "source": "idxd-wq"},
                            {"device": "0000:6a:01.0", "pid": 999, "source": "idxd-wq"}])
    over = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=0),))
    (f,) = by_rule(evaluate(st, over), "pasid-quota")
    assert (f.subject_kind, f.subject_id, f.evidence["on_this_host"]) == ("tenant", "a", 1)
    within = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=1),))
    assert not by_rule(evaluate(st, within), "pasid-quota")
