"""PCI function collection: id normalisation, parent bridges, and damaged trees."""
import os
import re
from pathlib import Path

import pytest

from agent.collectors import pci
from agent.paths import Root
from agent.sysfs import Reader
from tests.agent import groundtruth as gt


@pytest.mark.parametrize("text, digits, want", [
    ("0x8086", 4, "8086"),
    ("0x1B36\n", 4, "1b36"),
    ("0x010802", 6, "010802"),
    ("0x02", 2, "02"),
    ("0x0", 4, "0000"),
    ("8086", 4, "8086"),
    ("0xzz86", 4, None),
    ("0x123456", 4, None),
    ("", 4, None),
    ("vendor", 4, None),
])
def test_ids_are_normalised_to_lowercase_hex_without_prefix(text, digits, want):
    assert pci.normalise_hex(text, digits) == want


def test_parent_is_the_nearest_bdf_above_in_the_sysfs_path():
    assert pci.parent_from_path("pci0000:00/0000:00:1c.0/0000:03:00.0") == "0000:00:1c.0"
    assert pci.parent_from_path("pci0000:00/0000:00:02.0/0000:01:00.0/0000:02:01.0") == "0000:01:00.0"
    assert pci.parent_from_path("pci0000:00/0000:00:1f.2") is None
    # A VMD-style domain: the host bridge below an endpoint starts a new tree under that endpoint.
    assert pci.parent_from_path("pci0000:00/0000:00:0e.0/pci10000:e0/10000:e0:06.0") is None


def test_link_targets_are_read_relative_to_the_link_directory():
    below = pci.link_target_below
    assert below("/sys/bus/pci/devices", "../../../devices/pci0000:00/0000:00:02.0", "/sys/devices") == \
        "pci0000:00/0000:00:02.0"
    assert below("/sys/bus/pci/devices", "/sys/devices/pci0000:00/0000:00:1f.2", "/sys/devices") == "pci0000:00/0000:00:1f.2"
    assert below("/sys/bus/pci/devices", "../../../../etc", "/sys/devices") is None


def test_every_capture_device_path_resolves_below_sys_devices(capture):
    rd = Reader(Root.of(capture("shared-bridge-group")))
    devices = pci.collect(rd)
    assert [d["path"].rsplit("/", 1)[-1] for d in devices] == [d["bdf"] for d in devices]
    assert {d["bdf"]: d["path"] for d in devices}["0000:02:02.0"] == "pci0000:00/0000:00:02.0/0000:01:00.0/0000:02:02.0"


def test_driver_override_is_what_the_setup_wrote_and_null_where_the_kernel_prints_null(capture):
    rd = Reader(Root.of(capture("no-iommu")))
    devices = pci.collect(rd)
    written = gt.setup_driver_overrides(capture("no-iommu"))
    assert written  # the no-iommu boot set overrides on both NICs
    assert {d["bdf"]: d["driver_override"] for d in devices} == {d["bdf"]: written.get(d["bdf"]) for d in devices}


def test_garbled_non_utf8_vendor_becomes_null_with_a_warning(writable_capture):
    root = writable_capture("isolated-nics")
    (root / "sys/bus/pci/devices/0000:01:00.0/vendor").write_bytes(b"\xff\xfe\x80garbage\n")
    rd = Reader(Root.of(root))
    dev = {d["bdf"]: d for d in pci.collect(rd)}["0000:01:00.0"]
    assert dev["vendor_id"] is None
    assert dev["device_id"] == gt.lspci_dnn(root)["0000:01:00.0"]["device"]
    assert any(w.startswith("/sys/bus/pci/devices/0000:01:00.0/vendor: not UTF-8") for w in rd.warnings.as_list())
    assert any(w.startswith("/sys/bus/pci/devices/0000:01:00.0/vendor: not a 4-digit hex") for w in rd.warnings.as_list())


def test_empty_class_and_missing_vendor_are_null_with_warnings(writable_capture):
    root = writable_capture("isolated-nics")
    base = root / "sys/bus/pci/devices/0000:02:00.0"
    (base / "class").write_bytes(b"")
    (base / "vendor").unlink()
    rd = Reader(Root.of(root))
    dev = {d["bdf"]: d for d in pci.collect(rd)}["0000:02:00.0"]
    assert dev["class"] is None and dev["vendor_id"] is None
    assert "/sys/bus/pci/devices/0000:02:00.0/class: empty" in rd.warnings.as_list()
    assert "/sys/bus/pci/devices/0000:02:00.0/vendor: missing" in rd.warnings.as_list()


def test_dangling_driver_link_keeps_the_name_and_warns(writable_capture):
    root = writable_capture("isolated-nics")
    link = root / "sys/bus/pci/devices/0000:03:00.0/driver"
    target = os.readlink(link)
    os.unlink(link)
    os.symlink(target.replace("e1000e", "no-such-driver"), link)
    rd = Reader(Root.of(root))
    dev = {d["bdf"]: d for d in pci.collect(rd)}["0000:03:00.0"]
    assert dev["driver"] == "no-such-driver"
    assert any(w.startswith("/sys/bus/pci/devices/0000:03:00.0/driver: dangling link") for w in rd.warnings.as_list())


def test_dangling_device_link_leaves_path_and_parent_unknown(writable_capture):
    root = writable_capture("isolated-nics")
    link = root / "sys/bus/pci/devices/0000:03:00.0"
    os.unlink(link)
    os.symlink("../../../devices/pci0000:00/0000:00:04.0/gone", link)
    rd = Reader(Root.of(root))
    dev = {d["bdf"]: d for d in pci.collect(rd)}["0000:03:00.0"]
    assert dev["path"] is None and dev["parent"] is None and dev["vendor_id"] is None
    assert "/sys/bus/pci/devices/0000:03:00.0: dangling link" in rd.warnings.as_list()


def test_negative_numa_node_is_unknown(capture):
    rd = Reader(Root.of(capture("isolated-nics")))
    raw = (capture("isolated-nics") / "sys/bus/pci/devices/0000:01:00.0/numa_node").read_text().strip()
    assert raw == "-1"
    assert {d["bdf"]: d for d in pci.collect(rd)}["0000:01:00.0"]["numa_node"] is None


def test_non_pci_names_in_the_devices_directory_are_skipped_with_a_warning(writable_capture):
    root = writable_capture("isolated-nics")
    os.symlink("../../../devices/pci0000:00/0000:00:02.0", root / "sys/bus/pci/devices/evil<b>")
    rd = Reader(Root.of(root))
    assert "evil<b>" not in [d["bdf"] for d in pci.collect(rd)]
    assert "/sys/bus/pci/devices/evil<b>: not a PCI address; skipped" in rd.warnings.as_list()


def test_non_utf8_driver_link_name_is_replaced_so_the_snapshot_serialises(writable_capture):
    from agent.snapshot import build, to_json

    root = writable_capture("isolated-nics")
    link = os.fsencode(root / "sys/bus/pci/devices/0000:03:00.0/driver")
    os.unlink(link)
    os.symlink(b"../../../../bus/pci/drivers/e1000\xff", link)
    doc = build(Root.of(root))
    to_json(doc).encode("utf-8")  # lone surrogates would raise here
    assert {d["bdf"]: d for d in doc["devices"]}["0000:03:00.0"]["driver"] == "e1000\ufffd"
    assert "/sys/bus/pci/devices/0000:03:00.0/driver: name is not UTF-8 (decoded with replacement)" in doc["warnings"]


HWLOC = sorted((Path(__file__).resolve().parents[1] / "fixtures" / "hwloc").glob("*.xml"))


def hwloc_tree(xml_path, root):
    """A sysfs tree shaped like a real machine's PCI hierarchy from its hwloc export (derived data:
    hwloc records no drivers or groups). Returns BDF -> the bridge hwloc nests it under (None below
    a host bridge)."""
    import xml.etree.ElementTree as ET

    parents = {}
    devices_dir = root / "sys/bus/pci/devices"
    devices_dir.mkdir(parents=True)

    def walk(node, sys_dir, parent_bdf):
        for child in node.findall("object"):
            kind, busid = child.get("type"), child.get("pci_busid")
            if kind == "Bridge" and child.get("bridge_type", "").startswith("0-"):
                dom, buses = child.get("bridge_pci").split(":", 1)
                walk(child, root / "sys/devices" / f"pci{dom}:{buses.strip('[]').split('-')[0]}", None)
            elif kind in ("Bridge", "PCIDev") and busid:
                here = sys_dir / busid
                here.mkdir(parents=True)
                m = re.match(r"([0-9a-f]{4}) \[([0-9a-f]{4}):([0-9a-f]{4})\]", child.get("pci_type"))
                for fname, value in (("class", m[1] + "00"), ("vendor", m[2]), ("device", m[3])):
                    (here / fname).write_text(f"0x{value}\n")
                os.symlink(os.path.relpath(here, devices_dir), devices_dir / busid)
                parents[busid] = parent_bdf
                walk(child, here, busid)
            else:
                walk(child, sys_dir, parent_bdf)

    walk(ET.parse(xml_path).getroot(), root / "sys/devices", None)
    return parents


@pytest.mark.parametrize("xml_path", HWLOC, ids=[p.stem for p in HWLOC])
def test_parents_follow_real_machine_bridge_trees(xml_path, tmp_path):
    parents = hwloc_tree(xml_path, tmp_path)
    assert any(p is not None for p in parents.values())
    devices = pci.collect(Reader(Root.of(tmp_path)))
    assert {d["bdf"]: d["parent"] for d in devices} == parents


@pytest.mark.parametrize("attribute", ["revision", "subsystem_vendor", "subsystem_device"])
def test_a_missing_attribute_the_kernel_always_writes_is_null_with_a_warning_naming_it(writable_capture, attribute):
    root = writable_capture("isolated-nics")
    (root / f"sys/bus/pci/devices/0000:02:00.0/{attribute}").unlink()
    rd = Reader(Root.of(root))
    devices = {d["bdf"]: d for d in pci.collect(rd)}
    key = {"revision": "revision", "subsystem_vendor": "subsystem_vendor_id",
           "subsystem_device": "subsystem_device_id"}[attribute]
    assert devices["0000:02:00.0"][key] is None
    assert rd.warnings.as_list() == [f"/sys/bus/pci/devices/0000:02:00.0/{attribute}: missing"]
