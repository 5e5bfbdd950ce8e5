"""Group derivation follows the kernel: checked against the real captures' groups, and on small
hand-made trees for what no capture shows (each says which real case it stands for)."""
from collections import defaultdict

import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.demo.groups import derive_groups
from tests.agent.groundtruth import find_groups

IOMMU_CAPTURES = ["iommu-passthrough", "isolated-nics", "shared-bridge-group", "shared-group-all-vfio", "sriov-nvme"]


def partition(pairs) -> set[frozenset]:
    groups = defaultdict(set)
    for group, bdf in pairs:
        groups[group].add(bdf)
    return {frozenset(members) for members in groups.values()}


@pytest.mark.parametrize("name", IOMMU_CAPTURES)
def test_derived_groups_equal_the_kernels_groups_of_a_real_capture(capture, name):
    root = capture(name)
    devices = build(Root.of(root))["devices"]
    derived = derive_groups(devices)
    assert partition((g, b) for b, g in derived.items()) == partition(find_groups(root))


FLAGS_ON = {f: f in ("sv", "rr", "cr", "uf") for f in ("sv", "tb", "rr", "cr", "uf", "ec", "dt")}
FLAGS_OFF = {f: False for f in FLAGS_ON}


def dev(bdf, parent=None, port="endpoint", *, acs=None, multifunction=False, physfn=None):
    acs_value = {"present": False} if acs is None else {"present": True, "cap": FLAGS_ON, "ctl": FLAGS_ON if acs else FLAGS_OFF}
    pcie = {"present": False, "port_type": None} if port == "conventional" else {"present": True, "port_type": port}
    return {"bdf": bdf, "parent": parent, "multifunction": multifunction,
            "sriov": {"physfn": physfn} if physfn else None,
            "capabilities": {"pcie": pcie, "acs": acs_value}}


def groups_of(devices, **kw) -> set[frozenset]:
    return partition((g, b) for b, g in derive_groups(devices, **kw).items())


def test_conventional_pci_behind_a_pcie_to_pci_bridge_shares_the_bridges_group():
    # Stands for the shared-bridge-group capture, as a tree of its own: root port with ACS,
    # a PCIe-to-PCI bridge, two conventional NICs on the bus behind it.
    tree = [
        dev("0000:00:1c.0", port="root_port", acs=True),
        dev("0000:01:00.0", "0000:00:1c.0", port="pcie_to_pci_bridge"),
        dev("0000:02:01.0", "0000:01:00.0", port="conventional"),
        dev("0000:02:02.0", "0000:01:00.0", port="conventional"),
    ]
    assert groups_of(tree) == {frozenset({"0000:00:1c.0"}),
                               frozenset({"0000:01:00.0", "0000:02:01.0", "0000:02:02.0"})}


SWITCH = [
    dev("0000:00:01.0", port="root_port", acs=False),
    dev("0000:01:00.0", "0000:00:01.0", port="upstream_port"),
    dev("0000:02:00.0", "0000:01:00.0", port="downstream_port", acs=True),
    dev("0000:02:01.0", "0000:01:00.0", port="downstream_port", acs=True),
    dev("0000:03:00.0", "0000:02:00.0"),
    dev("0000:04:00.0", "0000:02:01.0"),
]


def test_a_root_port_without_acs_takes_the_whole_switch_below_it_into_its_group():
    # Stands for a GPU server whose firmware leaves ACS off on a root port (the demo's split-group host).
    assert groups_of(SWITCH) == {frozenset(d["bdf"] for d in SWITCH)}


def test_with_acs_on_every_port_each_device_behind_the_switch_gets_its_own_group():
    # Stands for the DGX-2's PLX switch trees: root and downstream ports with ACS.
    tree = [dict(d) for d in SWITCH]
    tree[0] = dev("0000:00:01.0", port="root_port", acs=True)
    assert groups_of(tree) == {frozenset({d["bdf"]}) for d in tree}


def test_pcie_acs_override_splits_groups_the_hardware_would_merge():
    assert groups_of(SWITCH, acs_override="downstream,multifunction") == {frozenset({d["bdf"]}) for d in SWITCH}


def test_multifunction_endpoint_functions_without_acs_share_a_group_and_with_acs_do_not():
    # Stands for a dual-port NIC on its own root port (the ICH9 functions of every capture share one this way).
    port = dev("0000:00:02.0", port="root_port", acs=True)
    bare = [port, dev("0000:01:00.0", "0000:00:02.0", multifunction=True), dev("0000:01:00.1", "0000:00:02.0", multifunction=True)]
    assert frozenset({"0000:01:00.0", "0000:01:00.1"}) in groups_of(bare)
    isolated = [port, dev("0000:01:00.0", "0000:00:02.0", multifunction=True, acs=True),
                dev("0000:01:00.1", "0000:00:02.0", multifunction=True, acs=True)]
    assert groups_of(isolated) == {frozenset({d["bdf"]}) for d in isolated}


def test_vfs_get_their_own_groups_only_when_the_pfs_port_has_acs():
    # Stands for the sriov-nvme capture (VFs in their own groups) and its no-ACS twin.
    def tree(acs):
        return [dev("0000:00:03.0", port="root_port", acs=acs), dev("0000:02:00.0", "0000:00:03.0"),
                dev("0000:02:00.1", "0000:00:03.0", physfn="0000:02:00.0"),
                dev("0000:02:00.2", "0000:00:03.0", physfn="0000:02:00.0")]
    assert groups_of(tree(True)) == {frozenset({d["bdf"]}) for d in tree(True)}
    assert groups_of(tree(False)) == {frozenset(d["bdf"] for d in tree(False))}


def test_group_numbers_follow_the_bdf_order_of_each_groups_first_member():
    numbers = derive_groups(SWITCH, acs_override="downstream")
    assert [numbers[b] for b in sorted(numbers)] == list(range(len(numbers)))
