"""IOMMU groups: reserved regions, and the cross-check with device links on partial trees."""
import os
import shutil

import pytest

from agent.collectors import groups, iommu_units, pci
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent import groundtruth as gt


def collect(root):
    rd = Reader(Root.of(root))
    devices = pci.collect(rd)
    return rd, devices, groups.collect(rd, devices, [])


def membership(group_list):
    return {(g["id"], b) for g in group_list for b in g["devices"]}


def test_reserved_regions_parse_the_kernel_line_format():
    text = ("0x00000000fee00000 0x00000000feefffff msi\n"
            "0x0000000000000000 0x0000000000ffffff direct-relaxable\n")
    assert groups.parse_reserved_regions(text) == ([
        {"start": "0x00000000fee00000", "end": "0x00000000feefffff", "type": "msi"},
        {"start": "0x0000000000000000", "end": "0x0000000000ffffff", "type": "direct-relaxable"},
    ], [])


def test_garbled_reserved_region_lines_are_reported_not_kept():
    regions, bad = groups.parse_reserved_regions("0xfee00000 0xfeefffff msi\nnot a region\n")
    assert len(regions) == 1 and bad == ["not a region"]


def test_capture_reserved_regions_equal_the_files_line_by_line(capture):
    root = capture("shared-bridge-group")
    _, _, group_list = collect(root)
    for g in group_list:
        lines = (root / f"sys/kernel/iommu_groups/{g['id']}/reserved_regions").read_text().split("\n")
        assert [" ".join((r["start"], r["end"], r["type"])) for r in g["reserved_regions"]] == [ln for ln in lines if ln]


def test_missing_groups_directory_takes_members_from_device_links_with_a_warning(writable_capture):
    root = writable_capture("shared-bridge-group")
    shutil.rmtree(root / "sys/kernel/iommu_groups")
    rd, devices, group_list = collect(root)
    assert membership(group_list) == gt.find_groups(root)
    assert all(g["type"] is None for g in group_list)
    assert any(w.startswith("/sys/kernel/iommu_groups: missing") for w in rd.warnings.as_list())


def test_missing_device_links_take_the_group_from_the_groups_directory_with_a_warning(writable_capture):
    root = writable_capture("sriov-nvme")
    for bdf in ("0000:01:00.1", "0000:00:1f.2"):
        os.unlink(root / f"sys/bus/pci/devices/{bdf}/iommu_group")
    rd, devices, group_list = collect(root)
    assert membership(group_list) == gt.find_groups(root)
    want = {b: g for g, b in gt.find_groups(root)}
    assert {d["bdf"]: d["iommu_group"] for d in devices} == want
    assert f"/sys/bus/pci/devices/0000:01:00.1/iommu_group: missing; group {want['0000:01:00.1']} taken from /sys/kernel/iommu_groups" in rd.warnings.as_list()


def test_one_missing_group_directory_is_rebuilt_from_links(writable_capture):
    root = writable_capture("isolated-nics")
    truth = gt.find_groups(root)
    gid = next(g for g, b in truth if b == "0000:02:00.0")
    shutil.rmtree(root / f"sys/kernel/iommu_groups/{gid}")
    rd, _, group_list = collect(root)
    assert membership(group_list) == truth
    assert f"/sys/kernel/iommu_groups/{gid}: missing; membership taken from the devices' iommu_group links" in rd.warnings.as_list()


def test_a_link_disagreeing_with_the_groups_directory_loses_with_a_warning(writable_capture):
    root = writable_capture("isolated-nics")
    link = root / "sys/bus/pci/devices/0000:01:00.0/iommu_group"
    os.unlink(link)
    os.symlink("../../../../kernel/iommu_groups/999", link)
    rd, devices, group_list = collect(root)
    assert membership(group_list) == gt.find_groups(root)
    assert any("link says group 999" in w for w in rd.warnings.as_list())


def test_units_are_filled_from_member_devices(capture):
    _, _, group_list = collect(capture("isolated-nics"))
    assert {g["unit"] for g in group_list} == {"dmar0"}


def test_empty_groups_directory_gives_no_groups_and_no_warning(capture):
    rd, _, group_list = collect(capture("no-iommu"))
    assert group_list == [] and rd.warnings.as_list() == []


def test_non_pci_members_are_listed_apart_and_non_utf8_names_stay_serialisable(writable_capture):
    # Stands for an ARM host, where platform devices share groups with PCI functions.
    from agent.snapshot import to_json

    root = writable_capture("isolated-nics")
    gid = sorted(gt.find_groups(root))[0][0]
    os.symlink("../../../../devices/platform/x", os.fsencode(root / f"sys/kernel/iommu_groups/{gid}/devices") + b"/plat\xfe")
    rd, _, group_list = collect(root)
    group = next(g for g in group_list if g["id"] == gid)
    assert group["other_devices"] == ["plat\ufffd"]
    assert membership(group_list) == gt.find_groups(root)
    to_json({"groups": group_list, "warnings": rd.warnings.as_list()}).encode("utf-8")


def test_a_deleted_iommu_class_entry_is_warned_about_by_name(writable_capture):
    root = writable_capture("shared-bridge-group")
    (root / "sys/class/iommu/dmar0").unlink()
    rd = Reader(Root.of(root))
    devices = pci.collect(rd)
    group_list = groups.collect(rd, devices, [])
    assert membership(group_list) == gt.find_groups(root)
    assert any(w.startswith("/sys/class/iommu/dmar0: missing, though the iommu links") for w in rd.warnings.as_list())


@pytest.mark.parametrize("damage", ["dangling", "garbled", "elsewhere"])
def test_a_damaged_group_member_link_keeps_the_member_and_warns_naming_the_link(writable_capture, damage):
    # What the kernel writes is a link to the device; a capture copied badly (or a hostile tree) is not.
    root = writable_capture("shared-bridge-group")
    truth = gt.find_groups(root)
    gid = next(g for g, b in truth if b == "0000:02:02.0")
    entry = root / f"sys/kernel/iommu_groups/{gid}/devices/0000:02:02.0"
    entry.unlink()
    if damage == "dangling":
        entry.symlink_to("../../../../devices/pci0000:00/0000:00:02.0/0000:01:00.0/gone/0000:02:02.0")
    elif damage == "garbled":
        entry.write_bytes(b"\xff\xfe not a link")
    else:
        entry.symlink_to("../../../../devices/pci0000:00/0000:00:03.0/0000:03:00.0")
    rd, _, group_list = collect(root)
    assert membership(group_list) == truth
    path = f"/sys/kernel/iommu_groups/{gid}/devices/0000:02:02.0"
    assert [w for w in rd.warnings.as_list() if w.startswith(path + ": ")], rd.warnings.as_list()


def test_an_intact_capture_has_no_member_link_or_unit_warning(capture):
    rd = Reader(Root.of(capture("shared-bridge-group")))
    groups.collect(rd, pci.collect(rd), iommu_units.collect(rd, None))
    assert rd.warnings.as_list() == []
