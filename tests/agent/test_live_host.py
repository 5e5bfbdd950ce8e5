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


@pytest.mark.skipif(shutil.which("lspci") is None, reason="pciutils (lspci) not installed")
def test_drivers_agree_with_lspci_k(live):
    out = subprocess.run(["lspci", "-Dk"], capture_output=True, text=True, check=True).stdout
    want, current = {}, None
    for line in out.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            want[current] = None
        elif current and "Kernel driver in use:" in line:
            want[current] = line.split(":", 1)[1].strip()
    assert {d["bdf"]: d["driver"] for d in live["devices"]} == want


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
