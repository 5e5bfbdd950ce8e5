"""Host facts: the kernel command line's IOMMU flags, names, kernel, DMI, psutil facts."""
import sys

import pytest

from agent.collectors import host
from agent.paths import Root
from agent.snapshot import build
from agent.sysfs import Reader
from tests.agent import groundtruth as gt
from tests.agent.captures import CAPTURE_NAMES


def test_a_plain_cmdline_has_every_flag_absent():
    flags = host.parse_cmdline("BOOT_IMAGE=/vmlinuz root=/dev/sda1 ro quiet")
    assert flags == {"intel_iommu": None, "amd_iommu": None, "iommu": None, "iommu_passthrough": None,
                     "iommu_strict": None, "pcie_acs_override": None, "vfio_noiommu": None,
                     "pci_acs": [], "pci_noats": False, "vfio_pci_ids": []}


def test_iommu_flags_are_kept_verbatim():
    flags = host.parse_cmdline("intel_iommu=on,sm_on iommu=pt iommu.passthrough=1 iommu.strict=0 amd_iommu=off")
    assert (flags["intel_iommu"], flags["iommu"], flags["iommu_passthrough"], flags["iommu_strict"],
            flags["amd_iommu"]) == ("on,sm_on", "pt", "1", "0", "off")


def test_the_last_occurrence_of_a_flag_wins():
    assert host.parse_cmdline("iommu=off iommu=pt")["iommu"] == "pt"


def test_pci_options_are_split_on_commas_across_several_pci_parameters():
    flags = host.parse_cmdline("pci=noaer,disable_acs_redir=0000:00:1c.0;0000:00:1d.0 pci=realloc,noats "
                               "pci=config_acs=1x0x@pci:8086:1234")
    assert flags["pci_acs"] == ["disable_acs_redir=0000:00:1c.0;0000:00:1d.0", "config_acs=1x0x@pci:8086:1234"]
    assert flags["pci_noats"] is True


def test_vfio_ids_accept_dash_or_underscore_in_the_module_name():
    assert host.parse_cmdline("vfio-pci.ids=10de:1b80,10de:10f0")["vfio_pci_ids"] == ["10de:1b80", "10de:10f0"]
    assert host.parse_cmdline("vfio_pci.ids=8086:10d3")["vfio_pci_ids"] == ["8086:10d3"]


def test_acs_override_and_noiommu_are_reported():
    flags = host.parse_cmdline("pcie_acs_override=downstream,multifunction vfio.enable_unsafe_noiommu_mode=1")
    assert flags["pcie_acs_override"] == "downstream,multifunction" and flags["vfio_noiommu"] == "1"


def test_arguments_after_double_dash_belong_to_init():
    assert host.parse_cmdline("quiet -- iommu=off")["iommu"] is None


def test_quoted_values_keep_their_spaces():
    assert host.split_cmdline('a="b c" d') == ["a=b c", "d"]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_capture_host_facts_come_from_its_files_and_skip_psutil(name, capture):
    root = capture(name)
    facts = host.collect(Reader(Root.of(root)))
    # Captures carry no /proc/sys/kernel/hostname: the fallback to /etc/hostname must be taken.
    assert not (root / "proc/sys/kernel/hostname").exists()
    assert facts["hostname"] == (root / "etc/hostname").read_text().strip() != ""
    qemu_cmdline = gt.gt(root, "qemu-cmdline.txt").read_text()
    assert facts["dmi"]["sys_vendor"] == "QEMU" and "-machine q35" in qemu_cmdline
    assert "Q35" in facts["dmi"]["product_name"]
    assert (facts["cpu_count"], facts["memory_bytes"], facts["boot_time"]) == (None, None, None)
    want_iommu = "on" if gt.qemu_intel_iommu_options(root) is not None else None
    assert facts["cmdline_flags"]["intel_iommu"] == want_iommu


def test_live_host_has_psutil_facts():
    import os

    facts = host.collect(Reader(Root.of("/")))
    assert facts["cpu_count"] == os.cpu_count()
    assert facts["memory_bytes"] > 0 and facts["boot_time"].endswith("Z")
    assert facts["kernel"] == os.uname().release


def test_kernel_hostname_wins_over_etc_hostname(writable_capture):
    root = writable_capture("no-iommu")
    (root / "proc/sys/kernel").mkdir(parents=True)
    (root / "proc/sys/kernel/hostname").write_text("from-the-kernel\n")
    assert host.collect(Reader(Root.of(root)))["hostname"] == "from-the-kernel"


def test_overlong_hostname_is_truncated_with_a_warning(writable_capture):
    root = writable_capture("no-iommu")
    (root / "etc/hostname").write_text("a" * 300)
    rd = Reader(Root.of(root))
    assert host.collect(rd)["hostname"] == "a" * 253
    assert any("longer than 253" in w for w in rd.warnings.as_list())


# Audit hooks cannot be removed: one hook for the module, recording only while a test listens.
_opened: list[str] | None = None


def _record_open(event, args):
    if event == "open" and _opened is not None and isinstance(args[0], str):
        _opened.append(args[0])


sys.addaudithook(_record_open)


@pytest.mark.parametrize("name", ["isolated-nics", "no-iommu"])
def test_one_collection_opens_proc_version_and_osrelease_at_most_once(name, capture, tmp_path):
    global _opened
    root = capture(name)
    _opened = []
    try:
        doc = build(Root.of(root))
    finally:
        opened, _opened = _opened, None
    for kernel_file in ("proc/version", "proc/sys/kernel/osrelease"):
        assert sum(1 for p in opened if p.endswith("/" + kernel_file)) <= 1, kernel_file
    assert sum(1 for p in opened if p.endswith("/proc/version")) == 1  # captures carry no osrelease
    assert doc["host"]["kernel"] == (root / "proc/version").read_text().split()[2]
