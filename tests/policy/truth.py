"""Ground truth of a capture, parsed here from the independent tools' output (lspci, find, dmesg, ps).

Nothing in this module uses the agent or the policy code: the tests compare the engine's
findings with facts derived from these files.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

UIO = {"uio_pci_generic", "igb_uio"}


@dataclass
class Truth:
    hostname: str
    groups: dict[int, set[str]] = field(default_factory=dict)  # find /sys/kernel/iommu_groups -type l
    group_types: dict[int, str] = field(default_factory=dict)  # iommu-groups-summary.txt
    drivers: dict[str, str | None] = field(default_factory=dict)  # lspci -Dnnk "Kernel driver in use"
    classes: dict[str, str] = field(default_factory=dict)  # lspci -Dnn [cccc]
    cmdline: str = ""  # dmesg "Command line:"
    kernel: str = ""  # dmesg "Linux version"
    intel_cap: int | None = None  # dmesg "dmar0: … cap X ecap Y"
    intel_ecap: int | None = None
    vm_devices: dict[str, str] = field(default_factory=dict)  # BDF -> VM/workload name, from ps.txt
    acs_ctl: dict[str, dict[str, bool]] = field(default_factory=dict)  # lspci -vvv ACSCtl per device
    express: dict[str, str] = field(default_factory=dict)  # lspci -vvv "Express (v2) <port type>"
    ats_enabled: set[str] = field(default_factory=set)  # lspci -vvv "ATSCtl: Enable+"
    node_modes: dict[str, int] = field(default_factory=dict)  # dev-nodes.tsv (ls -ln): path -> permission bits

    def group_of(self, bdf: str) -> int | None:
        return next((g for g, members in self.groups.items() if bdf in members), None)

    def is_bridge(self, bdf: str) -> bool:
        return self.classes.get(bdf, "").startswith("06")

    def assigned(self) -> set[str]:
        by_driver = {b for b, d in self.drivers.items() if d and ("vfio" in d or d in UIO)}
        return by_driver | {b for b in self.vm_devices if not self.is_bridge(b)}

    def host_dma(self) -> set[str]:
        return {b for b, d in self.drivers.items() if d and d not in ("pcieport", "pci-stub") and b not in self.assigned()}


def parse(root: Path) -> Truth:
    gt = root / "ground-truth"
    truth = Truth(hostname=(root / "etc" / "hostname").read_text().strip())
    for line in (gt / "find-iommu-groups.txt").read_text().splitlines():
        m = re.match(r"/sys/kernel/iommu_groups/(\d+)/devices/(\S+)", line)
        if m:
            truth.groups.setdefault(int(m.group(1)), set()).add(m.group(2))
    summary = gt / "iommu-groups-summary.txt"
    for line in summary.read_text().splitlines() if summary.exists() else []:
        m = re.match(r"group (\d+) type=(\S+)", line)
        if m:
            truth.group_types[int(m.group(1))] = m.group(2)
    current = None
    for line in (gt / "lspci-Dnnk.txt").read_text().splitlines():
        m = re.match(r"([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*?\[([0-9a-f]{4})\]: ", line)
        if m:
            current = m.group(1)
            truth.drivers[current] = None
            truth.classes[current] = m.group(2)
        elif current and line.strip().startswith("Kernel driver in use:"):
            truth.drivers[current] = line.split(":", 1)[1].strip()
    current = None
    for line in (gt / "lspci-vvvnn.txt").read_text().splitlines():
        m = re.match(r"((?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ", line)
        if m:
            current = m.group(1) if m.group(1).count(":") == 2 else f"0000:{m.group(1)}"
        elif current and (m := re.search(r"Express \(v\d\) ([^,(]+)", line)):
            truth.express[current] = m.group(1).strip()
        elif current and re.search(r"ATSCtl:\s*Enable\+", line):
            truth.ats_enabled.add(current)
        elif current and "ACSCtl:" in line:
            truth.acs_ctl[current] = {k: v == "+" for k, v in re.findall(r"(\w+)([+-])", line.split("ACSCtl:", 1)[1])}
    dmesg = (gt / "dmesg.txt").read_text()
    m = re.search(r"Command line: (.*)", dmesg)
    truth.cmdline = m.group(1).strip() if m else ""
    m = re.search(r"Linux version (\S+)", dmesg)
    truth.kernel = m.group(1) if m else ""
    m = re.search(r"dmar\d+: reg_base_addr \S+ ver \S+ cap ([0-9a-f]+) ecap ([0-9a-f]+)", dmesg)
    if m:
        truth.intel_cap, truth.intel_ecap = int(m.group(1), 16), int(m.group(2), 16)
    nodes = root / "dev-nodes.tsv"
    for line in nodes.read_text().splitlines() if nodes.exists() else []:
        parts = line.split()
        if len(parts) == 5:
            bits = parts[0][1:10]
            truth.node_modes[parts[4]] = sum(1 << (8 - i) for i, c in enumerate(bits) if c != "-")
    for line in (gt / "ps.txt").read_text().splitlines():
        name = re.search(r"-name (?:guest=)?([^,\s]+)", line) or re.search(r"--file-prefix[= ](\S+)", line)
        if not name:
            continue
        for bdf in re.findall(r"host=([0-9a-f:.]+)", line) + re.findall(r"(?:-a|--allow|-w) ([0-9a-f:.]+)", line):
            truth.vm_devices[bdf] = name.group(1)
    return truth
