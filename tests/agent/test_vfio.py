"""VFIO/iommufd/UIO device nodes and module parameters, against the captures' dev-nodes.tsv and lspci,
plus hand-made trees for what Debian's 6.1 kernel cannot show (iommufd, per-device cdevs, no-IOMMU)."""
import os
import re
import stat

import pytest

from agent.collectors import vfio
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent import groundtruth, groundtruth_iommufd
from tests.agent.handmade import link, write
from tests.agent.captures import CAPTURE_NAMES

# Inverse of `ls`'s mode column, built from the standard library's own formatter.
LS_MODE = {stat.filemode(stat.S_IFCHR | m): m for m in range(0o10000)}


def tsv_nodes(root):
    """dev-nodes.tsv parsed here, independently of the agent: path -> (mode, uid, gid, rdev)."""
    out = {}
    for line in (root / "dev-nodes.tsv").read_text().splitlines():
        if line.strip():
            mode, uid, gid, rdev, path = line.split()
            out[path] = ("%04o" % LS_MODE[mode], int(uid), int(gid), rdev)
    return out


def collect(root):
    rd = Reader(Root.of(root))
    return vfio.collect(rd, [], []), rd.warnings.as_list()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_nodes_equal_the_captured_node_list_with_modes_and_owners(capture, name):
    root = capture(name)
    facts, warnings = collect(root)
    got = {n["path"]: (n["mode"], n["uid"], n["gid"], n["rdev"]) for n in facts["nodes"]}
    assert got == tsv_nodes(root)
    assert warnings == []


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_no_capture_is_in_noiommu_mode_and_iommufd_and_cdevs_are_what_the_boot_listed(capture, name):
    # Debian's 6.1 and the 6.12 iommufd kernel both lack CONFIG_VFIO_NOIOMMU; only the 6.12 kernel has
    # /dev/iommu and per-device cdevs (ground truth: dev-nodes.tsv and vfio-cdevs.txt of the same boot).
    root = capture(name)
    facts, _ = collect(root)
    listed = set(tsv_nodes(root))
    assert facts["noiommu"] is False
    assert not any(n["kind"] == "noiommu_group" for n in facts["nodes"])
    assert facts["iommufd"] is ("/dev/iommu" in listed)
    cdevs = groundtruth_iommufd.vfio_cdevs(root)
    assert {n["path"]: n["device"] for n in facts["nodes"] if n["kind"] == "device"} == \
        {f"/dev/vfio/devices/{c}": bdf for c, bdf in cdevs.items()}
    assert {c["name"]: c["device"] for c in facts["cdevs"] if c["rdev"]} == cdevs
    assert facts["cdev_support"] is (True if cdevs else (False if facts["cdevs"] else None))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_modules_are_those_proc_modules_lists(capture, name):
    root = capture(name)
    facts, _ = collect(root)
    loaded = {line.split()[0] for line in (root / "proc" / "modules").read_text().splitlines() if line.strip()}
    assert facts["modules"] == {m: m in loaded for m in ("vfio", "vfio_iommu_type1", "vfio_pci", "iommufd")}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_group_nodes_carry_the_group_number_of_their_path(capture, name):
    facts, _ = collect(capture(name))
    for node in facts["nodes"]:
        m = re.fullmatch(r"/dev/vfio/(\d+)", node["path"])
        assert (node["kind"] == "group") == bool(m)
        assert node["group"] == (int(m.group(1)) if m else None)


def test_uio_node_maps_to_the_device_lspci_shows_on_uio_pci_generic(capture):
    root = capture("no-iommu")
    facts, _ = collect(root)
    uio = [n for n in facts["nodes"] if n["kind"] == "uio"]
    on_uio = [bdf for bdf, facts in groundtruth.lspci_drivers(root).items() if facts["driver"] == "uio_pci_generic"]
    assert [n["device"] for n in uio] == on_uio


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_module_parameters_are_the_files_values_and_absent_modules_are_null(capture, name):
    root = capture(name)
    facts, warnings = collect(root)
    for key, kpath in vfio.PARAMETERS.items():
        f = root / kpath.lstrip("/")
        expected = f.read_text().strip() if f.exists() else None
        assert facts["parameters"][key] == expected
    assert not any("/sys/module" in w for w in warnings)


def test_vfio_dev_class_devices_of_6_1_have_no_cdev_number(capture):
    # 6.1 registers /sys/class/vfio-dev/vfioX without a char device (the cdev came in 6.6).
    root = capture("sriov-nvme")
    facts, _ = collect(root)
    expected = {p.name: os.readlink(p / "device").rsplit("/", 1)[-1] for p in (root / "sys/class/vfio-dev").iterdir()}
    assert {c["name"]: c["device"] for c in facts["cdevs"]} == expected
    assert all(c["rdev"] is None for c in facts["cdevs"])


def test_ls_mode_column_converts_to_octal_for_every_mode():
    for text, mode in LS_MODE.items():
        assert vfio.ls_mode_to_octal(text) == "%04o" % mode
    assert vfio.ls_mode_to_octal("crw-rw-rwz") is None
    assert vfio.ls_mode_to_octal("crw") is None



def test_iommufd_host_with_a_per_device_cdev(tmp_path):
    # Stands for a 6.6+ host where QEMU uses iommufd: /dev/iommu plus /dev/vfio/devices/vfio0
    # for 0000:01:00.0, whose class device has `dev` = 511:0.
    dev = "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"
    (tmp_path / dev / "vfio-dev/vfio0").mkdir(parents=True)
    write(tmp_path, f"{dev}/vfio-dev/vfio0/dev", "511:0\n")
    link(tmp_path, f"{dev}/vfio-dev/vfio0/device", "../../../0000:01:00.0")
    link(tmp_path, "sys/class/vfio-dev/vfio0", f"../../devices/pci0000:00/0000:00:01.0/0000:01:00.0/vfio-dev/vfio0")
    write(tmp_path, "sys/module/iommufd/parameters/allow_unsafe_interrupts", "N\n")
    write(tmp_path, "dev-nodes.tsv", "crw-rw---- 0 0 10:123 /dev/iommu\n"
                                      "crw------- 107 107 511:0 /dev/vfio/devices/vfio0\n"
                                      "crw-rw-rw- 0 0 10:196 /dev/vfio/vfio\n")
    facts, warnings = collect(tmp_path)
    by_path = {n["path"]: n for n in facts["nodes"]}
    assert facts["iommufd"] is True
    assert by_path["/dev/iommu"]["kind"] == "iommufd" and by_path["/dev/iommu"]["mode"] == "0660"
    cdev = by_path["/dev/vfio/devices/vfio0"]
    assert (cdev["kind"], cdev["device"], cdev["uid"], cdev["rdev"]) == ("device", "0000:01:00.0", 107, "511:0")
    assert facts["cdevs"] == [{"name": "vfio0", "device": "0000:01:00.0", "rdev": "511:0"}]
    assert facts["parameters"]["iommufd_allow_unsafe_interrupts"] == "N"
    assert warnings == []


def test_noiommu_group_node_turns_noiommu_on(tmp_path):
    # Stands for a DPDK host that loaded vfio with enable_unsafe_noiommu_mode=1 and bound a NIC:
    # VFIO then creates /dev/vfio/noiommu-0.
    write(tmp_path, "dev-nodes.tsv", "crw------- 0 0 246:0 /dev/vfio/noiommu-0\n")
    (tmp_path / "sys").mkdir()
    facts, _ = collect(tmp_path)
    assert facts["noiommu"] is True
    assert facts["nodes"][0]["kind"] == "noiommu_group" and facts["nodes"][0]["group"] == 0


@pytest.mark.parametrize("value, expected", [("Y", True), ("1", True), ("N", False), ("0", False)])
def test_noiommu_parameter_alone_decides_when_no_node_exists(tmp_path, value, expected):
    # Stands for a host with the unsafe mode enabled before any device was bound.
    write(tmp_path, "sys/module/vfio/parameters/enable_unsafe_noiommu_mode", value + "\n")
    write(tmp_path, "dev-nodes.tsv", "crw-rw-rw- 0 0 10:196 /dev/vfio/vfio\n")
    facts, _ = collect(tmp_path)
    assert facts["noiommu"] is expected


def test_garbled_node_lines_are_warned_and_skipped(tmp_path):
    write(tmp_path, "dev-nodes.tsv", "crw------- 0 0 246:0 /dev/vfio/4\nnot a node line\n")
    (tmp_path / "sys").mkdir()
    facts, warnings = collect(tmp_path)
    assert [n["path"] for n in facts["nodes"]] == ["/dev/vfio/4"]
    assert any(w.startswith("/dev-nodes.tsv:") and "2" in w for w in warnings)


def test_live_root_nodes_are_what_stat_says():
    # This machine: whatever /dev/vfio holds (often nothing) must match os.stat exactly.
    facts, _ = collect("/")
    for node in facts["nodes"]:
        st = os.stat(node["path"])
        assert node["mode"] == "%04o" % (st.st_mode & 0o7777)
        assert (node["uid"], node["gid"]) == (st.st_uid, st.st_gid)
    expected = sorted(f"/dev/vfio/{n}" for n in os.listdir("/dev/vfio")) if os.path.isdir("/dev/vfio") else []
    assert sorted(n["path"] for n in facts["nodes"] if n["path"].startswith("/dev/vfio/")
                  and not n["path"].startswith("/dev/vfio/devices/")) == [p for p in expected if p != "/dev/vfio/devices"]


def test_a_group_node_whose_group_is_not_in_sysfs_is_warned_about(capture):
    # Stands for a partial tree: /dev/vfio/6 recorded, but group 6 missing from /sys/kernel/iommu_groups.
    root = capture("isolated-nics")
    groups = [{"id": gid, "devices": []} for gid, _ in groundtruth.find_groups(root) if gid != 6]
    rd = Reader(Root.of(root))
    vfio.collect(rd, [], groups)
    assert any(w.startswith("/dev/vfio/6:") for w in rd.warnings.as_list())
    rd = Reader(Root.of(root))
    vfio.collect(rd, [], [{"id": gid, "devices": []} for gid, _ in groundtruth.find_groups(root)])
    assert rd.warnings.as_list() == []


def test_a_cdev_without_a_class_entry_is_found_below_its_device(tmp_path):
    # Stands for a 6.6+ tree captured without /sys/class: the cdev only appears as
    # /sys/devices/…/0000:01:00.0/vfio-dev/vfio3.
    (tmp_path / "sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0/vfio-dev/vfio3").mkdir(parents=True)
    write(tmp_path, "dev-nodes.tsv", "crw------- 0 0 511:3 /dev/vfio/devices/vfio3\n")
    devices = [{"bdf": "0000:00:01.0", "path": "pci0000:00/0000:00:01.0"},
               {"bdf": "0000:01:00.0", "path": "pci0000:00/0000:00:01.0/0000:01:00.0"}]
    facts = vfio.collect(Reader(Root.of(tmp_path)), devices, [])
    assert facts["nodes"][0]["device"] == "0000:01:00.0"
