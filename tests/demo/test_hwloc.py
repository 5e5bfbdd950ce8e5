"""hwloc's pci_type strings, in both XML format versions the fixtures use."""
from pathlib import Path

import pytest

from fleet.demo.hwloc import machines, parse_pci_type

HWLOC = Path(__file__).resolve().parents[1] / "fixtures" / "hwloc"


def test_format_2_pci_type_has_no_programming_interface_and_gets_00():
    # hwloc_aws-g4dn-metal-8xT4.xml (topology version 2.0)
    assert parse_pci_type("0302 [10de:1eb8] [10de:12a2] a1") == {
        "class_code": "030200", "vendor_id": "10de", "device_id": "1eb8",
        "subsystem_vendor_id": "10de", "subsystem_device_id": "12a2", "revision": "a1",
    }


def test_format_3_pci_type_carries_the_programming_interface_into_the_class():
    # hwloc_nvidia-dgx2h.xml (topology version 3.0): an NVMe controller would read 0108 ... 02
    assert parse_pci_type("0108 [144d:a808] [144d:a801] 00 02")["class_code"] == "010802"


@pytest.mark.parametrize("bad", ["", "0302 [10de:1eb8]", "zz02 [10de:1eb8] [10de:12a2] a1", "0302 [10de:1eb8] [10de:12a2] a1 00 00"])
def test_anything_else_is_refused(bad):
    with pytest.raises(ValueError):
        parse_pci_type(bad)


def test_every_fixture_machine_parses_with_its_provenance():
    found = machines()
    assert {m.file for m in found.values()} == {p.name for p in HWLOC.glob("*.xml")}
    for m in found.values():
        assert m.functions and m.source and m.licence in ("MIT", "BSD-3-Clause")
        bdfs = {f.bdf for f in m.functions}
        assert all(f.parent is None or f.parent in bdfs for f in m.functions)
