"""mdevs and mdev parents: the captures have none (QEMU's emulated devices cannot be mdev parents),
so a hand-made tree stands for a host with an mdev-capable device."""
import pytest

from agent.collectors import mdev
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent.handmade import link, write
from tests.agent.captures import CAPTURE_NAMES

UUID = "4b20d080-1b54-4048-85b3-a6a62d165c01"
PARENT = "sys/devices/pci0000:00/0000:00:02.0"
TYPE = "i915-GVTg_V5_4"



@pytest.fixture
def gvt_host(tmp_path):
    """Stands for a Broadwell-era host whose i915 iGPU (GVT-g) exposes vGPU types and has one vGPU
    created, as /sys shows it: the mdev below its parent, `mdev_type` linking to the parent's type."""
    t = f"{PARENT}/mdev_supported_types/{TYPE}"
    write(tmp_path, f"{t}/name", "GVTg_V5_4\n")
    write(tmp_path, f"{t}/description", "low_gm_size: 128MB\nhigh_gm_size: 512MB\n")
    write(tmp_path, f"{t}/available_instances", "7\n")
    write(tmp_path, f"{t}/device_api", "vfio-pci\n")
    link(tmp_path, "sys/class/mdev_bus/0000:00:02.0", "../../devices/pci0000:00/0000:00:02.0")
    (tmp_path / "sys/kernel/iommu_groups/13").mkdir(parents=True)
    link(tmp_path, f"{PARENT}/{UUID}/mdev_type", f"../mdev_supported_types/{TYPE}")
    link(tmp_path, f"{PARENT}/{UUID}/iommu_group", "../../../../kernel/iommu_groups/13")
    link(tmp_path, f"sys/bus/mdev/devices/{UUID}", f"../../../devices/pci0000:00/0000:00:02.0/{UUID}")
    return tmp_path


def test_an_mdev_names_its_parent_type_and_synthetic_group(gvt_host):
    rd = Reader(Root.of(gvt_host))
    mdevs, _ = mdev.collect(rd)
    assert mdevs == [{"uuid": UUID, "parent": "0000:00:02.0", "type": TYPE, "type_name": "GVTg_V5_4", "iommu_group": 13}]
    assert rd.warnings.as_list() == []


def test_a_parent_lists_its_types_with_instances_left(gvt_host):
    _, parents = mdev.collect(Reader(Root.of(gvt_host)))
    (parent,) = parents
    assert parent["device"] == "0000:00:02.0"
    assert parent["types"] == [{"id": TYPE, "name": "GVTg_V5_4", "description": "low_gm_size: 128MB\nhigh_gm_size: 512MB",
                                "available_instances": 7, "device_api": "vfio-pci"}]


def test_a_dangling_mdev_link_is_warned_not_fatal(gvt_host):
    (gvt_host / f"sys/bus/mdev/devices/{UUID}").unlink()
    (gvt_host / f"sys/bus/mdev/devices/{UUID}").symlink_to("../../../devices/gone")
    rd = Reader(Root.of(gvt_host))
    mdevs, _ = mdev.collect(rd)
    assert mdevs[0]["parent"] is None
    assert any(w.startswith(f"/sys/bus/mdev/devices/{UUID}") for w in rd.warnings.as_list())


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_captures_have_no_mdevs_and_no_parents(capture, name):
    root = capture(name)
    on_bus = sorted(p.name for p in (root / "sys/bus/mdev/devices").iterdir()) if (root / "sys/bus/mdev/devices").is_dir() else []
    rd = Reader(Root.of(root))
    mdevs, parents = mdev.collect(rd)
    assert [m["uuid"] for m in mdevs] == on_bus == []
    assert parents == []
    assert rd.warnings.as_list() == []
