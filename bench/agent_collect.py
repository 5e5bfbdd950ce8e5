"""Agent collection benchmark: a large host tree, the agent's time against plain reads of the same
files, and the agent's peak RSS.

    .venv/bin/python bench/agent_collect.py [--ports 240] [--runs 7]

Targets (issue 2): agent time / baseline time <= 1.5, peak RSS <= 30 MB.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.large_host_tree import build_tree  # noqa: E402

RATIO_TARGET = 1.5
RSS_TARGET_MB = 30.0

# What the agent reads per PCI function, per group, per unit, per process (docs/snapshot.md).
DEVICE_FILES = ("vendor", "device", "subsystem_vendor", "subsystem_device", "class", "revision", "driver_override",
                "numa_node", "current_link_speed", "current_link_width", "max_link_speed", "max_link_width",
                "sriov_totalvfs", "sriov_numvfs", "sriov_drivers_autoprobe")
DEVICE_LINKS = ("driver", "iommu_group", "iommu", "physfn")
GROUP_FILES = ("type", "reserved_regions", "name")
UNIT_FILES = tuple(f"intel-iommu/{n}" for n in ("cap", "ecap", "version", "address", "domains_supported", "domains_used"))
HOST_FILES = ("proc/cmdline", "proc/version", "proc/sys/kernel/hostname", "proc/sys/kernel/osrelease",
              "proc/sys/kernel/tainted", "etc/hostname", "etc/machine-id", "dev-nodes.tsv",
              "sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
              "sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
              "sys/module/iommufd/parameters/allow_unsafe_interrupts",
              "sys/module/vfio_pci/parameters/disable_denylist", "sys/module/vfio_pci/parameters/enable_sriov")
PROC_FILES = ("status", "cmdline", "cgroup")
DMI_FILES = ("sys_vendor", "product_name", "product_version", "bios_vendor", "bios_version", "board_vendor", "board_name")


def _read(path: str, limit: int = 65537) -> None:
    try:
        with open(path, "rb") as f:
            f.read(limit)
    except OSError:
        pass


def _readlink(path: str) -> None:
    try:
        os.readlink(path)
    except OSError:
        pass


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def baseline(root: Path) -> int:
    """Open and read the files the agent reads, with nothing else: no parsing, no warnings, no JSON.
    Returns the number of files opened (links are read too, but not counted)."""
    r = str(root)
    count = 0
    for rel in HOST_FILES:
        _read(f"{r}/{rel}")
        count += 1
    for name in DMI_FILES:
        _read(f"{r}/sys/class/dmi/id/{name}")
        count += 1
    for bdf in _listdir(f"{r}/sys/bus/pci/devices"):
        dev = os.path.realpath(f"{r}/sys/bus/pci/devices/{bdf}")
        present = set(_listdir(dev))  # optional attributes (SR-IOV, link) are read only where they exist
        for name in DEVICE_FILES:
            if name in present:
                _read(f"{dev}/{name}")
                count += 1
        _read(f"{dev}/config", 4096)
        for name in DEVICE_LINKS:
            if name in present:
                _readlink(f"{dev}/{name}")
        count += 1
    # Groups and units alike: a few attribute files, then the member links in devices/.
    for parent, files in (("sys/kernel/iommu_groups", GROUP_FILES), ("sys/class/iommu", UNIT_FILES)):
        for entry in _listdir(f"{r}/{parent}"):
            base = f"{r}/{parent}/{entry}"
            for name in files:
                _read(f"{base}/{name}")
            for bdf in _listdir(f"{base}/devices"):
                _readlink(f"{base}/devices/{bdf}")
            count += len(files)
    for cls in ("vfio-dev", "uio"):
        for name in _listdir(f"{r}/sys/class/{cls}"):
            _readlink(f"{r}/sys/class/{cls}/{name}/device")
    for libvirt_dir in ("etc/libvirt/qemu", "run/libvirt/qemu"):  # domain XML, where libvirt is installed
        for name in _listdir(f"{r}/{libvirt_dir}"):
            if name.endswith(".xml"):
                _read(f"{r}/{libvirt_dir}/{name}", 1024 * 1024)
                count += 1
    for pid in _listdir(f"{r}/proc"):
        if pid.isdigit():
            for fd in _listdir(f"{r}/proc/{pid}/fd"):
                _readlink(f"{r}/proc/{pid}/fd/{fd}")
            for name in PROC_FILES:
                _read(f"{r}/proc/{pid}/{name}")
                count += 1
    return count


def agent_collect(root: Path) -> dict:
    from agent.paths import Root
    from agent.snapshot import build

    return build(Root.of(root))


def agent_opens(root: Path) -> int:
    """Files the agent opens in one collection (counted through the interpreter's audit hook)."""
    opened = []

    def hook(event, args):
        if event == "open" and isinstance(args[0], (str, bytes, os.PathLike)):
            opened.append(args[0])

    sys.addaudithook(hook)  # stays installed; harmless after the timed runs
    agent_collect(root)
    return len(opened)


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


CHILD = """
import sys
sys.path.insert(0, {repo!r})
{body}
for line in open("/proc/self/status"):
    if line.startswith("VmHWM:"):
        print(int(line.split()[1]))
"""


def peak_rss_mb(root: Path, body: str) -> float:
    code = CHILD.format(repo=str(REPO), body=body.format(root=str(root)))
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True).stdout
    return int(out.split()[-1]) / 1024


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ports", type=int, default=240, help="root ports to add, each with one NIC (240)")
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (7)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fleet-bench-") as tmp:
        root = Path(tmp) / "host"
        t0 = time.perf_counter()
        sizes = build_tree(root, root_ports=args.ports)
        print(f"tree: {sizes['functions']} PCI functions, {sizes['groups']} IOMMU groups "
              f"(built in {time.perf_counter() - t0:.1f}s from the isolated-nics capture)")

        doc = agent_collect(root)  # warm the page cache and the imports for both sides
        files = baseline(root)
        assert len(doc["devices"]) == sizes["functions"] and len(doc["groups"]) == sizes["groups"], "agent missed part of the tree"
        print(f"agent snapshot: {len(doc['devices'])} devices, {len(doc['groups'])} groups, {len(doc['warnings'])} warnings")

        agent_t, base_t = [], []
        for _ in range(args.runs):  # interleaved so that noise from other processes hits both sides alike
            agent_t.append(timed(lambda: agent_collect(root)))
            base_t.append(timed(lambda: baseline(root)))
        agent_s, base_s = [w for w, _ in agent_t], [w for w, _ in base_t]
        agent_med, base_med = statistics.median(agent_s), statistics.median(base_s)
        ratio = agent_med / base_med
        cpu_ratio = statistics.median(c for _, c in agent_t) / statistics.median(c for _, c in base_t)
        print(f"agent collection: median {agent_med * 1000:.1f} ms over {args.runs} runs "
              f"(min {min(agent_s) * 1000:.1f}, max {max(agent_s) * 1000:.1f})")
        print(f"baseline (plain open+read of the same files: {files} opened, plus the links): median {base_med * 1000:.1f} ms "
              f"(min {min(base_s) * 1000:.1f}, max {max(base_s) * 1000:.1f})")
        print(f"agent files opened per collection: {agent_opens(root)} (baseline: {files})")
        print(f"ratio agent/baseline: {ratio:.2f} wall-clock medians (target <= {RATIO_TARGET}); "
              f"{cpu_ratio:.2f} CPU-time medians; {min(agent_s) / min(base_s):.2f} best runs")

        interp = peak_rss_mb(root, "pass")
        rss = peak_rss_mb(root, "from agent.paths import Root\nfrom agent.snapshot import build\nbuild(Root.of({root!r}))")
        print(f"agent peak RSS: {rss:.1f} MB (bare interpreter {interp:.1f} MB; target <= {RSS_TARGET_MB:.0f} MB)")

    # Both ratios must meet the target: wall time is what a host sees, CPU time is immune to the
    # other processes of a shared machine.
    ok = max(ratio, cpu_ratio) <= RATIO_TARGET and rss <= RSS_TARGET_MB
    print(f"SUMMARY {sizes['functions']} functions/{sizes['groups']} groups: agent {agent_med * 1000:.0f} ms, "
          f"baseline {base_med * 1000:.0f} ms, ratio {ratio:.2f} wall / {cpu_ratio:.2f} CPU (<= {RATIO_TARGET}), "
          f"peak RSS {rss:.1f} MB "
          f"(<= {RSS_TARGET_MB:.0f}) -> {'targets met' if ok else 'TARGETS MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
