"""SR-IOV from sysfs: the sriov-nvme PF lists its VFs, each VF names its PF, counts agree with lspci."""
from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth as gt


def vf_bdfs_from_lspci(pf_bdf, offset, stride, count):
    """Routing IDs of the VFs: PF routing id + offset + i*stride (PCIe SR-IOV spec 9.3.3.10)."""
    dom, bus, devfn = pf_bdf[:4], int(pf_bdf[5:7], 16), int(pf_bdf[8:10], 16) << 3 | int(pf_bdf[11])
    out = []
    for i in range(count):
        rid = (bus << 8 | devfn) + offset + i * stride
        out.append(f"{dom}:{rid >> 8:02x}:{(rid & 0xff) >> 3:02x}.{rid & 7}")
    return out


def test_the_pf_lists_the_vfs_lspci_implies_and_each_vf_names_its_pf(capture):
    root = capture("sriov-nvme")
    devices = {d["bdf"]: d for d in build(Root.of(root))["devices"]}
    [(pf, cap)] = [(b, d.sriov) for b, d in gt.lspci_vvv(root).items() if d.sriov]
    vfs = vf_bdfs_from_lspci(pf, cap["vf_offset"], cap["vf_stride"], cap["num_vfs"])
    assert devices[pf]["sriov"]["vfs"] == vfs
    assert devices[pf]["sriov"]["physfn"] is None
    assert (devices[pf]["sriov"]["total_vfs"], devices[pf]["sriov"]["num_vfs"]) == (cap["total_vfs"], cap["num_vfs"])
    for vf in vfs:
        assert devices[vf]["sriov"]["physfn"] == pf
        assert devices[vf]["sriov"]["vfs"] == []
        assert devices[vf]["device_id"] == cap["vf_device_id"]


def test_functions_without_sriov_have_no_sriov_section(capture):
    root = capture("sriov-nvme")
    sriov_functions = {d["bdf"] for d in build(Root.of(root))["devices"] if d["sriov"] is not None}
    [(pf, cap)] = [(b, d.sriov) for b, d in gt.lspci_vvv(root).items() if d.sriov]
    assert sriov_functions == {pf, *vf_bdfs_from_lspci(pf, cap["vf_offset"], cap["vf_stride"], cap["num_vfs"])}


def test_vfs_drivers_follow_lspci(capture):
    root = capture("sriov-nvme")
    devices = {d["bdf"]: d for d in build(Root.of(root))["devices"]}
    drivers = gt.lspci_drivers(root)
    for vf in devices["0000:01:00.0"]["sriov"]["vfs"]:
        assert devices[vf]["driver"] == drivers[vf]["driver"] == "vfio-pci"
