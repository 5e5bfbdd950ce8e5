"""Real machines' PCI trees from hwloc's lstopo XML (tests/fixtures/hwloc/*.xml).

hwloc records, per machine, the host bridges, the PCI bridges (`bridge_type="1-1"`)
and the PCI functions below them, each with `pci_busid` and `pci_type`
(`"CCCC [vvvv:dddd] [ssss:ssss] rr[ pp]"`: class, ids, subsystem ids, revision and,
from XML format 3.0 on, the programming interface). It records no IOMMU groups,
drivers or capabilities: fleet.demo.groups and fleet.demo.synth derive those.

`machines()` reads every file once; `Machine.functions` is sorted by BDF and each
function names its upstream bridge (None directly under a host bridge), which is
what a kernel's sysfs path would give.
"""
from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

HWLOC_DIR = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "hwloc"

_PCI_TYPE = re.compile(
    r"^(?P<cls>[0-9a-f]{4}) \[(?P<ven>[0-9a-f]{4}):(?P<dev>[0-9a-f]{4})\] "
    r"\[(?P<sven>[0-9a-f]{4}):(?P<sdev>[0-9a-f]{4})\] (?P<rev>[0-9a-f]{2})(?: (?P<progif>[0-9a-f]{2}))?$"
)
_BRIDGE_PCI = re.compile(r"^(?P<dom>[0-9a-f]{4}):\[(?P<first>[0-9a-f]{2})-(?P<last>[0-9a-f]{2})\]$")
_README_ROW = re.compile(r"^\|\s*`(?P<file>[^`]+)`\s*\|(?P<machine>[^|]*)\|(?P<source>[^|]*)\|\s*$")


@dataclass(frozen=True)
class PciFunction:
    """One PCI function as hwloc saw it."""

    bdf: str
    parent: str | None  # upstream bridge BDF; None directly under a host bridge
    host_bridge: str  # sysfs root segment, e.g. "pci0000:2b"
    is_bridge: bool
    class_code: str  # 6 hex digits (class, subclass, prog-if)
    vendor_id: str
    device_id: str
    subsystem_vendor_id: str
    subsystem_device_id: str
    revision: str
    link_gbps: float | None  # hwloc's pci_link_speed, GB/s; None when 0 (unknown)
    name: str | None  # hwloc's PCIDevice info or subtype
    numa_node: int | None

    @property
    def bus(self) -> str:
        return self.bdf[:7]

    @property
    def slot(self) -> str:
        return self.bdf[:10]

    @property
    def function(self) -> int:
        return int(self.bdf[11], 16)


@dataclass(frozen=True)
class Machine:
    """A real machine's PCI tree and the provenance line to keep with anything derived from it."""

    key: str  # file stem without the "hwloc_" prefix
    file: str
    product: str | None
    vendor: str | None
    cpus: int
    memory_bytes: int
    source: str
    licence: str
    functions: tuple[PciFunction, ...]

    def by_bdf(self) -> dict[str, PciFunction]:
        return {f.bdf: f for f in self.functions}


def parse_pci_type(value: str) -> dict:
    """`"0302 [10de:1db8] [10de:131d] a1 00"` -> ids, class (with prog-if) and revision."""
    m = _PCI_TYPE.match(value.strip().lower())
    if not m:
        raise ValueError(f"unexpected pci_type {value!r}")
    return {
        "class_code": m["cls"] + (m["progif"] or "00"),
        "vendor_id": m["ven"],
        "device_id": m["dev"],
        "subsystem_vendor_id": m["sven"],
        "subsystem_device_id": m["sdev"],
        "revision": m["rev"],
    }


def provenance(hwloc_dir: Path = HWLOC_DIR) -> dict[str, tuple[str, str]]:
    """file name -> (source, licence), read from the README table so the line is copied, not retyped."""
    out = {}
    readme = hwloc_dir / "README.md"
    for line in readme.read_text(encoding="utf-8").splitlines():
        m = _README_ROW.match(line.strip())
        if not m or m["file"] == "file":
            continue
        source = m["source"].strip()
        licence = ""
        lm = re.search(r"\(([^()]*)\)\s*$", source)
        if lm:
            licence = lm.group(1).strip()
            source = source[: lm.start()].strip()
        out[m["file"]] = (source.replace("`", ""), licence)
    return out


def _info(obj: ET.Element, name: str) -> str | None:
    for info in obj.findall("info"):
        if info.get("name") == name:
            return info.get("value")
    return None


def parse(path: Path, *, source: str = "", licence: str = "") -> Machine:
    """Parse one lstopo XML file into a Machine."""
    tree = ET.parse(path)
    top = tree.getroot()
    machine = top.find("object")
    functions: list[PciFunction] = []

    def walk(obj: ET.Element, parent: str | None, host_bridge: str | None, numa: int | None) -> None:
        kind = obj.get("type")
        busid = obj.get("pci_busid")
        if kind == "Bridge" and not busid:
            m = _BRIDGE_PCI.match(obj.get("bridge_pci", ""))
            host = f"pci{m['dom']}:{m['first']}" if m else host_bridge
            for child in obj.findall("object"):
                walk(child, None, host, numa)
            return
        if kind in ("Bridge", "PCIDev") and busid:
            ids = parse_pci_type(obj.get("pci_type", ""))
            speed = float(obj.get("pci_link_speed") or 0) or None
            bdf = busid.lower()
            functions.append(
                PciFunction(
                    bdf=bdf,
                    parent=parent,
                    host_bridge=host_bridge or f"pci{bdf[:7]}",
                    is_bridge=kind == "Bridge",
                    link_gbps=speed,
                    name=_info(obj, "PCIDevice") or obj.get("subtype"),
                    numa_node=numa,
                    **ids,
                )
            )
            if kind == "Bridge":
                for child in obj.findall("object"):
                    walk(child, bdf, host_bridge, numa)
            return
        for child in obj.findall("object"):
            walk(child, parent, host_bridge, _numa_of(obj, numa))

    walk(machine, None, None, None)
    cpus = sum(1 for o in machine.iter("object") if o.get("type") == "PU")
    memory = sum(int(o.get("local_memory") or 0) for o in machine.iter("object") if o.get("type") == "NUMANode")
    key = path.stem.removeprefix("hwloc_")
    return Machine(
        key=key,
        file=path.name,
        product=_info(machine, "DMIProductName"),
        vendor=_info(machine, "DMIBoardVendor") or _info(machine, "DMISysVendor"),
        cpus=cpus,
        memory_bytes=memory,
        source=source,
        licence=licence,
        functions=tuple(sorted(functions, key=lambda f: f.bdf)),
    )


def _numa_of(obj: ET.Element, inherited: int | None) -> int | None:
    """The NUMA node of an I/O subtree: hwloc hangs it below the object whose nodeset is its locality."""
    nodeset = obj.get("nodeset")
    if not nodeset:
        return inherited
    try:
        bits = int(nodeset.replace(",", ""), 16)
    except ValueError:
        return inherited
    if bits and bits & (bits - 1) == 0:
        return bits.bit_length() - 1
    return inherited


@lru_cache(maxsize=None)
def machines(hwloc_dir: Path = HWLOC_DIR) -> dict[str, Machine]:
    """Every machine in the directory, keyed by Machine.key."""
    prov = provenance(hwloc_dir)
    out = {}
    for path in sorted(hwloc_dir.glob("*.xml")):
        source, licence = prov.get(path.name, ("", ""))
        m = parse(path, source=source, licence=licence)
        out[m.key] = m
    return out
