"""Synthetic hosts: valid snapshots, faithful to the real machine trees they derive from, deterministic."""
import json
import re
import xml.etree.ElementTree as ET
from collections import defaultdict
from pathlib import Path

import jsonschema
import pytest

from agent.snapshot import SCHEMA_PATH
from fleet.demo import synth

HWLOC = Path(__file__).resolve().parents[1] / "fixtures" / "hwloc"


@pytest.fixture(scope="module")
def validator():
    return jsonschema.Draft202012Validator(json.loads(SCHEMA_PATH.read_text()))


def xml_tree(name: str) -> dict[str, str | None]:
    """BDF -> BDF of the nearest enclosing PCI bridge (None under a host bridge), read straight from the XML."""
    parents: dict[str, str | None] = {}

    def walk(el, bridge):
        busid = el.get("pci_busid")
        if el.tag == "object" and busid and el.get("type") in ("Bridge", "PCIDev"):
            parents[busid] = bridge
            bridge = busid if el.get("type") == "Bridge" else bridge
        for child in el:
            walk(child, bridge)

    walk(ET.parse(HWLOC / name).getroot(), None)
    return parents


def readme_rows() -> dict[str, str]:
    """file -> the README's "source (licence)" cell."""
    rows = {}
    for line in (HWLOC / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`hwloc_"):
            rows[cells[0].strip("`")] = cells[2].replace("`", "")
    return rows


def test_every_synthetic_document_validates_against_the_snapshot_schema(validator):
    docs = list(synth.fleet(60, seed=7)) + [synth.large_host(480, seed=1)]
    for doc in docs:
        errors = [f"{e.json_path}: {e.message[:120]}" for e in validator.iter_errors(doc)]
        assert errors == [], doc["host"]["hostname"]


def test_dgx2_derived_host_has_the_xml_bdfs_and_parent_bridges():
    truth = xml_tree("hwloc_nvidia-dgx2h.xml")
    doc = next(d for d in synth.fleet(len(synth.SHOWCASE)) if d["synthetic"]["derived_from"].endswith("nvidia-dgx2h.xml"))
    got = {d["bdf"]: d["parent"] for d in doc["devices"]}
    assert got == truth


def test_large_host_replicates_the_dgx2_tree_in_each_pci_domain():
    truth = xml_tree("hwloc_nvidia-dgx2h.xml")
    doc = synth.large_host(480, seed=3)
    assert len(doc["devices"]) >= 480
    by_domain = defaultdict(dict)
    for d in doc["devices"]:
        by_domain[d["bdf"][:4]][d["bdf"][5:]] = d["parent"][5:] if d["parent"] else None
    expected = {bdf[5:]: (p[5:] if p else None) for bdf, p in truth.items()}
    assert len(by_domain) * len(truth) == len(doc["devices"])
    for domain, tree in by_domain.items():
        assert tree == expected, domain


def test_every_hwloc_machine_tree_survives_into_its_synthetic_hosts():
    seen = set()
    for doc in synth.fleet(len(synth.SHOWCASE)):
        name = Path(doc["synthetic"]["derived_from"]).name
        truth = xml_tree(name)
        got = {d["bdf"]: d["parent"] for d in doc["devices"] if not (d["sriov"] or {}).get("physfn") or d["bdf"] in truth}
        assert got == truth, name
        seen.add(name)
    assert seen == {p.name for p in HWLOC.glob("*.xml")}


def test_documents_carry_the_source_and_licence_line_of_their_machine():
    rows = readme_rows()
    for doc in synth.fleet(len(synth.SHOWCASE)):
        meta = doc["synthetic"]
        name = Path(meta["derived_from"]).name
        assert f"{meta['source']} ({meta['licence']})" == rows[name]
        assert f"{meta['source']}, {meta['licence']}" in doc["host"]["dmi"]["product_name"]
        assert doc["warnings"] == []
        assert "Synthetic host" in meta["note"]


def test_fleet_is_deterministic_and_host_i_does_not_depend_on_where_the_fleet_starts():
    first = list(synth.fleet(8, seed=11))
    assert first == list(synth.fleet(8, seed=11))
    assert list(synth.fleet(3, seed=11, start=5)) == first[5:8]
    assert first != list(synth.fleet(8, seed=12))


def test_ten_thousand_hosts_get_distinct_hostnames_in_the_documented_shape():
    names = [synth.host_spec(i, seed=0).hostname for i in range(10_000)]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"(gpu|hpc|nfv|stor|vdi)-[a-z]\d{2}-r\d{2}", n) for n in names)


def _owners_by_group(doc):
    vm_of = {}
    for h in doc["holders"]:
        for bdf in h["devices"]:
            vm_of[bdf] = h["vm"] or h["workload"]
    groups = defaultdict(set)
    for d in doc["devices"]:
        if d["bdf"] in vm_of:
            groups[d["iommu_group"]].add(vm_of[d["bdf"]])
    return groups


def _showcase(scenario):
    index = next(i for i, row in enumerate(synth.SHOWCASE) if row[2] == scenario)
    return synth.host(index)


def test_split_group_scenario_gives_one_group_to_two_vms():
    doc = _showcase("split-group")
    assert any(len(vms) == 2 for vms in _owners_by_group(doc).values())


def test_mixed_ownership_scenario_puts_vfio_pci_and_a_host_driver_in_one_group():
    doc = _showcase("mixed-ownership")
    drivers = defaultdict(set)
    for d in doc["devices"]:
        if not d["is_bridge"]:
            drivers[d["iommu_group"]].add(d["driver"])
    assert any("vfio-pci" in ds and ds & {"nvidia", "amdgpu"} for ds in drivers.values())


def test_mdev_shared_parent_scenario_gives_one_gpus_vgpus_to_two_tenants_each_in_a_vfio_group():
    doc = _showcase("mdev-shared-parent")
    vm_of_group = {g: h["vm"] for h in doc["holders"] for g in h["groups"]}
    tenants_of_parent = defaultdict(set)
    for m in doc["mdevs"]:
        tenants_of_parent[m["parent"]].add(vm_of_group[m["iommu_group"]].split("-")[0])
    assert max(len(t) for t in tenants_of_parent.values()) == 2
    mdev_groups = {g["id"]: g for g in doc["groups"] if g["name"] == "vfio-noiommu"}
    assert {m["iommu_group"] for m in doc["mdevs"]} == set(mdev_groups)
    assert all(g["devices"] == [] and len(g["other_devices"]) == 1 for g in mdev_groups.values())
    parents = {p["device"] for p in doc["mdev_parents"]}
    assert parents == {d["bdf"] for d in doc["devices"] if d["class"].startswith("03")}


def test_planted_host_level_problems_show_in_the_facts_an_agent_would_report():
    assert _showcase("iommu-pt")["host"]["cmdline_flags"]["iommu"] == "pt"
    assert {g["type"] for g in _showcase("iommu-pt")["groups"]} == {"identity"}
    assert _showcase("acs-override")["host"]["cmdline_flags"]["pcie_acs_override"]
    assert _showcase("old-kernel")["host"]["kernel"].startswith("5.4.")
    stray = [h for h in _showcase("unknown-holder")["holders"] if h["vm"] is None and h["workload"] is None]
    assert len(stray) == 1 and stray[0]["groups"]
    assert any(n["mode"] == "0666" and n["kind"] == "group" for n in _showcase("vfio-node-world-writable")["vfio"]["nodes"])
    unsafe = _showcase("unsafe-interrupts")
    assert unsafe["vfio"]["parameters"]["type1_allow_unsafe_interrupts"] == "Y"
    assert "vfio_iommu_type1.allow_unsafe_interrupts=1" in unsafe["host"]["cmdline"]
    uio = _showcase("uio")
    assert any(d["driver"] == "igb_uio" for d in uio["devices"])
    assert any(n["kind"] == "uio" for n in uio["vfio"]["nodes"])


def test_holders_name_only_devices_bound_to_their_userspace_driver():
    for doc in list(synth.fleet(20, seed=2)) + [synth.large_host(480)]:
        driver = {d["bdf"]: d["driver"] for d in doc["devices"]}
        mdev_groups = {m["iommu_group"] for m in doc["mdevs"]}
        for h in doc["holders"]:
            # A vGPU's VM holds only its mdev's group; a stray tool (`--group N`) names no device (schema 2:
            # `devices` are the holder's claims).
            assert h["devices"] or set(h["groups"]) <= mdev_groups or h["kind"] == "other", h
            assert all(driver[b] in ("vfio-pci", "igb_uio") for b in h["devices"])


def test_changing_one_document_leaves_the_next_one_of_the_same_machine_untouched():
    # bench/ingest.py edits a large host in place to make a changed snapshot.
    first = synth.large_host(480, seed=5)
    pristine = json.dumps(synth.large_host(480, seed=5), sort_keys=True)
    for device in first["devices"]:
        device["capabilities"]["acs"]["present"] = "edited"
        device["link"]["current_speed"] = "edited"
    for group in first["groups"]:
        group["reserved_regions"][0]["type"] = "edited"
    assert json.dumps(synth.large_host(480, seed=5), sort_keys=True) == pristine


def test_ids_class_and_revision_of_every_function_are_the_xmls():
    for doc in synth.fleet(len(synth.SHOWCASE)):
        root = ET.parse(HWLOC / Path(doc["synthetic"]["derived_from"]).name).getroot()
        xml = {el.get("pci_busid"): el.get("pci_type").split() for el in root.iter("object") if el.get("pci_busid")}
        for d in doc["devices"]:
            if d["bdf"] not in xml:
                assert d["sriov"]["physfn"] in xml  # a VF the demo enabled on a PF of the XML
                continue
            ours = [d["class"][:4], f"[{d['vendor_id']}:{d['device_id']}]",
                    f"[{d['subsystem_vendor_id']}:{d['subsystem_device_id']}]", d["revision"]]
            assert ours == xml[d["bdf"]][:4], d["bdf"]


def test_vms_on_6_6_kernels_may_open_cdevs_and_every_cdev_belongs_to_a_vfio_pci_device():
    # Stands for QEMU 8.2+ with `-object iommufd` on Ubuntu 24.04 (6.8): what no capture can show
    # (Debian's 6.1 kernels have no iommufd).
    docs = [d for d in synth.fleet(40, seed=3) if d["vfio"]["iommufd"]]
    assert docs
    cdev_users = 0
    for doc in docs:
        cdev_of = {c["name"]: c["device"] for c in doc["vfio"]["cdevs"]}
        driver = {d["bdf"]: d["driver"] for d in doc["devices"]}
        assert all(driver[b] == "vfio-pci" for b in cdev_of.values())
        for h in doc["holders"]:
            if "/dev/iommu" in h["nodes"]:
                cdev_users += 1
                held = {cdev_of[n.rsplit("/", 1)[1]] for n in h["nodes"] if n.startswith("/dev/vfio/devices/")}
                assert held == set(h["devices"]) and h["groups"] == []
    assert cdev_users


def _xml_functions(name: str) -> dict[str, str]:
    """BDF -> "vendor:device" of every PCI function the hwloc XML lists, read straight from it."""
    root = ET.parse(HWLOC / name).getroot()
    return {el.get("pci_busid"): el.get("pci_type").split()[1].strip("[]") for el in root.iter("object") if el.get("pci_busid")}


def test_the_demo_fleet_has_connectx_vfs_owned_by_dpdk_vnf_vms_and_mlx5_core():
    # The "where are all the ConnectX VFs and who owns them": llnl-corona's ConnectX-6 (15b3:101b)
    # is the only Mellanox function in the hwloc fixtures; the demo's nfv hosts built on it enable its VFs.
    from fleet.demo.management.commands.demo import DEFAULT_SYNTHETIC

    owners = defaultdict(set)  # VF driver or holder kind -> VFs
    for doc in synth.fleet(DEFAULT_SYNTHETIC):
        xml = _xml_functions(Path(doc["synthetic"]["derived_from"]).name)
        held = {b: h for h in doc["holders"] for b in h["devices"]}
        by_bdf = {d["bdf"]: d for d in doc["devices"]}
        for d in doc["devices"]:
            pf = (d["sriov"] or {}).get("physfn")
            if d["vendor_id"] != "15b3" or not pf:
                continue
            assert doc["synthetic"]["role"] == "nfv"
            assert xml[pf] == "15b3:101b" and d["bdf"] not in xml, "a VF enabled on the XML's ConnectX-6 PF"
            assert d["bdf"] in by_bdf[pf]["sriov"]["vfs"]
            if d["driver"] == "vfio-pci":
                assert d["bdf"] in held, f"{d['bdf']} on vfio-pci with no holder"
                owners[held[d["bdf"]]["kind"]].add(d["bdf"])
            else:
                assert d["driver"] == "mlx5_core" and d["bdf"] not in held
                owners["mlx5_core"].add(d["bdf"])
    assert set(owners) == {"dpdk", "qemu", "mlx5_core"}, dict(owners)
    vms = [h["vm"] for doc in synth.fleet(DEFAULT_SYNTHETIC) for h in doc["holders"]
           if h["kind"] == "qemu" and any(b in owners["qemu"] for b in h["devices"])]
    assert vms and all(vms)
