"""The terminal view: what a person reads on one host, checked against the captures' ground truth."""
import re

import pytest

from agent.paths import Root
from agent.show import clean, render
from agent.snapshot import build
from tests.agent import groundtruth, groundtruth_iommufd
from tests.agent.captures import CAPTURE_NAMES

SGR = re.compile(r"\x1b\[[0-9;]*m")


def find_groups(root):
    """group id -> BDFs, from ground-truth `find /sys/kernel/iommu_groups/ -type l`."""
    groups = {}
    for gid, bdf in groundtruth.find_groups(root):
        groups.setdefault(gid, set()).add(bdf)
    return groups


def lspci_driver(root):
    return {bdf: facts["driver"] for bdf, facts in groundtruth.lspci_drivers(root).items()}


def block(text, heading):
    """The lines of the section that starts with `heading` (sections are separated by blank lines)."""
    for part in text.split("\n\n"):
        if part.startswith(heading):
            return part
    raise AssertionError(f"no section {heading!r} in:\n{text}")


@pytest.fixture(scope="module")
def views(captures_root):
    docs = {name: build(Root.of(captures_root / name)) for name in CAPTURE_NAMES}
    return {name: render(doc, color=False) for name, doc in docs.items()}


def test_shared_bridge_group_names_the_non_viable_group_and_its_members_with_their_drivers(capture, views):
    root = capture("shared-bridge-group")
    drivers = lspci_driver(root)
    (gid, members), = [(g, m) for g, m in find_groups(root).items() if "vfio-pci" in {drivers.get(b) for b in m}]
    section = block(views["shared-bridge-group"], f"Group {gid} ")
    assert "not viable" in section
    for bdf in members:
        (line,) = [ln for ln in section.splitlines() if ln.strip().startswith(bdf)]
        assert f"driver {drivers[bdf] or '-'} " in line
    for other, other_members in find_groups(root).items():
        if other != gid:
            assert "not viable" not in block(views["shared-bridge-group"], f"Group {other} ")


def test_every_group_of_every_capture_is_shown_with_every_member(capture, views):
    for name in CAPTURE_NAMES:
        for gid, members in find_groups(capture(name)).items():
            section = block(views[name], f"Group {gid} ")
            assert {ln.split()[0] for ln in section.splitlines()[1:] if re.match(r"\s+[0-9a-f]{4}:", ln)} == members


def test_a_viable_multi_device_group_given_to_one_vm_is_flagged_for_peer_to_peer_dma(capture, views):
    root = capture("shared-group-all-vfio")
    drivers = lspci_driver(root)
    (gid,) = [g for g, m in find_groups(root).items() if "vfio-pci" in {drivers.get(b) for b in m}]
    section = block(views["shared-group-all-vfio"], f"Group {gid} ")
    assert "peer-to-peer DMA" in section and "not viable" not in section
    assert "tenant-b-vm2" in section


def test_no_iommu_host_shows_iommu_off_uio_and_the_dpdk_workload(capture, views):
    text = views["no-iommu"]
    assert "IOMMU: off" in text
    assert "IOMMU off while devices are assigned" in text
    uio_bdf = [b for b, d in lspci_driver(capture("no-iommu")).items() if d == "uio_pci_generic"][0]
    section = block(text, "Devices in no IOMMU group")
    after = section.split(uio_bdf, 1)[1]
    assert "UIO driver" in after and "workload tenant-f" in after.splitlines()[0]


def test_passthrough_host_says_so_and_flags_identity_domains(views):
    text = views["iommu-passthrough"]
    assert "passthrough" in text.splitlines()[1]
    assert "identity domain" in text


def test_isolated_nics_raise_no_group_flag(views):
    assert [ln for ln in views["isolated-nics"].splitlines() if ln.lstrip().startswith("!")] == []
    assert "VM tenant-a-vm1" in views["isolated-nics"]


def _hostile_doc():
    # Stands for a host whose VM names and device strings were chosen by an attacker.
    evil = "vm\x1b]0;owned\x07\x1b[2J\u202eevil\r"
    return {
        "host": {"hostname": "h\x1b[31m", "kernel": "6.8"},
        "iommu": {"enabled": True, "units": []},
        "groups": [{"id": 1, "type": "DMA", "devices": ["0000:01:00.0"]}],
        "devices": [{"bdf": "0000:01:00.0", "vendor_id": "8086", "device_id": "10d3", "class": "020000",
                     "driver": "vfio-pci\x1b[0m", "parent": None}],
        "vfio": {"noiommu": True, "nodes": []},
        "holders": [{"pid": 9, "name": "x\x1b[1m", "vm": evil, "workload": evil, "devices": ["0000:01:00.0"],
                     "nodes": ["/dev/vfio/1\x1b[K"], "uid": 0},
                    {"pid": 10, "name": "a.out", "vm": None, "workload": None, "devices": [], "nodes": ["/dev/vfio/1"]}],
        "warnings": ["x"],
    }


def test_host_strings_cannot_inject_terminal_escapes():
    plain = render(_hostile_doc(), color=False)
    assert not re.search(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e]", plain)
    coloured = render(_hostile_doc(), color=True)
    assert SGR.sub("", coloured) == plain


def test_noiommu_and_unattributed_holders_are_flagged():
    text = render(_hostile_doc(), color=False)
    assert "no-IOMMU mode: ON" in text
    assert "maps to no known VM" in text


def test_clean_removes_control_and_bidi_characters_only():
    assert clean("tenant-a\x1b[31m\u202e\x00é") == "tenant-a[31mé"
    assert clean(None) == ""


def test_sriov_pf_shows_its_vf_counts_as_lspci_reports_them(capture, views):
    text = (capture("sriov-nvme") / "ground-truth" / "lspci-vvvnn.txt").read_text()
    pf, current, counts = None, None, None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
        elif m := re.search(r"Total VFs: (\d+), Number of VFs: (\d+)", line):
            pf, counts = current, (m.group(2), m.group(1))
    assert pf is not None
    view = views["sriov-nvme"]
    after = view.split(pf if pf.count(":") == 2 else f"0000:{pf}", 1)[1]
    assert f"SR-IOV PF, {counts[0]}/{counts[1]} VFs enabled" in after.split("\n\n")[0]


def _assigned_doc(**over):
    # Stands for a host with one NIC on vfio-pci in group 3, held by a VM.
    doc = {
        "host": {"hostname": "h1", "kernel": "6.8.0-40-generic"},
        "iommu": {"enabled": True, "units": []},
        "groups": [{"id": 3, "type": "DMA", "devices": ["0000:03:00.0"]}],
        "devices": [{"bdf": "0000:03:00.0", "class": "020000", "driver": "vfio-pci", "parent": None}],
        "vfio": {"noiommu": False, "nodes": [{"path": "/dev/vfio/3", "kind": "group", "group": 3, "mode": "0600",
                                               "uid": 107, "gid": 107}]},
        "holders": [{"pid": 40, "name": "qemu-kvm", "vm": "web", "workload": "web", "uid": 107,
                     "devices": ["0000:03:00.0"], "nodes": ["/dev/vfio/3"]}],
        "warnings": [],
    }
    doc.update(over)
    return doc


def test_a_group_node_others_can_open_is_flagged():
    doc = _assigned_doc()
    assert "users other than its owner" not in render(doc, color=False)
    doc["vfio"]["nodes"][0]["mode"] = "0666"
    assert "/dev/vfio/3 is mode 0666" in block(render(doc, color=False), "Group 3 ")


def test_a_holder_whose_uid_differs_from_the_node_owner_is_flagged():
    doc = _assigned_doc()
    doc["holders"][0]["uid"] = 1000
    assert "owned by uid 107 but held by uid 1000" in render(doc, color=False)


def test_a_kernel_before_5_19_with_assigned_devices_gets_the_crash_note():
    assert "before 5.19" not in render(_assigned_doc(), color=False)
    old = _assigned_doc(host={"hostname": "h1", "kernel": "5.15.0-1-amd64"})
    assert "before 5.19" in render(old, color=False)


def test_the_first_warnings_are_listed_and_the_rest_counted():
    doc = _assigned_doc(warnings=[f"/sys/x{i}: missing" for i in range(8)])
    text = render(doc, color=False)
    assert "/sys/x0: missing" in text and "/sys/x4: missing" in text and "/sys/x5: missing" not in text
    assert "and 3 more" in text


def test_acs_override_on_the_command_line_is_flagged():
    # Stands for a homelab host booted with pcie_acs_override=downstream,multifunction to split groups.
    host = {"hostname": "h1", "kernel": "6.8.0", "cmdline_flags": {"intel_iommu": "on",
            "pcie_acs_override": "downstream,multifunction", "pci_acs": ["config_acs=xx000000@0000:00:1c.0"],
            "vfio_pci_ids": ["8086:10d3"]}}
    text = render(_assigned_doc(host=host), color=False)
    assert "! pcie_acs_override=downstream,multifunction" in text
    assert "! pci=config_acs=xx000000@0000:00:1c.0" in text
    assert "cmdline: intel_iommu=on  vfio-pci.ids=8086:10d3" in text


def test_the_captured_command_line_flags_are_echoed(capture, views):
    cmdline = (capture("iommu-passthrough") / "proc" / "cmdline").read_text().split()
    line = next(ln for ln in views["iommu-passthrough"].splitlines() if ln.startswith("cmdline:"))
    assert set(line.split()[1:]) == {a for a in cmdline if a.split("=")[0] in ("intel_iommu", "amd_iommu", "iommu")}


def test_the_summary_names_the_risky_group_and_why_before_any_group_listing(capture, views):
    root = capture("shared-bridge-group")
    drivers = lspci_driver(root)
    (gid, members), = [(g, m) for g, m in find_groups(root).items() if "vfio-pci" in {drivers.get(b) for b in m}]
    text = views["shared-bridge-group"]
    summary = text[text.index("Groups needing a look: 1"):text.index("\nGroup ")]
    assert f"group {gid}: not viable" in summary
    bridge = next(b for b in members if drivers.get(b) is None)  # the PCIe-to-PCI bridge has no driver
    assert f"why: 02:01.0 and 02:02.0 sit behind PCIe-to-PCI bridge {bridge[5:]}" in summary
    assert "Groups needing a look: none" in views["isolated-nics"]


def test_members_given_to_two_libvirt_vms_with_different_labels_are_flagged():
    # Stands for a libvirt host where two VMs were each given one function of one group.
    doc = {"iommu": {"enabled": True, "units": []},
           "groups": [{"id": 7, "type": "DMA", "devices": ["0000:04:00.0", "0000:04:00.1"]}],
           "devices": [{"bdf": b, "driver": "vfio-pci", "class": "020000", "parent": None}
                       for b in ("0000:04:00.0", "0000:04:00.1")],
           "libvirt": {"domains": [
               {"name": "vm-a", "state": "running", "hostdevs": ["0000:04:00.0"],
                "seclabels": [{"model": "selinux", "label": "system_u:system_r:svirt_t:s0:c1,c2"}]},
               {"name": "vm-b", "state": "running", "hostdevs": ["0000:04:00.1"],
                "seclabels": [{"model": "selinux", "label": "system_u:system_r:svirt_t:s0:c3,c4"}]}]}}
    text = render(doc, color=False)
    group = block(text, "Group 7 ")
    assert "! split owners: vm-a, vm-b" in group
    assert "different security labels" in group and "s0:c1,c2" in group and "s0:c3,c4" in group
    assert "owner: VM vm-a (libvirt, running)" in group


def test_iommu_off_says_whether_the_command_line_turned_it_off(capture, views):
    cmdline = (capture("no-iommu") / "proc/cmdline").read_text()
    assert "iommu" not in cmdline  # the capture's kernel was simply not asked for one
    assert "IOMMU: off  (no IOMMU unit registered" in views["no-iommu"]
    doc = {"host": {"cmdline_flags": {"intel_iommu": "off"}}, "iommu": {"enabled": False}}
    assert "IOMMU: off  (turned off on the kernel command line: intel_iommu=off)" in render(doc, color=False)


@pytest.mark.parametrize("name", ["shared-group-all-vfio", "bridge-group-held"])
def test_a_bridge_in_a_held_group_is_not_shown_as_passed_through(capture, views, name):
    root = capture(name)
    parents = {p for p in groundtruth.lspci_tree_parents(root).values() if p}
    (vm,) = {m for line in (root / "ground-truth" / "ps.txt").read_text().splitlines()
             for m in re.findall(r"guest=(tenant-[\w-]+),", line)}
    held = [ln for ln in views[name].splitlines() if vm in ln and "owner:" in ln]
    for line in held:
        bdf = line.split()[0]
        assert ("not passed through" in line) == (bdf in parents), line
    assert any("not passed through" in ln for ln in held)
    holder = block(views[name], "Holders of")
    assert not any(short in holder for short in (p[5:] for p in parents))  # no bridge among what it reaches


def _holder_block(text, pid):
    lines = block(text, "Holders of").splitlines()
    start = next(i for i, ln in enumerate(lines) if f" pid {pid})" in ln)
    end = next((i for i in range(start + 1, len(lines)) if lines[i].startswith("  ") and not lines[i].startswith("    ")), len(lines))
    return "\n".join(lines[start:end])


@pytest.mark.parametrize("name", ["nonviable-group-held", "nonviable-group-cdev"])
def test_a_holder_refused_by_a_non_viable_group_owns_nothing_and_no_peer_to_peer_is_claimed(capture, views, name):
    root = capture(name)
    (pid, log), = groundtruth_iommufd.holder_logs(root).items()
    assert log.set_container_refused or log.bind_refused  # what the kernel answered in that boot
    (bdf,) = log.named
    (gid,) = [g for g, members in find_groups(root).items() if bdf in members]
    section = block(views[name], f"Group {gid} ")
    assert "not viable" in section and "peer-to-peer" not in section
    assert "refused by the kernel" in section
    for line in section.splitlines():
        if "owner:" in line:
            assert "owner: VM" not in line, line  # neither function is the VM's
    drivers = lspci_driver(root)
    for member in find_groups(root)[gid]:
        (line,) = [ln for ln in section.splitlines() if ln.strip().startswith(member)]
        if drivers[member] not in ("vfio-pci", None):
            assert f"owner: host ({drivers[member]})" in line
    mine = _holder_block(views[name], pid)
    assert "reaches:" not in mine and f"{bdf[5:]}: " in mine and "refused" in mine
    assert "nothing attached" in mine


@pytest.mark.parametrize("name", ["iommufd-vm", "iommufd-two-devices-one-ioas", "cdev-world-writable", "legacy-and-iommufd"])
def test_a_vm_on_iommufd_lists_its_cdevs_and_its_context_and_every_device_names_its_cdev(capture, views, name):
    root = capture(name)
    cdevs = groundtruth_iommufd.vfio_cdevs(root)
    for cdev, bdf in cdevs.items():
        assert f"cdev /dev/vfio/devices/{cdev}" in block(views[name], f"Group {next(g for g, m in find_groups(root).items() if bdf in m)} ")
    for pid, log in groundtruth_iommufd.holder_logs(root).items():
        mine = _holder_block(views[name], pid)
        for bdf in log.bound:
            (cdev,) = [c for c, b in cdevs.items() if b == bdf]
            assert f"{bdf[5:]} via cdev {cdev} [kernel]" in mine
        for fd in log.iommufd_fds:
            assert f"iommufd context fd {fd} (iommufd path): maps" in mine
        for fd in (fd for fd, path in log.opened.items() if path == "/dev/vfio/vfio"):
            assert f"VFIO container fd {fd} (type1, legacy path): maps" in mine
        assert "no device" not in mine


def test_an_mdev_a_libvirt_domain_lists_shows_its_vm():
    # Stands for a GVT-g host where libvirt gave one vGPU to a defined VM.
    uuid = "c2177883-f1bb-47f0-914d-32a22e3a8804"
    doc = {"iommu": {"enabled": True}, "mdevs": [{"uuid": uuid, "parent": "0000:00:02.0", "type": "i915-GVTg_V5_4",
                                                   "iommu_group": 9}],
           "libvirt": {"domains": [{"name": "desk-1", "state": "defined", "mdevs": [uuid], "hostdevs": []}]}}
    (line,) = [ln for ln in render(doc, color=False).splitlines() if uuid in ln]
    assert line.endswith("owner: VM desk-1 (libvirt, defined, not running)")
