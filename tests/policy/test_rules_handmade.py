"""Each rule fires on a small hand-made state and stays quiet on its fixed twin.

Used only where no capture shows the case (captures: see test_rules_captures.py); each test
names the real situation it stands for.
"""
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from fleet.policy.engine import evaluate
from fleet.policy.facts import HostContext
from fleet.policy.findings import CATALOGUE
from fleet.policy.intent import Baseline, DeviceExpectation, Intent, Role, Tenant

from .states import FULL_ACS, NO_ACS, device, holder, intel_unit, node, root_port, state

NOW = datetime(2026, 11, 25, 14, 0, tzinfo=timezone.utc)


def fired(st, intent=Intent(), **ctx):
    return {(f.rule, f.subject_id) for f in evaluate(st, intent, context=HostContext(**ctx) if ctx else None)}


def rules(st, intent=Intent(), **ctx):
    return {rule for rule, _ in fired(st, intent, **ctx)}


def nic(bdf, group, driver="vfio-pci", parent="0000:00:1c.0", **kw):
    return device(bdf, driver=driver, group=group, parent=parent, **kw)


# The domain reference travels with the repository (docs/DOMAIN.md, a copy of the team's shared one).
DOMAIN_MD = Path(__file__).resolve().parents[2] / "docs" / "DOMAIN.md"


def test_the_catalogue_has_exactly_the_rule_ids_and_severities_of_domain_md():
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| (\w+) \|", DOMAIN_MD.read_text(), flags=re.M)
    assert rows and CATALOGUE == dict(rows)


# --- iommu-disabled ----------------------------------------------------------------------------

def test_iommu_off_on_the_cmdline_with_an_assigned_device_is_iommu_disabled():
    # A host booted with intel_iommu=off by mistake while a VM still has its NIC.
    st = state(devices=[nic("0000:03:00.0", None, parent=None)], units=[], groups=[], cmdline_flags={"intel_iommu": "off"})
    assert rules(st) == {"iommu-disabled"}


def test_no_iommu_is_fine_for_a_host_that_assigns_nothing_and_expects_nothing():
    # A plain web server in a VM (like this test machine): no IOMMU, nothing assigned, no role.
    st = state(devices=[device("0000:03:00.0", driver="e1000e", group=None)], units=[], groups=[])
    assert rules(st) == set()


def test_no_iommu_on_a_host_whose_role_expects_assignment_is_iommu_disabled():
    # A new hypervisor racked with VT-d disabled in the BIOS, before any VM got a device.
    st = state(hostname="hv-7", devices=[device("0000:03:00.0", driver="e1000e", group=None)], units=[], groups=[])
    intent = Intent(roles=(Role(name="hypervisor", host_patterns=("hv-*",), expects_assignment=True),))
    assert rules(st, intent, hostname="hv-7") == {"iommu-disabled"}
    assert rules(st, intent, hostname="db-1") == set()


# --- noiommu-mode ------------------------------------------------------------------------------

def test_enable_unsafe_noiommu_mode_is_noiommu_mode():
    # A kernel built with CONFIG_VFIO_NOIOMMU where an admin set vfio.enable_unsafe_noiommu_mode=1 for DPDK.
    st = state(units=[], groups=[], parameters={"enable_unsafe_noiommu_mode": "Y"})
    assert "noiommu-mode" in rules(st)


def test_a_noiommu_group_node_is_noiommu_mode():
    # What the no-iommu capture would show on a kernel with CONFIG_VFIO_NOIOMMU: /dev/vfio/noiommu-0.
    st = state(units=[], groups=[], nodes=[node("/dev/vfio/noiommu-0", kind="noiommu_group", group=0)])
    assert "noiommu-mode" in rules(st)


def test_taint_u_counts_only_with_a_noiommu_group_of_a_pci_device():
    # The kernel taints itself (U) when VFIO creates a no-IOMMU group; U alone has other causes.
    dev = device("0000:03:00.0", driver="vfio-pci", group=0)
    groups = [{"id": 0, "type": None, "name": "vfio-noiommu", "devices": ["0000:03:00.0"], "reserved_regions": [], "unit": None}]
    assert "noiommu-mode" in rules(state(devices=[dev], units=[], groups=groups, tainted=64))
    assert "noiommu-mode" not in rules(state(devices=[dev], units=[], groups=groups, tainted=0))
    assert "noiommu-mode" not in rules(state(units=[], groups=[], tainted=64))  # U from something else (e.g. a module)


# --- uio-driver / unsafe-interrupts / acs-override ------------------------------------------------

def test_igb_uio_is_a_uio_driver_and_vfio_pci_is_not():
    # Older DPDK deployments still load the out-of-tree igb_uio module.
    assert ("uio-driver", "0000:03:00.0") in fired(state(devices=[nic("0000:03:00.0", 5, driver="igb_uio")]))
    assert "uio-driver" not in rules(state(devices=[nic("0000:03:00.0", 5)]))


def test_allow_unsafe_interrupts_is_unsafe_interrupts():
    # Old AMD/Intel boards without interrupt remapping, where admins set vfio_iommu_type1.allow_unsafe_interrupts=1.
    assert "unsafe-interrupts" in rules(state(parameters={"type1_allow_unsafe_interrupts": "Y"}))
    assert "unsafe-interrupts" in rules(state(parameters={"iommufd_allow_unsafe_interrupts": "Y"}))
    assert "unsafe-interrupts" not in rules(state(parameters={"type1_allow_unsafe_interrupts": "N"}))


def test_an_intel_unit_without_interrupt_remapping_matters_only_with_assigned_devices():
    # VT-d without IR (ecap bit 3 = 0), as on pre-Sandy-Bridge servers or QEMU without intremap=on.
    units = [intel_unit(interrupt_remapping=False)]
    assert "unsafe-interrupts" in rules(state(devices=[nic("0000:03:00.0", 5)], units=units))
    assert "unsafe-interrupts" not in rules(state(devices=[nic("0000:03:00.0", 5, driver="e1000e")], units=units))


def test_pcie_acs_override_and_pci_acs_options_are_acs_override():
    # The out-of-tree ACS override patch (Arch/Proxmox kernels) used to split groups for GPU passthrough.
    assert "acs-override" in rules(state(cmdline_flags={"pcie_acs_override": "downstream,multifunction"}))
    assert "acs-override" in rules(state(cmdline_flags={"pci_acs": ["disable_acs_redir=0000:00:1c.0"]}))
    assert "acs-override" not in rules(state())


# --- groups ----------------------------------------------------------------------------------------

def _two_nics_under_port_without_acs(driver_a="vfio-pci", driver_b="e1000e", holders=()):
    # A dual-port NIC (two functions of 0000:03:00) behind root port 00:1c.0 that lacks ACS: one group.
    port = root_port("0000:00:1c.0", 14, acs=NO_ACS)
    a = nic("0000:03:00.0", 14, driver=driver_a, multifunction=True)
    b = nic("0000:03:00.1", 14, driver=driver_b, multifunction=True)
    return state(devices=[port, a, b], holders=holders)


def test_mixed_group_explains_the_root_port_without_acs_and_the_multifunction_device():
    # A dual-port NIC behind a consumer-board root port: one port given to DPDK, the other left on its driver.
    (f,) = [f for f in evaluate(_two_nics_under_port_without_acs()) if f.rule == "group-mixed-ownership"]
    assert f.subject_id == "14"
    assert "bind 0000:03:00.1 to vfio-pci as well" in f.remediation
    assert ("why they share group 14: 03:00.0 and 03:00.1 are functions of one multi-function device 03:00 with no ACS"
            in f.remediation)


def test_a_shared_group_of_two_cards_names_the_root_port_without_acs_above_them():
    # Two single-function NICs in two slots behind one consumer-board root port without ACS, both given to one VM.
    port = root_port("0000:00:1c.0", 14, acs=NO_ACS)
    a, b = nic("0000:03:00.0", 14, acs=FULL_ACS), nic("0000:04:00.0", 14, acs=FULL_ACS)
    st = state(devices=[port, a, b], holders=[holder(4001, vm="vm-a", groups=[14])])
    (f,) = [f for f in evaluate(st) if f.rule == "group-shared-p2p"]
    assert "why they share group 14: root port 00:1c.0 has no ACS" in f.remediation
    assert f.evidence["explained_by"] == [f.remediation.split("why they share group 14: ")[1].rstrip(".")]


def test_pcieport_pci_stub_and_unbound_members_do_not_make_a_group_mixed():
    # DOMAIN.md §2: pcieport, pci-stub and no driver do not claim DMA ownership, so the group stays viable.
    st = state(devices=[root_port("0000:00:1c.0", 14), nic("0000:03:00.0", 14), nic("0000:03:00.1", 14, driver="pci-stub"),
                        nic("0000:03:00.2", 14, driver=None)])
    assert "group-mixed-ownership" not in rules(st)


def test_two_vms_in_one_group_are_split_owners():
    # Libvirt with managed='no' hostdevs: two guests each given one function of a shared group.
    st = _two_nics_under_port_without_acs(driver_b="vfio-pci", holders=[
        holder(301, vm="tenant-a-vm1", groups=[14], devices=["0000:03:00.0"]),
        holder(302, vm="tenant-b-vm1", groups=[], devices=["0000:03:00.1"], nodes=["/dev/vfio/devices/vfio1"])])
    st["vfio"]["cdevs"] = [{"name": "vfio1", "device": "0000:03:00.1", "rdev": "511:1"}]
    assert ("group-split-owners", "14") in fired(st)


def test_one_vm_holding_the_whole_group_is_not_split_owners():
    # Like the shared-group-all-vfio capture: one VM owns every endpoint of the group.
    st = _two_nics_under_port_without_acs(driver_b="vfio-pci", holders=[holder(301, vm="tenant-a-vm1", groups=[14])])
    assert "group-split-owners" not in rules(st) and "group-shared-p2p" in rules(st)


def test_two_vms_of_tenants_with_different_labels_are_split_owners_by_label_and_tenant():
    # Two customers' VMs with different security labels on the functions of one dual-port NIC (iommufd cdevs).
    intent = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), labels=("pci-dss",)),
                             Tenant(name="b", vm_patterns=("b-*",), labels=("internal",))))
    st = _two_nics_under_port_without_acs(driver_b="vfio-pci", holders=[
        holder(301, vm="a-vm1", devices=["0000:03:00.0"], groups=[], nodes=["/dev/vfio/devices/vfio0"]),
        holder(302, vm="b-vm1", devices=["0000:03:00.1"], groups=[], nodes=["/dev/vfio/devices/vfio1"])])
    st["vfio"]["cdevs"] = [{"name": f"vfio{i}", "device": f"0000:03:00.{i}", "rdev": f"511:{i}"} for i in (0, 1)]
    (f,) = [f for f in evaluate(st, intent) if f.rule == "group-split-owners"]
    assert f.evidence["tenants"] == ["a", "b"] and f.evidence["labels"] == [["internal"], ["pci-dss"]]


def test_group_changed_on_a_bdf_baseline_is_one_merge_finding_naming_old_and_new_members():
    # After a BIOS update the two NIC functions landed in one group; the accepted (pre-identity, BDF-only) baseline had them apart.
    st = _two_nics_under_port_without_acs(driver_b="vfio-pci")
    baseline = Baseline(hostname="hand-made", groups=(("0000:00:1c.0",), ("0000:03:00.0",), ("0000:03:00.1",)))
    (found,) = [f for f in evaluate(st, Intent(baselines=(baseline,))) if f.rule == "group-changed"]
    assert (found.subject_id, found.evidence["change"], found.evidence["compared_on"]) == ("14", "merged", "bdf")
    assert [[m["bdf"] for m in g] for g in found.evidence["baseline_groups"]] == [["0000:00:1c.0"], ["0000:03:00.0"], ["0000:03:00.1"]]
    assert [g["members"] for g in found.evidence["current_groups"]] == [
        [{"bdf": b, "identity": b} for b in ("0000:00:1c.0", "0000:03:00.0", "0000:03:00.1")]]
    same = Baseline(hostname="hand-made", groups=(("0000:00:1c.0", "0000:03:00.0", "0000:03:00.1"),))
    assert "group-changed" not in rules(st, Intent(baselines=(same,)))
    assert "group-changed" not in rules(st)  # no accepted baseline: nothing to compare with


# --- device nodes and holders ------------------------------------------------------------------------

def test_a_group_node_readable_by_its_unix_group_is_device_node_permissions():
    # A udev rule that chmods /dev/vfio/* 0660 for a 'kvm' group instead of per-VM ownership.
    st = state(devices=[nic("0000:03:00.0", 5)], nodes=[node("/dev/vfio/5", group=5, mode="0660", uid=64055)],
               holders=[holder(301, vm="vm1", groups=[5])])
    assert ("device-node-permissions", "/dev/vfio/5") in fired(st)


def test_a_node_owned_by_another_user_than_its_holder_is_device_node_permissions():
    # A node left chowned to a previous user after the VM moved to another account.
    st = state(devices=[nic("0000:03:00.0", 5)], nodes=[node("/dev/vfio/5", group=5, uid=1000)],
               holders=[holder(301, vm="vm1", groups=[5], uid=64055)])
    assert ("device-node-permissions", "/dev/vfio/5") in fired(st)


def test_group_and_device_nodes_of_one_group_owned_by_two_non_root_users_are_device_node_permissions():
    # 6.6+ hosts: the group node chowned to one VM's account, the per-device cdev of the same group to another.
    st = state(devices=[nic("0000:03:00.0", 5)], nodes=[node("/dev/vfio/5", group=5, uid=64055),
                                                       node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0", uid=1000)])
    found = {f.subject_id: f for f in evaluate(st) if f.rule == "device-node-permissions"}
    assert set(found) == {"/dev/vfio/5", "/dev/vfio/devices/vfio0"}
    assert "whoever opens it drives 0000:03:00.0" in found["/dev/vfio/devices/vfio0"].message
    assert "every device of group 5" in found["/dev/vfio/5"].message


def test_a_vm_on_its_per_device_cdev_beside_the_root_0600_group_node_is_not_device_node_permissions():
    # 6.6+ hosts with iommufd: QEMU (uid 64055) opens only /dev/vfio/devices/vfio0, chowned to it by libvirt;
    # the group node /dev/vfio/5 keeps the kernel's root 0600, which nobody but root can open.
    nodes = [node("/dev/vfio/5", group=5, uid=0), node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0", uid=64055),
             node("/dev/iommu", kind="iommufd", mode="0660")]
    holders = [holder(301, vm="vm1", devices=["0000:03:00.0"], nodes=["/dev/iommu", "/dev/vfio/devices/vfio0"])]
    assert "device-node-permissions" not in rules(state(devices=[nic("0000:03:00.0", 5)], nodes=nodes, holders=holders))


def test_a_root_0600_node_handed_to_a_non_root_vm_as_an_fd_is_not_device_node_permissions():
    # libvirt fd passing: libvirtd (root) opens the root-owned cdev and passes the fd to QEMU running as uid 64055.
    nodes = [node("/dev/vfio/5", group=5, uid=0), node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0", uid=0)]
    holders = [holder(301, vm="vm1", devices=["0000:03:00.0"], nodes=["/dev/vfio/devices/vfio0"])]
    assert "device-node-permissions" not in rules(state(devices=[nic("0000:03:00.0", 5)], nodes=nodes, holders=holders))


def test_a_root_0600_group_node_with_a_world_readable_cdev_of_the_same_group_flags_only_the_cdev():
    # A udev rule giving /dev/vfio/devices/* 0666 on a 6.6+ host: the cdev is the exposure, the group node is not.
    nodes = [node("/dev/vfio/5", group=5, uid=0), node("/dev/vfio/devices/vfio0", kind="device", device="0000:03:00.0", mode="0666")]
    found = {s for r, s in fired(state(devices=[nic("0000:03:00.0", 5)], nodes=nodes)) if r == "device-node-permissions"}
    assert found == {"/dev/vfio/devices/vfio0"}


def test_dev_iommu_looser_than_0660_is_device_node_permissions_but_0660_is_fine():
    # iommufd's /dev/iommu made world-writable by a careless udev rule.
    assert ("device-node-permissions", "/dev/iommu") in fired(state(nodes=[node("/dev/iommu", kind="iommufd", mode="0666")]))
    assert "device-node-permissions" not in rules(state(nodes=[node("/dev/iommu", kind="iommufd", mode="0660")]))


def test_a_0600_node_owned_by_its_holder_and_the_world_readable_container_are_fine():
    # The isolated-nics capture's layout: /dev/vfio/6 0600 owned by the QEMU user, /dev/vfio/vfio 0666.
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="vm1", groups=[5])],
               nodes=[node("/dev/vfio/5", group=5, uid=64055), node("/dev/vfio/vfio", kind="container", mode="0666")])
    assert "device-node-permissions" not in rules(st)


def test_a_vfio_holder_with_no_vm_or_workload_is_unknown_holder():
    # A stray process (e.g. a debugging tool) keeping a group fd open after the VM died.
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(999, vm=None, groups=[5], kind="other")])
    assert ("unknown-holder", "999") in fired(st)
    assert "unknown-holder" not in rules(state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="vm1", groups=[5])]))


def test_with_declared_tenants_a_vm_matching_none_of_them_is_unknown_holder():
    # A VM started by hand outside the orchestrator, with a name no tenant declares.
    intent = Intent(tenants=(Tenant(name="a", vm_patterns=("tenant-a-*",)),))
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="intruder-vm", groups=[5])])
    assert "unknown-holder" in rules(st, intent)
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="tenant-a-vm1", groups=[5])])
    assert "unknown-holder" not in rules(st, intent)


def test_a_cgroup_regex_pattern_attributes_a_holder_to_its_tenant():
    # Libvirt machine scopes (DOMAIN.md §5) when QEMU runs without -name.
    intent = Intent(tenants=(Tenant(name="c", cgroup_patterns=(r"re:machine\.slice/machine-qemu.*tenant-c-.*\.scope",)),))
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(
        301, vm=None, workload=None, groups=[5], cgroup="machine.slice/machine-qemu-3-tenant-c-vm3.scope")])
    assert "unknown-holder" not in rules(st, intent)


def test_a_uio_only_holder_is_not_a_vfio_holder():
    # The no-iommu capture's DPDK process holds only /dev/uio0 (uio-driver covers it).
    st = state(devices=[nic("0000:03:00.0", None, driver="uio_pci_generic")], units=[], groups=[],
               holders=[holder(249, vm=None, kind="dpdk", nodes=["/dev/uio0"], devices=["0000:03:00.0"], device_fds=0)])
    assert "unknown-holder" not in rules(st)


# --- SR-IOV ------------------------------------------------------------------------------------------

def _pf_and_vf(vf_group, pf_driver="ixgbe", holders=()):
    pf = device("0000:05:00.0", driver=pf_driver, group=20, parent=None,
                sriov={"total_vfs": 8, "num_vfs": 1, "physfn": None, "vfs": ["0000:05:10.0"], "drivers_autoprobe": True})
    vf = device("0000:05:10.0", driver="vfio-pci", group=vf_group, parent=None,
                sriov={"total_vfs": None, "num_vfs": None, "physfn": "0000:05:00.0", "vfs": [], "drivers_autoprobe": None})
    return state(devices=[pf, vf], holders=holders)


def test_a_vf_in_its_pfs_group_is_vf_shares_pf_group():
    # A PF behind a port without ACS on a platform with no VF quirk: PF and VFs land in one group.
    assert ("vf-shares-pf-group", "0000:05:10.0") in fired(_pf_and_vf(vf_group=20))
    assert "vf-shares-pf-group" not in rules(_pf_and_vf(vf_group=21))


def test_a_pf_given_to_one_vm_while_its_vf_goes_to_another_is_pf_userspace_vfs_elsewhere():
    # An SR-IOV NIC whose PF was passed to a VNF VM while its VFs serve other tenants.
    st = _pf_and_vf(21, pf_driver="vfio-pci", holders=[holder(301, vm="vm-pf", groups=[20]), holder(302, vm="vm-vf", groups=[21])])
    assert ("pf-userspace-vfs-elsewhere", "0000:05:00.0") in fired(st)
    st = _pf_and_vf(21, pf_driver="vfio-pci", holders=[holder(301, vm="vm-pf", groups=[20, 21])])
    assert "pf-userspace-vfs-elsewhere" not in rules(st)


# --- mdev --------------------------------------------------------------------------------------------

def _gpu_with_mdevs(group_members, owners):
    # An Intel GVT-g / NVIDIA vGPU parent whose mdevs are handed to VMs.
    devs = [device(b, driver="i915", group=2, parent=None, cls="030000") for b in group_members]
    mdevs = [{"uuid": f"0000000{i}-0000-0000-0000-000000000000", "parent": group_members[0], "type": "i915-GVTg_V5_4",
              "type_name": None, "iommu_group": 30 + i} for i in range(len(owners))]
    holders = [holder(400 + i, vm=vm, groups=[30 + i]) for i, vm in enumerate(owners)]
    return state(devices=devs, mdevs=mdevs, holders=holders)


def test_an_mdev_parent_sharing_its_group_is_mdev_parent_not_isolated():
    # An iGPU sharing its group with another function (no ACS on the multi-function device).
    assert ("mdev-parent-not-isolated", "0000:00:02.0") in fired(_gpu_with_mdevs(["0000:00:02.0", "0000:00:02.1"], ["vm1"]))


def test_mdevs_of_one_parent_going_to_different_tenants_is_mdev_parent_not_isolated():
    # vGPU slices of one card handed to two different VMs.
    assert "mdev-parent-not-isolated" in rules(_gpu_with_mdevs(["0000:00:02.0"], ["vm1", "vm2"]))
    assert "mdev-parent-not-isolated" not in rules(_gpu_with_mdevs(["0000:00:02.0"], ["vm1", "vm1"]))


# --- reserved regions / ATS ----------------------------------------------------------------------------

def test_a_direct_reserved_region_in_an_assigned_group_is_reserved_region_direct():
    # An RMRR for a USB controller or an iGPU that firmware keeps using (classic on HP ProLiant).
    direct = {5: [{"start": "0x000000003e2e0000", "end": "0x000000003e2fffff", "type": "direct"}]}
    relaxable = {5: [{"start": "0x000000003e2e0000", "end": "0x000000003e2fffff", "type": "direct-relaxable"}]}
    assert ("reserved-region-direct", "5") in fired(state(devices=[nic("0000:03:00.0", 5)], reserved=direct))
    assert "reserved-region-direct" not in rules(state(devices=[nic("0000:03:00.0", 5)], reserved=relaxable))
    assert "reserved-region-direct" not in rules(state(devices=[nic("0000:03:00.0", 5, driver="e1000e")], reserved=direct))


def test_ats_on_an_assigned_device_under_a_root_port_without_tb_is_ats_without_tb():
    # Like the captures' QEMU root ports (ACSCtl TransBlk-) with an ATS-capable device passed through.
    ats = {"present": True, "enabled": True}
    no_tb = {"present": True, "cap": FULL_ACS["cap"], "ctl": {**FULL_ACS["ctl"], "tb": False}}
    st = state(devices=[root_port("0000:00:1c.0", 4, acs=no_tb), nic("0000:03:00.0", 5, ats=ats)])
    assert ("ats-without-tb", "0000:03:00.0") in fired(st)
    st = state(devices=[root_port("0000:00:1c.0", 4, acs=FULL_ACS), nic("0000:03:00.0", 5, ats=ats)])
    assert "ats-without-tb" not in rules(st)
    st = state(devices=[root_port("0000:00:1c.0", 4, acs=None), nic("0000:03:00.0", 5, ats=ats)])
    assert "ats-without-tb" not in rules(st)  # ACS unknown (non-root agent) is not evidence


# --- PASID ---------------------------------------------------------------------------------------------

def test_pasid_enabled_under_an_intel_unit_without_pasid_is_pasid_unsupported_by_iommu():
    # A DSA/IAA or a SmartNIC with PASID enabled on a platform booted in legacy (non-scalable) mode.
    pasid = {"present": True, "enabled": True, "width": 20, "exec": False, "priv": False}
    assert "pasid-unsupported-by-iommu" in rules(state(devices=[nic("0000:6a:01.0", 5, pasid=pasid)]))
    sva = [intel_unit(pasid=True, page_requests=True, scalable_mode=True, pasid_width=20)]
    assert "pasid-unsupported-by-iommu" not in rules(state(devices=[nic("0000:6a:01.0", 5, pasid=pasid)], units=sva))
    narrow = [intel_unit(pasid=True, page_requests=True, scalable_mode=True, pasid_width=14)]
    assert "pasid-unsupported-by-iommu" in rules(state(devices=[nic("0000:6a:01.0", 5, pasid=pasid)], units=narrow))


def test_pasid_users_over_a_tenant_or_host_quota_are_pasid_quota():
    # idxd shared work queues: each opener's address space gets a PASID; there is no kernel limit.
    users = [{"device": "0000:6a:01.0", "pid": 500 + i, "source": "idxd-wq"} for i in range(3)]
    holders = [holder(500 + i, vm="a-vm", groups=[], devices=[], nodes=["/dev/iommu"], kind="other") for i in range(3)]
    st = state(devices=[nic("0000:6a:01.0", 5, driver="idxd")], holders=holders, pasid_users=users)
    tight = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=2),))
    assert ("pasid-quota", "a") in fired(st, tight)
    assert "pasid-quota" not in rules(st, Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=3),)))
    assert ("pasid-quota", "hand-made") in fired(st, Intent(host_pasid_quota=2))


def _idxd_host(pids, *, hostname="hand-made"):
    # A DSA shared work queue (idxd) opened by tenant a's VMs: each opener's address space gets a PASID.
    users = [{"device": "0000:6a:01.0", "pid": pid, "source": "idxd-wq"} for pid in pids]
    holders = [holder(pid, vm=f"a-vm{pid}", groups=[], devices=[], nodes=["/dev/iommu"], kind="other") for pid in pids]
    return state(hostname=hostname, devices=[nic("0000:6a:01.0", 5, driver="idxd")], holders=holders, pasid_users=users)


def test_a_tenants_pasid_quota_is_fleet_wide_so_pasids_on_other_hosts_count_too():
    # Tenant a runs VMs on several DSA hosts; its quota bounds all of them together, not each host.
    quota = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=4),))
    st = _idxd_host([501, 502, 503])
    assert "pasid-quota" not in rules(st, quota)  # 3 here, nothing elsewhere
    (f,) = [f for f in evaluate(st, quota, context=HostContext(tenant_pasids_elsewhere={"a": 2})) if f.rule == "pasid-quota"]
    assert (f.subject_kind, f.subject_id) == ("tenant", "a")
    assert (f.evidence["fleet_total"], f.evidence["on_this_host"], f.evidence["on_other_hosts"]) == (5, 3, 2)
    assert "5 PASIDs across the fleet (3 on this host, 2 on other hosts)" in f.message and "stop 1 of tenant a's" in f.remediation
    assert "pasid-quota" not in rules(st, quota, tenant_pasids_elsewhere={"a": 1})  # 4 in all: at the quota, not over
    assert "pasid-quota" not in rules(st, quota, tenant_pasids_elsewhere={"b": 9})  # another tenant's PASIDs


def test_a_host_where_the_over_quota_tenant_holds_no_pasid_does_not_report_it():
    # The over-quota tenant's PASIDs are all on other hosts: nothing to fix on this one.
    quota = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",), pasid_quota=1),))
    assert "pasid-quota" not in rules(_idxd_host([]), quota, tenant_pasids_elsewhere={"a": 7})


# --- intent ----------------------------------------------------------------------------------------------

def test_a_nic_on_its_host_driver_where_intent_expects_vfio_pci_is_driver_drift():
    # The classic 3 a.m. case: after a reboot the NIC came back on e1000e instead of vfio-pci.
    intent = Intent(roles=(Role(name="hypervisor", host_patterns=("hv-*",)),),
                    devices=(DeviceExpectation(name="nics", role="hypervisor", vendor_device="8086:10d3", driver="vfio-pci"),))
    st = state(hostname="hv-1", devices=[nic("0000:03:00.0", 5, driver="e1000e")])
    (f,) = [f for f in evaluate(st, intent, context=HostContext(hostname="hv-1")) if f.rule == "driver-drift"]
    assert f.subject_id == "0000:03:00.0" and "vfio-pci" in f.remediation
    st = state(hostname="hv-1", devices=[nic("0000:03:00.0", 5)])
    assert "driver-drift" not in rules(st, intent, hostname="hv-1")
    assert "driver-drift" not in rules(state(devices=[nic("0000:03:00.0", 5, driver="e1000e")]), intent, hostname="db-1")


def test_a_device_held_by_another_tenant_than_declared_is_driver_drift():
    # A GPU reserved for tenant a that the scheduler gave to tenant b's VM.
    intent = Intent(tenants=(Tenant(name="a", vm_patterns=("a-*",)), Tenant(name="b", vm_patterns=("b-*",))),
                    devices=(DeviceExpectation(name="gpu0", bdf="0000:03:00.0", owner="a"),))
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="b-vm1", groups=[5])])
    assert ("driver-drift", "0000:03:00.0") in fired(st, intent)
    st = state(devices=[nic("0000:03:00.0", 5)], holders=[holder(301, vm="a-vm1", groups=[5])])
    assert "driver-drift" not in rules(st, intent)


def test_an_assigned_driver_outside_the_allowed_userspace_drivers_is_driver_drift():
    # A site that allows only vfio-pci, where someone bound a NIC to uio_pci_generic.
    intent = Intent(allowed_userspace_drivers=("vfio-pci",))
    assert "driver-drift" in rules(state(devices=[nic("0000:03:00.0", 5, driver="uio_pci_generic")]), intent)
    assert "driver-drift" not in rules(state(devices=[nic("0000:03:00.0", 5)]), intent)


# --- host facts ------------------------------------------------------------------------------------------

def test_caching_mode_on_an_intel_unit_is_nested_host():
    # QEMU's intel-iommu with caching-mode=on (required for vfio-pci inside the guest).
    assert rules(state(units=[intel_unit(caching_mode=True)])) == {"nested-host"}
    assert "nested-host" not in rules(state(units=[intel_unit(caching_mode=False)]))


def test_a_virtio_iommu_is_nested_host():
    # QEMU/cloud-hypervisor guests with -device virtio-iommu-pci.
    virtio = {"name": "virtio-iommu", "vendor": "virtio", "devices": [], "registers": {}, "features": {}}
    assert rules(state(units=[virtio])) == {"nested-host"}


def test_a_pre_5_19_kernel_with_assigned_devices_is_old_kernel_viability():
    # RHEL 8 (4.18) hypervisors: binding a host driver into a live VFIO group hits BUG_ON.
    assert "old-kernel-viability" in rules(state(kernel="4.18.0-513.el8.x86_64", devices=[nic("0000:03:00.0", 5)]))
    assert "old-kernel-viability" not in rules(state(kernel="4.18.0-513.el8.x86_64", devices=[nic("0000:03:00.0", 5, driver="e1000e")]))
    assert "old-kernel-viability" not in rules(state(kernel="5.19.0", devices=[nic("0000:03:00.0", 5)]))


def test_a_host_silent_for_longer_than_the_threshold_is_stale_host():
    # An agent that stopped reporting (crashed, token revoked, network cut).
    st = state()
    assert rules(st, now=NOW, last_seen=NOW - timedelta(seconds=181), default_stale_after_seconds=180) == {"stale-host"}
    assert rules(st, now=NOW, last_seen=NOW - timedelta(seconds=60), default_stale_after_seconds=180) == set()
    assert rules(st, Intent(stale_after_seconds=600), now=NOW, last_seen=NOW - timedelta(seconds=300)) == set()
