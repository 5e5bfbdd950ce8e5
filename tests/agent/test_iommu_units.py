"""IOMMU units: vendor detection, Intel cap/ecap and AMD EFR decoding, the AMD features pair order."""
import os

import pytest

from agent.collectors import host, iommu_units
from agent.paths import Root
from agent.sysfs import Reader


def test_intel_ecap_bits_decode_to_features():
    # A Sapphire-Rapids-like ecap: DT(2) IR(3) PT(6) NEST(26) PRS(29) PSS=19 (39:35) PASID(40) SMTS(43).
    ecap = (1 << 2) | (1 << 3) | (1 << 6) | (1 << 26) | (1 << 29) | (19 << 35) | (1 << 40) | (1 << 43)
    cap = (1 << 7) | (1 << 59) | 0x2  # CM, PI, ND=2
    f = iommu_units.decode_intel(cap, ecap)
    assert {k: f[k] for k in ("device_tlb", "interrupt_remapping", "pass_through", "nesting", "page_requests",
                              "pasid", "scalable_mode", "caching_mode", "posted_interrupts")} == dict.fromkeys(
        ("device_tlb", "interrupt_remapping", "pass_through", "nesting", "page_requests", "pasid", "scalable_mode",
         "caching_mode", "posted_interrupts"), True)
    assert f["pasid_width"] == 20
    assert f["domains_supported"] == 256  # 1 << (4 + 2*2)
    assert f["gt"] is None and f["ppr"] is None


def test_intel_unit_without_pasid_has_no_pasid_width():
    f = iommu_units.decode_intel(0, 19 << 35)
    assert f["pasid"] is False and f["pasid_width"] is None and f["scalable_mode"] is False


def test_intel_unreadable_registers_leave_features_unknown():
    f = iommu_units.decode_intel(None, None)
    assert all(v is None for v in f.values())


def test_amd_efr_decodes_ppr_gt_and_pasmax():
    # PPR(1), GT(4), PASmax=15 (36:32): a PASID-capable unit with 16-bit PASIDs.
    f = iommu_units.decode_amd((1 << 1) | (1 << 4) | (15 << 32))
    assert (f["ppr"], f["gt"], f["pasid"], f["page_requests"], f["pasid_width"]) == (True, True, True, True, 16)
    assert f["scalable_mode"] is None and f["interrupt_remapping"] is None  # Intel-only


def test_amd_features_pair_order_follows_the_kernel_version():
    # DOMAIN.md: QEMU's AMD-Vi printed 0:29d3 on Linux 6.1 (EFR2:EFR) and 29d3:0 on 6.12 (EFR:EFR2).
    assert iommu_units.split_amd_features("0:29d3", "6.1.0-56-amd64") == (0x29D3, 0)
    assert iommu_units.split_amd_features("29d3:0", "6.12.5") == (0x29D3, 0)
    assert iommu_units.split_amd_features("29d3", "5.10.0") == (0x29D3, None)


def test_amd_features_pair_order_switches_at_linux_6_7():
    # "iommu/amd: Consolidate feature detection and reporting logic" landed in the v6.7 IOMMU pull:
    # 6.6 still printed features2:features, 6.7 prints efr:efr2.
    assert iommu_units.split_amd_features("0:29d3", "6.6.58") == (0x29D3, 0)
    assert iommu_units.split_amd_features("29d3:0", "6.7.0-rc1") == (0x29D3, 0)


def test_amd_features_pair_with_unknown_kernel_is_not_guessed():
    assert iommu_units.split_amd_features("0:29d3", None) == (None, None)


def unit_tree(tmp_path, name, files, device_link=None, members=()):
    base = tmp_path / "sys/class/iommu" / name
    base.mkdir(parents=True)
    for rel, text in files.items():
        (base / rel).parent.mkdir(parents=True, exist_ok=True)
        (base / rel).write_text(text + "\n")
    if device_link:
        os.symlink(device_link, base / "device")
    (base / "devices").mkdir()
    for m in members:
        os.symlink(f"../../../../devices/pci0000:00/{m}", base / "devices" / m)
    return tmp_path


def test_amd_unit_is_read_from_its_amd_iommu_directory(tmp_path):
    # Stands for QEMU's amd-iommu under Linux 6.1 (DOMAIN.md): cap and the EFR2:EFR pair.
    root = unit_tree(tmp_path, "ivhd0", {"amd-iommu/cap": "40", "amd-iommu/features": "0:29d3"},
                     members=["0000:00:03.0"])
    (root / "proc").mkdir()
    (root / "proc/version").write_text("Linux version 6.1.0-56-amd64 (x) #1\n")
    rd = Reader(Root.of(root))
    [unit] = iommu_units.collect(rd, host.collect(rd)["kernel"])
    assert (unit["name"], unit["vendor"], unit["devices"]) == ("ivhd0", "amd", ["0000:00:03.0"])
    assert unit["registers"] == {"cap": "40", "features": "0:29d3"}
    assert (unit["features"]["ppr"], unit["features"]["gt"]) == (True, True)  # 0x29d3 has bits 1 and 4


@pytest.mark.parametrize("name, link, vendor", [
    ("smmu3.0x0000000009050000", None, "arm"),
    ("virtio-iommu0", None, "virtio"),
    ("iommu0", "../../../devices/pci0000:00/0000:00:02.0/virtio1", "virtio"),
    ("something", None, "unknown"),
])
def test_vendor_comes_from_the_unit_layout(tmp_path, name, link, vendor):
    root = unit_tree(tmp_path, name, {}, device_link=link, members=["0000:00:04.0"])
    [unit] = iommu_units.collect(Reader(Root.of(root)), kernel="6.6.0")
    assert unit["vendor"] == vendor and unit["devices"] == ["0000:00:04.0"]
    assert all(v is None for v in unit["features"].values())


def test_garbled_intel_register_is_unknown_with_a_warning(writable_capture):
    root = writable_capture("isolated-nics")
    (root / "sys/class/iommu/dmar0/intel-iommu/ecap").write_bytes(b"not-hex\n")
    rd = Reader(Root.of(root))
    [unit] = iommu_units.collect(rd, None)
    assert unit["features"]["interrupt_remapping"] is None and unit["features"]["caching_mode"] is False
    assert "/sys/class/iommu/dmar0/intel-iommu/ecap: not a hex register ('not-hex')" in rd.warnings.as_list()


def test_missing_intel_ecap_is_unknown_with_a_warning(writable_capture):
    root = writable_capture("isolated-nics")
    (root / "sys/class/iommu/dmar0/intel-iommu/ecap").unlink()
    rd = Reader(Root.of(root))
    [unit] = iommu_units.collect(rd, None)
    assert unit["features"]["pasid"] is None and "ecap" not in unit["registers"]
    assert "/sys/class/iommu/dmar0/intel-iommu/ecap: missing" in rd.warnings.as_list()
