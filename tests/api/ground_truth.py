"""Independent parsers of a capture's ground-truth files (lspci -Dnnk, find /sys/kernel/iommu_groups)."""
import re
from pathlib import Path

_HEAD = re.compile(r"^(?P<bdf>[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) .*\[(?P<vendor>[0-9a-f]{4}):(?P<device>[0-9a-f]{4})\]")


def lspci_devices(root: Path) -> dict[str, dict]:
    """BDF -> {vendor, device, driver} from ground-truth/lspci-Dnnk.txt."""
    out: dict[str, dict] = {}
    current = None
    for line in (root / "ground-truth" / "lspci-Dnnk.txt").read_text().splitlines():
        m = _HEAD.match(line)
        if m:
            current = {"vendor": m["vendor"], "device": m["device"], "driver": None}
            out[m["bdf"]] = current
        elif current is not None and line.strip().startswith("Kernel driver in use:"):
            current["driver"] = line.split(":", 1)[1].strip()
    return out


def iommu_groups(root: Path) -> dict[int, set[str]]:
    """group number -> member BDFs from ground-truth/find-iommu-groups.txt."""
    out: dict[int, set[str]] = {}
    for line in (root / "ground-truth" / "find-iommu-groups.txt").read_text().split():
        parts = line.split("/")
        out.setdefault(int(parts[4]), set()).add(parts[6])
    return out
