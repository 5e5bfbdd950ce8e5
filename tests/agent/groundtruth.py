"""Independent parsers of the `ground-truth/` files written by lspci, find, dmesg and QEMU in the same
boot as each capture. Nothing here imports the agent: these are the witnesses the agent is checked against."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_DNN_RE = re.compile(
    r"^(?P<bdf>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*?\[(?P<cls>[0-9a-f]{4})\]: "
    r".*\[(?P<ven>[0-9a-f]{4}):(?P<dev>[0-9a-f]{4})\](?: \(rev (?P<rev>[0-9a-f]{2})\))?$"
)
_VVV_HEAD_RE = re.compile(r"^(?P<addr>(?:[0-9a-f]{4}:)?[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ")
_PROGIF_RE = re.compile(r"\(prog-if (?P<pi>[0-9a-f]{2})")
_CAP_RE = re.compile(r"^\tCapabilities: (?:\[[0-9a-f]+(?: v\d+)?\] )?(?P<what>.*)$")
_FLAG_RE = re.compile(r"(\w+)([+-])")

# lspci's words for the PCIe port type (ls-caps.c cap_express) -> the snapshot's names.
LSPCI_PORT_TYPES = {
    "Endpoint": "endpoint",
    "Legacy Endpoint": "legacy_endpoint",
    "Root Port": "root_port",
    "Upstream Port": "upstream_port",
    "Downstream Port": "downstream_port",
    "PCI-Express to PCI/PCI-X Bridge": "pcie_to_pci_bridge",
    "PCI/PCI-X to PCI-Express Bridge": "pci_to_pcie_bridge",
    "Root Complex Integrated Endpoint": "rc_integrated_endpoint",
    "Root Complex Event Collector": "rc_event_collector",
}
LSPCI_ACS_FLAGS = {"SrcValid": "sv", "TransBlk": "tb", "ReqRedir": "rr", "CmpltRedir": "cr",
                   "UpstreamFwd": "uf", "EgressCtrl": "ec", "DirectTrans": "dt"}


def gt(root: Path, name: str) -> Path:
    return Path(root) / "ground-truth" / name


def find_groups(root: Path) -> set[tuple[int, str]]:
    """(group, BDF) pairs from `find /sys/kernel/iommu_groups/ -type l`."""
    pairs = set()
    for line in gt(root, "find-iommu-groups.txt").read_text().splitlines():
        parts = line.strip().split("/")
        if len(parts) == 7 and parts[5] == "devices":
            pairs.add((int(parts[4]), parts[6]))
    return pairs


def lspci_dnn(root: Path) -> dict[str, dict]:
    """BDF -> {vendor, device, class4, revision} from `lspci -Dnn`."""
    return parse_lspci_dnn(gt(root, "lspci-Dnn.txt").read_text())


def parse_lspci_dnn(text: str) -> dict[str, dict]:
    out = {}
    for line in text.splitlines():
        m = _DNN_RE.match(line.strip())
        assert m, f"unparsed lspci -Dnn line: {line!r}"
        out[m["bdf"]] = {"vendor": m["ven"], "device": m["dev"], "class4": m["cls"], "revision": m["rev"] or "00"}
    return out


def lspci_drivers(root: Path) -> dict[str, dict]:
    """BDF -> {driver (None when no `Kernel driver in use:`), subsystem (ven, dev) or None} from `lspci -Dnnk`."""
    return parse_lspci_k(gt(root, "lspci-Dnnk.txt").read_text())


def parse_lspci_k(text: str) -> dict[str, dict]:
    out: dict[str, dict] = {}
    current = None
    for line in text.splitlines():
        if line.startswith("lspci: "):
            continue  # lspci's own complaints (e.g. "Unable to load libkmod resources")
        if line and not line[0].isspace():
            current = line.split()[0]
            out[current] = {"driver": None, "subsystem": None}
        elif current and "Kernel driver in use:" in line:
            out[current]["driver"] = line.split(":", 1)[1].strip()
        elif current and line.strip().startswith("Subsystem:"):
            m = re.search(r"\[([0-9a-f]{4}):([0-9a-f]{4})\]$", line.strip())
            out[current]["subsystem"] = (m[1], m[2]) if m else None
    return out


@dataclass
class LspciDevice:
    bdf: str
    prog_if: str = "00"
    iommu_group: int | None = None
    access_denied: bool = False
    caps: list[str] = field(default_factory=list)
    express: str | None = None
    acs_cap: dict | None = None
    acs_ctl: dict | None = None
    ats_enabled: bool | None = None
    pri_enabled: bool | None = None
    pasid: dict | None = None
    sriov: dict | None = None
    secondary_bus: str | None = None


def _flags(text: str, names: dict) -> dict:
    return {names[k]: v == "+" for k, v in _FLAG_RE.findall(text) if k in names}


def _ints(text: str) -> dict[str, int]:
    return {k.strip(): int(v) for k, v in re.findall(r"([A-Za-z ]+): (\d+)", text)}


def lspci_vvv(root: Path) -> dict[str, LspciDevice]:
    """BDF -> what `lspci -vvvnn` decoded for it (addresses without a domain are in 0000)."""
    return parse_lspci_vvv(gt(root, "lspci-vvvnn.txt").read_text())


def parse_lspci_vvv(text: str) -> dict[str, LspciDevice]:
    out: dict[str, LspciDevice] = {}
    dev: LspciDevice | None = None
    for line in text.splitlines():
        head = _VVV_HEAD_RE.match(line)
        if head:
            addr = head["addr"]
            bdf = addr if addr.count(":") == 2 else f"0000:{addr}"
            dev = out[bdf] = LspciDevice(bdf)
            pi = _PROGIF_RE.search(line)
            if pi:
                dev.prog_if = pi["pi"]
            continue
        if dev is None:
            continue
        s = line.strip()
        cap = _CAP_RE.match(line)
        if cap:
            what = cap["what"]
            if what.startswith("<access denied>"):
                dev.access_denied = True
            dev.caps.append(what)
            m = re.match(r"Express \(v\d\) (.*?)(?: \(Slot[+-]\))?, (?:MSI|IntMsgNum)", what)
            if m:
                dev.express = m[1]
            if what.startswith("Address Translation Service"):
                dev.ats_enabled = None
            if what.startswith("Page Request Interface"):
                dev.pri_enabled = None
            if what.startswith("Process Address Space ID"):
                dev.pasid = {}
            if what.startswith("Single Root I/O Virtualization"):
                dev.sriov = {}
        elif s.startswith("IOMMU group:"):
            dev.iommu_group = int(s.split(":")[1])
        elif s.startswith("Bus: primary="):
            dev.secondary_bus = re.search(r"secondary=([0-9a-f]{2})", s)[1]
        elif s.startswith("ACSCap:"):
            dev.acs_cap = _flags(s, LSPCI_ACS_FLAGS)
        elif s.startswith("ACSCtl:"):
            dev.acs_ctl = _flags(s, LSPCI_ACS_FLAGS)
        elif s.startswith("ATSCtl:"):
            dev.ats_enabled = "Enable+" in s
        elif s.startswith("PRICtl:"):
            dev.pri_enabled = "Enable+" in s
        elif s.startswith("PASIDCap:") and dev.pasid is not None:
            dev.pasid.update(exec="Exec+" in s, priv="Priv+" in s,
                             width=int(re.search(r"Max PASID Width: ([0-9a-f]+)", s)[1], 16))
        elif s.startswith("PASIDCtl:") and dev.pasid is not None:
            dev.pasid["enabled"] = "Enable+" in s
        elif s.startswith("IOVCtl:") and dev.sriov is not None:
            dev.sriov["vf_enable"] = "Enable+" in s
        elif s.startswith("Initial VFs:") and dev.sriov is not None:
            n = _ints(s)
            dev.sriov.update(initial_vfs=n["Initial VFs"], total_vfs=n["Total VFs"], num_vfs=n["Number of VFs"])
        elif s.startswith("VF offset:") and dev.sriov is not None:
            m = re.match(r"VF offset: (\d+), stride: (\d+), Device ID: ([0-9a-f]{4})", s)
            dev.sriov.update(vf_offset=int(m[1]), vf_stride=int(m[2]), vf_device_id=m[3])
    return out


_TREE_ROOT_RE = re.compile(r"\[([0-9a-f]{4}):([0-9a-f]{2})\]")
_TREE_ENTRY_RE = re.compile(r"([0-9a-f]{2}\.[0-7])(?:-\[([0-9a-f]{2})(?:-[0-9a-f]{2})?\])?")


def lspci_tree_parents(root: Path) -> dict[str, str | None]:
    """BDF -> BDF of the bridge above it (None on a root bus), from the drawing of `lspci -tvnn`.

    Each entry's column says where it hangs: an entry belongs to the nearest bridge to its left
    (by column) whose subtree is still open; a bridge opens a subtree on its secondary bus."""
    return parse_lspci_tree(gt(root, "lspci-tvnn.txt").read_text())


def parse_lspci_tree(text: str) -> dict[str, str | None]:
    parents: dict[str, str | None] = {}
    stack: list[tuple[int, str | None, str]] = []
    domain = "0000"
    for line in text.splitlines():
        name_at = re.search(r"[0-9a-f]{2}\.[0-7](?:-\[[^\]]*\])?  ", line)
        tree = line[: name_at.end() - 2] if name_at else line
        r = _TREE_ROOT_RE.search(tree)
        if r:
            domain = r[1]
            stack = [(r.start(), None, r[2])]
            tree_from = r.end()
        else:
            tree_from = 0
        for m in _TREE_ENTRY_RE.finditer(tree, tree_from):
            col = m.start()
            while stack and stack[-1][0] >= col:
                stack.pop()
            _, parent, bus = stack[-1]
            bdf = f"{domain}:{bus}:{m[1]}"
            parents[bdf] = parent
            if m[2]:
                stack.append((col, bdf, m[2]))
    return parents


def qemu_intel_iommu_options(root: Path) -> dict[str, str] | None:
    """Options of `-device intel-iommu,...` in the QEMU command line, or None without one."""
    text = gt(root, "qemu-cmdline.txt").read_text().replace("\\,", ",").replace("\\ ", " ")
    m = re.search(r"-device intel-iommu((?:,[^ ,]+)*)", text)
    if not m:
        return None
    return dict(opt.partition("=")[::2] for opt in m[1].split(",") if opt)


def dmesg_lines(root: Path) -> list[str]:
    return gt(root, "dmesg.txt").read_text(errors="replace").splitlines()


def dmesg_dmar_registers(root: Path) -> dict[str, dict]:
    """`DMAR: dmar0: reg_base_addr fed90000 ver 1:0 cap d2008c22260206 ecap f00f4a` -> per unit."""
    out = {}
    for line in dmesg_lines(root):
        m = re.search(r"DMAR: (dmar\d+): reg_base_addr (\S+) ver (\S+) cap (\S+) ecap (\S+)", line)
        if m:
            out[m[1]] = {"address": m[2], "version": m[3], "cap": m[4], "ecap": m[5]}
    return out


def dmesg_irq_remapping_enabled(root: Path) -> bool:
    return any("DMAR-IR: Enabled IRQ remapping" in line for line in dmesg_lines(root))


def dmesg_default_domain(root: Path) -> str | None:
    """`iommu: Default domain type: Translated` / `Passthrough`."""
    for line in dmesg_lines(root):
        m = re.search(r"iommu: Default domain type: (\w+)", line)
        if m:
            return m[1]
    return None


def dmesg_group_adds(root: Path) -> set[tuple[int, str]]:
    """(group, BDF) from `pci 0000:00:02.0: Adding to iommu group 1`."""
    out = set()
    for line in dmesg_lines(root):
        m = re.search(r"pci (\S+): Adding to iommu group (\d+)", line)
        if m:
            out.add((int(m[2]), m[1]))
    return out


def setup_driver_overrides(root: Path) -> dict[str, str]:
    """BDF -> driver_override the capture's setup script wrote (`+ 0000:01:00.0: driver_override=vfio-pci ...`)."""
    out = {}
    for line in gt(root, "setup.log").read_text(errors="replace").splitlines():
        m = re.match(r"^\+ (\S+): driver_override=(\S+)", line)
        if m:
            out[m[1]] = m[2]
    return out
