"""Every capture's snapshot agrees with what lspci, find, dmesg and QEMU said in the same boot."""
import pytest

from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth as gt
from tests.agent.captures import CAPTURE_NAMES

IOMMU_CAPTURES = [n for n in CAPTURE_NAMES if n != "no-iommu"]


@pytest.fixture(scope="module")
def snapshots(capture):
    cache = {}

    def get(name):
        if name not in cache:
            cache[name] = build(Root.of(capture(name)))
        return cache[name]

    return get


def devices_by_bdf(doc):
    return {d["bdf"]: d for d in doc["devices"]}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_group_membership_equals_the_find_listing(name, capture, snapshots):
    doc = snapshots(name)
    assert {(g["id"], b) for g in doc["groups"] for b in g["devices"]} == gt.find_groups(capture(name))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_group_membership_equals_the_kernel_log_of_group_additions(name, capture, snapshots):
    doc = snapshots(name)
    assert {(g["id"], b) for g in doc["groups"] for b in g["devices"]} == gt.dmesg_group_adds(capture(name))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_device_list_equals_lspci(name, capture, snapshots):
    assert [d["bdf"] for d in snapshots(name)["devices"]] == sorted(gt.lspci_dnn(capture(name)))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_ids_class_and_revision_agree_with_lspci(name, capture, snapshots):
    lspci = gt.lspci_dnn(capture(name))
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        want = lspci[bdf]
        assert (dev["vendor_id"], dev["device_id"]) == (want["vendor"], want["device"]), bdf
        assert dev["class"] == want["class4"] + vvv[bdf].prog_if, bdf
        assert dev["revision"] == want["revision"], bdf


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_subsystem_ids_agree_with_lspci(name, capture, snapshots):
    lspci = gt.lspci_drivers(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        ids = (dev["subsystem_vendor_id"], dev["subsystem_device_id"])
        if lspci[bdf]["subsystem"] is None:
            # lspci omits the line when the subsystem vendor is 0 or ffff (e.g. a bridge without SSVID).
            assert ids[0] in ("0000", "ffff"), bdf
        else:
            assert ids == lspci[bdf]["subsystem"], bdf


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_driver_equals_kernel_driver_in_use(name, capture, snapshots):
    lspci = gt.lspci_drivers(capture(name))
    assert {b: d["driver"] for b, d in devices_by_bdf(snapshots(name)).items()} == {
        b: v["driver"] for b, v in lspci.items()}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_each_device_group_equals_the_group_lspci_prints(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    assert {b: d["iommu_group"] for b, d in devices_by_bdf(snapshots(name)).items()} == {
        b: v.iommu_group for b, v in vvv.items()}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_parent_bridges_rebuild_the_lspci_tree(name, capture, snapshots):
    assert {b: d["parent"] for b, d in devices_by_bdf(snapshots(name)).items()} == gt.lspci_tree_parents(capture(name))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_parent_bridge_secondary_bus_is_the_device_bus(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        if dev["parent"] is not None:
            assert vvv[dev["parent"]].secondary_bus == bdf[5:7], bdf
            assert devices_by_bdf(snapshots(name))[dev["parent"]]["is_bridge"] is True


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_pcie_port_type_agrees_with_lspci(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        want = vvv[bdf]
        assert not want.access_denied  # captured as root: lspci decoded everything
        pcie = dev["capabilities"]["pcie"]
        if want.express is None:
            assert pcie == {"present": False, "port_type": None}, bdf
        else:
            assert pcie == {"present": True, "port_type": gt.LSPCI_PORT_TYPES[want.express]}, bdf


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_acs_capability_and_control_bits_agree_with_lspci(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    seen = 0
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        acs, want = dev["capabilities"]["acs"], vvv[bdf]
        if want.acs_cap is None:
            assert acs == {"present": False}, bdf
        else:
            seen += 1
            assert acs == {"present": True, "cap": want.acs_cap, "ctl": want.acs_ctl}, bdf
    assert seen > 0  # every capture has root ports with ACS


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_ats_pri_and_pasid_agree_with_lspci(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        caps, want = dev["capabilities"], vvv[bdf]
        has_ats = any(c.startswith("Address Translation Service") for c in want.caps)
        has_pri = any(c.startswith("Page Request Interface") for c in want.caps)
        assert caps["ats"]["present"] is has_ats, bdf
        assert caps["pri"]["present"] is has_pri, bdf
        assert caps["pasid"]["present"] is (want.pasid is not None), bdf
        if has_ats:
            assert caps["ats"]["enabled"] is want.ats_enabled
        if has_pri:
            assert caps["pri"]["enabled"] is want.pri_enabled
        if want.pasid is not None:
            assert {k: caps["pasid"][k] for k in want.pasid} == want.pasid


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_sriov_capability_agrees_with_lspci(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        sriov, want = dev["capabilities"]["sriov"], vvv[bdf].sriov
        if want is None:
            assert sriov["present"] is False, bdf
        else:
            assert sriov["present"] is True
            assert {k: sriov[k] for k in want} == want, bdf


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_extended_config_space_is_readable_exactly_for_pcie_functions(name, capture, snapshots):
    vvv = gt.lspci_vvv(capture(name))
    for bdf, dev in devices_by_bdf(snapshots(name)).items():
        # lspci numbers extended capabilities [100 v1] and up; a conventional function has none.
        assert dev["capabilities"]["extended_readable"] is (vvv[bdf].express is not None), bdf


def test_passthrough_capture_has_only_identity_groups(capture, snapshots):
    doc = snapshots("iommu-passthrough")
    assert gt.dmesg_default_domain(capture("iommu-passthrough")) == "Passthrough"
    assert doc["groups"] and {g["type"] for g in doc["groups"]} == {"identity"}
    assert doc["host"]["cmdline_flags"]["iommu"] == "pt"


@pytest.mark.parametrize("name", [n for n in IOMMU_CAPTURES if n != "iommu-passthrough"])
def test_translated_captures_have_no_identity_groups(name, capture, snapshots):
    assert gt.dmesg_default_domain(capture(name)) == "Translated"
    assert "identity" not in {g["type"] for g in snapshots(name)["groups"]}


def test_no_iommu_capture_reports_iommu_disabled(snapshots):
    doc = snapshots("no-iommu")
    assert doc["iommu"] == {"enabled": False, "units": []}
    assert doc["groups"] == []
    assert all(d["iommu_group"] is None and d["iommu_unit"] is None for d in doc["devices"])


@pytest.mark.parametrize("name", IOMMU_CAPTURES)
def test_intel_unit_translates_every_grouped_device(name, snapshots):
    doc = snapshots(name)
    assert doc["iommu"]["enabled"] is True
    [unit] = doc["iommu"]["units"]
    assert (unit["name"], unit["vendor"]) == ("dmar0", "intel")
    assert set(unit["devices"]) == {d["bdf"] for d in doc["devices"] if d["iommu_group"] is not None}
    assert {g["unit"] for g in doc["groups"]} == {"dmar0"}


@pytest.mark.parametrize("name", IOMMU_CAPTURES)
def test_intel_unit_registers_equal_what_the_kernel_logged_at_boot(name, capture, snapshots):
    [unit] = snapshots(name)["iommu"]["units"]
    logged = gt.dmesg_dmar_registers(capture(name))[unit["name"]]
    assert {k: unit["registers"][k] for k in logged} == logged


@pytest.mark.parametrize("name", IOMMU_CAPTURES)
def test_intel_unit_features_agree_with_qemu_options_and_the_boot_log(name, capture, snapshots):
    [unit] = snapshots(name)["iommu"]["units"]
    opts = gt.qemu_intel_iommu_options(capture(name))
    features = unit["features"]
    assert opts.get("intremap") == "on" and gt.dmesg_irq_remapping_enabled(capture(name))
    assert features["interrupt_remapping"] is True
    # QEMU's VT-d sets Caching Mode only with caching-mode=on and scalable mode only with
    # x-scalable-mode=on (both off by default); these boots set neither.
    assert features["caching_mode"] is (opts.get("caching-mode") == "on")
    assert features["scalable_mode"] is (opts.get("x-scalable-mode") == "on")
    if opts.get("x-scalable-mode") != "on":
        # QEMU advertises PASID (and page requests) only in scalable mode.
        assert features["pasid"] is False and features["pasid_width"] is None
        assert features["page_requests"] is False
    assert features["gt"] is None and features["ppr"] is None  # AMD-only bits


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_host_kernel_and_cmdline_equal_the_boot_log(name, capture, snapshots):
    host = snapshots(name)["host"]
    lines = gt.dmesg_lines(capture(name))
    version = next(line for line in lines if "Linux version " in line)
    assert version.split("Linux version ", 1)[1].split()[0] == host["kernel"]
    cmdline = next(line for line in lines if "Command line: " in line)
    assert cmdline.split("Command line: ", 1)[1].strip() == host["cmdline"].strip()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_captures_produce_no_warnings_from_the_pci_and_iommu_collectors(name, snapshots):
    mine = ("/sys/bus/pci", "/sys/kernel/iommu_groups", "/sys/class/iommu", "collector ")
    assert [w for w in snapshots(name)["warnings"] if w.startswith(mine)] == []


def _lspci_serials(root) -> dict[str, str | None]:
    """BDF -> the `Device Serial Number` lspci -vvv printed for it (None when it printed none)."""
    out, current = {}, None
    for line in gt.gt(root, "lspci-vvvnn.txt").read_text().splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
            out[current] = None
        elif current and "Device Serial Number" in line:
            out[current] = line.rsplit(" ", 1)[1].strip()
    return out


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_device_serial_numbers_agree_with_lspci(name, capture, snapshots):
    # lspci prints full BDFs only with -D; its -vvv capture is `-vvvnn`, so match on the short form.
    serials = {bdf[5:] if bdf.count(":") == 2 else bdf: s for bdf, s in _lspci_serials(capture(name)).items()}
    for d in snapshots(name)["devices"]:
        dsn = d["capabilities"]["dsn"]
        if d["capabilities"]["extended_readable"] or (d["capabilities"]["pcie"] or {}).get("present") is False:
            assert (dsn["serial"] if dsn["present"] else None) == serials[d["bdf"][5:]], d["bdf"]
    assert name != "shared-bridge-group" or any(serials.values())  # the 82574L there has one
