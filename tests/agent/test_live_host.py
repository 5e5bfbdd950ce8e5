"""The machine the tests run on (real PCI devices, no IOMMU), read as root and as an unprivileged user."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth as gt

REPO = Path(__file__).resolve().parents[2]
SYS_PCI = Path("/sys/bus/pci/devices")

pytestmark = pytest.mark.skipif(not SYS_PCI.is_dir(), reason="no /sys/bus/pci on this machine")


@pytest.fixture(scope="module")
def live():
    return build(Root.of("/"))


def test_snapshot_lists_exactly_the_devices_in_sys_bus_pci(live):
    assert [d["bdf"] for d in live["devices"]] == sorted(os.listdir(SYS_PCI))


def test_iommu_is_reported_disabled_when_the_kernel_has_no_groups(live):
    groups_dir = Path("/sys/kernel/iommu_groups")
    if groups_dir.is_dir() and os.listdir(groups_dir):
        pytest.skip("this machine has IOMMU groups")
    assert live["iommu"]["enabled"] is False and live["groups"] == []


def test_drivers_equal_the_driver_links(live):
    want = {}
    for bdf in os.listdir(SYS_PCI):
        link = SYS_PCI / bdf / "driver"
        want[bdf] = os.path.basename(os.readlink(link)) if link.is_symlink() else None
    assert {d["bdf"]: d["driver"] for d in live["devices"]} == want


def test_vendor_ids_equal_the_sysfs_files(live):
    for d in live["devices"]:
        raw = (SYS_PCI / d["bdf"] / "vendor").read_text().strip()
        assert int(raw, 16) == int(d["vendor_id"], 16) and len(d["vendor_id"]) == 4


needs_lspci = pytest.mark.skipif(shutil.which("lspci") is None, reason="pciutils (lspci) not installed")


def lspci(*args):
    return subprocess.run(["lspci", *args], capture_output=True, text=True, check=True, timeout=60).stdout


@needs_lspci
def test_drivers_agree_with_lspci_k(live):
    want = {b: v["driver"] for b, v in gt.parse_lspci_k(lspci("-Dk")).items()}
    assert {d["bdf"]: d["driver"] for d in live["devices"]} == want


@needs_lspci
def test_ids_class_and_parents_agree_with_lspci(live):
    ids, vvv = gt.parse_lspci_dnn(lspci("-Dnn")), gt.parse_lspci_vvv(lspci("-Dvvvnn"))
    parents = gt.parse_lspci_tree(lspci("-tvnn"))
    for d in live["devices"]:
        want = ids[d["bdf"]]
        assert (d["vendor_id"], d["device_id"], d["revision"]) == (want["vendor"], want["device"], want["revision"])
        assert d["class"] == want["class4"] + vvv[d["bdf"]].prog_if
        assert d["parent"] == parents[d["bdf"]]


@needs_lspci
def test_capabilities_agree_with_lspci_as_root(live):
    if os.geteuid() != 0:
        pytest.skip("lspci shows capabilities only to root")
    vvv = gt.parse_lspci_vvv(lspci("-Dvvvnn"))
    for d in live["devices"]:
        want, caps = vvv[d["bdf"]], d["capabilities"]
        assert not want.access_denied
        port = gt.LSPCI_PORT_TYPES[want.express] if want.express else None
        assert caps["pcie"] == {"present": want.express is not None, "port_type": port}, d["bdf"]
        if caps["acs"] is not None:
            assert caps["acs"]["present"] is (want.acs_cap is not None), d["bdf"]
        if caps["sriov"] is not None:
            assert caps["sriov"]["present"] is (want.sriov is not None), d["bdf"]


def test_root_reads_the_whole_config_space(live):
    if os.geteuid() != 0:
        pytest.skip("not root")
    for d in live["devices"]:
        size = os.path.getsize(SYS_PCI / d["bdf"] / "config")
        assert d["capabilities"]["config_bytes"] == size
        assert d["capabilities"]["pcie"] is not None


UNPRIVILEGED = (
    "import json, sys; sys.path.insert(0, sys.argv[1]);"
    "from agent.paths import Root; from agent.snapshot import build;"
    "print(json.dumps(build(Root.of('/'))))"
)


def test_as_an_unprivileged_user_capabilities_are_unknown_with_warnings(tmp_path):
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) not available")
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to uid 65534")
    proc = subprocess.run(
        [setpriv, "--reuid=65534", "--regid=65534", "--clear-groups", sys.executable, "-c", UNPRIVILEGED, str(REPO)],
        capture_output=True, text=True, cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(proc.stdout)
    assert doc["agent"]["euid"] == 65534
    assert [d["bdf"] for d in doc["devices"]] == sorted(os.listdir(SYS_PCI))
    for d in doc["devices"]:
        caps = d["capabilities"]
        assert caps["config_bytes"] == 64 and caps["extended_readable"] is False, d["bdf"]
        assert [caps[k] for k in ("pcie", "acs", "ats", "pri", "pasid", "sriov")] == [None] * 6, d["bdf"]
        assert d["header_type"] is not None  # the 64-byte header is still readable
        assert (f"/sys/bus/pci/devices/{d['bdf']}/config: config space cut to 64 bytes (not root): "
                "capabilities unknown") in doc["warnings"]
