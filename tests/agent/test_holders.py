"""fd holders: the pure parsers on literal strings, and each capture's holders against the boot's own
`ps` listing and the fake VM/DPDK processes' logs (ground-truth/)."""
import json
import os
import re

import pytest

from agent.collectors import holders
from agent.paths import Root
from agent.snapshot import build
from agent.sysfs import Reader
from tests.agent import groundtruth_iommufd
from tests.agent.captures import CAPTURE_NAMES
from tests.conftest import CAPTURES_DIR

# ---- ground truth, parsed here ---------------------------------------------------------------


def ps_commands(root):
    """pid -> (user column, command) from ground-truth/ps.txt (busybox `ps`)."""
    out = {}
    for line in (root / "ground-truth" / "ps.txt").read_text().splitlines()[1:]:
        parts = line.split(None, 2)
        if len(parts) == 3 and parts[0].isdigit():
            out[int(parts[0])] = (parts[1], parts[2])
    return out


def holder_logs(root):
    """pid -> facts the holder process itself logged: uid, nodes opened, device fds, devices named."""
    return {pid: {"uid": log.uid, "nodes": set(log.opened.values()), "device_fds": len(log.device_fds),
                  "devices": log.named, "log": log}
            for pid, log in groundtruth_iommufd.holder_logs(root).items()}


def expected_owner(command):
    """The VM or workload named on the command line the `ps` listing printed."""
    if m := re.search(r"-name (?:guest=)?([^,\s]+)", command):
        return m.group(1)
    if m := re.search(r"--file-prefix[= ](\S+)", command):
        return m.group(1)
    return None


@pytest.fixture(scope="module")
def snapshots(captures_root):
    return {name: build(Root.of(captures_root / name)) for name in CAPTURE_NAMES}


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_holders_are_the_processes_whose_logs_say_they_opened_vfio_or_uio_nodes(capture, snapshots, name):
    root = capture(name)
    logs = holder_logs(root)
    got = {h["pid"]: h for h in snapshots[name]["holders"]}
    assert set(got) == set(logs)
    for pid, facts in logs.items():
        h = got[pid]
        assert set(h["nodes"]) == facts["nodes"]
        assert h["uid"] == facts["uid"]
        assert h["device_fds"] == facts["device_fds"]
        assert facts["devices"] <= set(h["devices"])


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_holders_map_to_the_vm_or_workload_on_their_ps_command_line(capture, snapshots, name):
    root = capture(name)
    ps = ps_commands(root)
    for h in snapshots[name]["holders"]:
        user, command = ps[h["pid"]]
        assert h["workload"] == expected_owner(command)
        assert h["cmdline"] == command.split(" ")


def test_each_vm_or_workload_is_the_one_the_captures_readme_names_for_that_capture(snapshots):
    # The README row of each capture names its holder (`tenant-a-vm1` …); shared-bridge-group has none.
    readme = (CAPTURES_DIR / "README.md").read_text()
    rows = {m.group(1): m.group(2) for m in re.finditer(r"^\| `([\w-]+)` \|[^|]*\|(.*)\|$", readme, re.M)}
    assert set(rows) == set(CAPTURE_NAMES)
    for name, doc in snapshots.items():
        named = set(re.findall(r"tenant-[a-z]-vm\d+", rows[name]))
        assert {h["vm"] for h in doc["holders"] if h["vm"]} == named


def test_isolated_nics_vm_holds_the_group_of_its_vfio_device_as_the_libvirt_qemu_uid(capture, snapshots):
    doc = snapshots["isolated-nics"]
    (h,) = doc["holders"]
    log = holder_logs(capture("isolated-nics"))[h["pid"]]
    (bdf,) = [d for d in log["devices"]]
    group = next(g["id"] for g in doc["groups"] if bdf in g["devices"])
    assert h["groups"] == [group]
    assert h["uid"] == log["uid"] and h["kind"] == "qemu"


def test_no_iommu_dpdk_process_holds_uio0_for_its_allowed_device(capture, snapshots):
    root = capture("no-iommu")
    (h,) = snapshots["no-iommu"]["holders"]
    _, command = ps_commands(root)[h["pid"]]
    allowed = re.search(r"-a (\S+)", command).group(1)
    assert h["kind"] == "dpdk"
    assert h["nodes"] == ["/dev/uio0"]
    assert h["devices"] == [allowed]
    assert h["vm"] is None and h["workload"] == re.search(r"--file-prefix=(\S+)", command).group(1)


def test_shared_bridge_group_has_no_holder_because_the_attempt_failed(capture, snapshots):
    assert holder_logs(capture("shared-bridge-group")) == {}
    assert snapshots["shared-bridge-group"]["holders"] == []


# ---- pure parsers ------------------------------------------------------------------------------


def test_qemu_name_from_libvirt_guest_form_and_plain_form():
    assert holders.qemu_vm_name(["qemu", "-name", "guest=db-1,debug-threads=on"]) == "db-1"
    assert holders.qemu_vm_name(["qemu", "-name", "web,process=qemu-web"]) == "web"
    assert holders.qemu_vm_name(["qemu", "--name=solo"]) == "solo"
    assert holders.qemu_vm_name(["qemu", "-name", "guest=a,,b,debug-threads=on"]) == "a,b"
    assert holders.qemu_vm_name(["qemu", "-m", "1024"]) is None


def test_vfio_hosts_from_option_form_short_form_sysfsdev_and_json():
    argv = ["qemu", "-device", "vfio-pci,host=0000:02:00.0,id=hostdev0",
            "-device", "vfio-pci,host=03:00.1",
            "-device", "vfio-pci,sysfsdev=/sys/bus/pci/devices/0000:81:00.2",
            "-device", '{"driver":"vfio-pci","host":"0000:04:00.0","id":"hostdev3"}',
            "-device", "virtio-net-pci,host=0000:09:00.0",
            "-device", '{"driver":"e1000","host":"0000:0a:00.0"}']
    assert holders.qemu_vfio_hosts(argv) == ["0000:02:00.0", "0000:03:00.1", "0000:04:00.0", "0000:81:00.2"]


def test_libvirt_machine_cgroup_gives_the_vm_name_with_systemd_escapes_undone():
    assert holders.cgroup_vm("0::/machine.slice/machine-qemu\\x2d3\\x2dtenant-a-vm1.scope/libvirt/emulator\n") == "tenant-a-vm1"
    assert holders.cgroup_vm("0::/machine.slice/machine-qemu\\x2d12\\x2dtenant\\x2da\\x2dvm1.scope\n") == "tenant-a-vm1"
    v1 = "12:pids:/machine.slice/machine-qemu\\x2d1\\x2dweb.scope\n1:name=systemd:/machine.slice/machine-qemu\\x2d1\\x2dweb.scope\n"
    assert holders.cgroup_vm(v1) == "web"
    assert holders.cgroup_vm("0::/system.slice/sshd.service\n") is None
    assert holders.cgroup_path("0::/system.slice/sshd.service\n") == "/system.slice/sshd.service"


def test_dpdk_eal_allow_list_in_every_spelling_and_only_before_the_double_dash():
    argv = ["dpdk-testpmd", "-l", "0-3", "-a", "0000:02:00.0,txq_inline=128", "--allow=03:00.0",
            "-w", "0000:04:00.1", "-a0000:05:00.0", "--file-prefix", "tenant-f", "--", "-a", "0000:09:00.0"]
    assert holders.dpdk_allowed(argv) == ["0000:02:00.0", "0000:03:00.0", "0000:04:00.1", "0000:05:00.0"]
    assert holders.dpdk_file_prefix(argv) == "tenant-f"
    assert holders.dpdk_file_prefix(["testpmd", "--file-prefix=x"]) == "x"
    assert holders.dpdk_file_prefix(["testpmd"]) is None


def test_status_and_cmdline_parsing():
    status = holders.parse_status("Name:\tqemu-kvm\nUid:\t107\t107\t107\t107\nVmPin:\t  2048 kB\n")
    assert status["Name"] == "qemu-kvm"
    assert holders.status_uid(status) == 107 and holders.status_kb(status, "VmPin") == 2048
    assert holders.parse_cmdline(b"qemu\x00-name\x00vm\x00") == ["qemu", "-name", "vm"]
    assert holders.parse_cmdline(b"\xff\x00x") == ["\ufffd", "x"]
    assert holders.fdinfo_syspath("pos:\t0\nvfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0\n") \
        == "/sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0"


# ---- hand-made trees for what the captures cannot show -----------------------------------------


def _proc(root, pid, argv, fds, *, uid=0, cgroup=None, fdinfo=None):
    base = root / "proc" / str(pid)
    (base / "fd").mkdir(parents=True)
    (base / "fdinfo").mkdir()
    (base / "cmdline").write_bytes(b"\x00".join(a.encode() for a in argv) + b"\x00")
    (base / "status").write_text(f"Name:\t{argv[0].rsplit('/', 1)[-1][:15]}\nUid:\t{uid}\t{uid}\t{uid}\t{uid}\nVmPin:\t  4096 kB\n")
    for fd, target in fds.items():
        (base / "fd" / str(fd)).symlink_to(target)
    for fd, text in (fdinfo or {}).items():
        (base / "fdinfo" / str(fd)).write_text(text)
    if cgroup:
        (base / "cgroup").write_text(cgroup)


def test_iommufd_qemu_without_host_is_tied_through_fdinfo_syspath_and_cgroup(tmp_path):
    # Stands for a 6.18+ libvirt host passing an iommufd and a VFIO cdev fd to QEMU (no host= on argv).
    _proc(tmp_path, 4242, ["/usr/bin/qemu-system-x86_64", "-object", "iommufd,id=iommufd0,fd=23"],
          {23: "/dev/iommu", 24: "/dev/vfio/devices/vfio0", 25: "anon_inode:[vfio-device]", 3: "/var/log/x"},
          uid=107, cgroup="0::/machine.slice/machine-qemu\\x2d7\\x2dtenant\\x2dz.scope/libvirt/emulator\n",
          fdinfo={25: "pos:\t0\nvfio-device-syspath: /sys/devices/pci0000:00/0000:00:01.0/0000:01:00.0\n"})
    rd = Reader(Root.of(tmp_path))
    (h,) = holders.collect(rd, {"nodes": []})
    assert h["nodes"] == ["/dev/iommu", "/dev/vfio/devices/vfio0"]
    assert h["device_fds"] == 1
    # Only the fd's own fdinfo names the device; no argument does, so nothing is claimed.
    assert [(f["fd"], f["kind"], f["device"], f["device_source"]) for f in h["fds"]] == [
        (23, "iommufd", None, None), (24, "cdev", None, None), (25, "device", "0000:01:00.0", "fdinfo-syspath")]
    assert h["claims"] == [] and h["devices"] == []
    assert (h["vm"], h["workload"], h["kind"], h["vm_pinned_kb"]) == ("tenant-z", "tenant-z", "qemu", 4096)


def test_a_holder_with_no_vm_and_no_workload_is_reported_unattributed(tmp_path):
    # Stands for an ad-hoc test program someone left holding /dev/vfio/12.
    _proc(tmp_path, 77, ["/root/a.out"], {3: "/dev/vfio/12"})
    rd = Reader(Root.of(tmp_path))
    (h,) = holders.collect(rd, {"nodes": []})
    assert (h["kind"], h["vm"], h["workload"]) == ("other", None, None)
    # Holding the group is not a claim on its members (the group may not even be viable).
    assert h["groups"] == [12] and h["devices"] == [] and [f["kind"] for f in h["fds"]] == ["group"]


def test_processes_without_vfio_fds_are_not_holders(tmp_path):
    _proc(tmp_path, 1, ["/sbin/init"], {0: "/dev/null", 1: "socket:[1234]"})
    assert holders.collect(Reader(Root.of(tmp_path)), {"nodes": []}) == []


def test_a_non_utf8_fd_target_is_reported_serialisable_with_a_warning(tmp_path):
    # Stands for a hostile or corrupted tree: a held node whose name is not UTF-8.
    _proc(tmp_path, 5, ["/usr/bin/qemu-system-x86_64", "-name", "vm5"], {})
    os.symlink(b"/dev/vfio/\xff", os.path.join(bytes(tmp_path), b"proc/5/fd/3"))
    rd = Reader(Root.of(tmp_path))
    (h,) = holders.collect(rd, {"nodes": []})
    assert h["nodes"] == ["/dev/vfio/\ufffd"]
    json.dumps(h, ensure_ascii=False).encode("utf-8")
    assert any(w.startswith("/proc/5/fd/3") for w in rd.warnings.as_list())


def test_on_the_live_host_unreadable_processes_make_one_summary_warning_not_one_per_pid():
    # This machine: whatever processes the agent may not inspect, /proc yields at most one line.
    rd = Reader(Root.of("/"))
    holders.collect(rd, {"nodes": []})
    proc_lines = [w for w in rd.warnings.as_list() if w.startswith("/proc/")]
    assert len(proc_lines) <= 1
    denied = 0
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                os.readlink(f"/proc/{pid}/fd/{fd}")
        except PermissionError:
            denied += 1
        except OSError:
            pass
    if denied:
        assert proc_lines and proc_lines[0].startswith("/proc/*/fd:")


def test_non_ascii_digits_are_not_numbers():
    # `²` passes str.isdigit() but int() refuses it; a garbled status line must not crash the collector.
    status = holders.parse_status("Name:\tx\nUid:\t²\t0\t0\t0\nVmPin:\t١٢ kB\n")
    assert holders.status_uid(status) is None
    assert holders.status_kb(status, "VmPin") is None


def test_a_cdev_fd_names_its_device_by_the_cdev_link_and_by_fdinfo_where_618_writes_it():
    # Stands for a 6.18 host: the fd's own fdinfo names its device; 6.12 (the captures) writes no such line.
    cdevs = {"/dev/vfio/devices/vfio0": "0000:01:00.0"}
    linked = holders.fd_entry(4, "/dev/vfio/devices/vfio0", cdevs, {})
    assert (linked["kind"], linked["device"], linked["device_source"]) == ("cdev", "0000:01:00.0", "cdev")
    told = holders.fd_entry(4, "/dev/vfio/devices/vfio0", cdevs, {}, "0000:01:00.0")
    assert (told["device"], told["device_source"]) == ("0000:01:00.0", "fdinfo-syspath")
    assert holders.fd_entry(5, "anon_inode:[vfio-device]", cdevs, {})["device"] is None
    assert holders.fd_entry(6, "/dev/vfio/devices", cdevs, {}) is None


def test_claims_carry_the_backend_qemu_is_told_to_use():
    argv = ["qemu", "-object", "iommufd,id=iommufd0", "-device", "vfio-pci,host=0000:01:00.0,iommufd=iommufd0",
            "-device", "vfio-pci,host=0000:02:00.0", "-device", '{"driver":"vfio-pci","host":"0000:03:00.0","iommufd":"i0"}']
    assert holders.config_claims("qemu", argv, {"hostdevs": ["0000:02:00.0", "0000:04:00.0"]}) == [
        {"device": "0000:01:00.0", "source": "qemu-argv", "backend": "iommufd"},
        {"device": "0000:02:00.0", "source": "qemu-argv", "backend": "legacy"},
        {"device": "0000:03:00.0", "source": "qemu-argv", "backend": "iommufd"},
        {"device": "0000:04:00.0", "source": "libvirt", "backend": None}]
