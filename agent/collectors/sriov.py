"""SR-IOV facts of one PCI function from its sysfs directory: PF side (`sriov_*`, `virtfnN`) and
VF side (`physfn`). The config-space view of the same capability is in `config_space`."""
from __future__ import annotations

import re

from ..sysfs import Reader
from . import pci  # circular with pci; only used at call time

_VIRTFN_RE = re.compile(r"^virtfn(\d+)$")


def parse_count(text: str | None) -> int | None:
    if text is None:
        return None
    text = text.strip()
    return int(text) if text.isdigit() else None


def parse_autoprobe(text: str | None) -> bool | None:
    return {"1": True, "0": False}.get((text or "").strip())


def _count(rd: Reader, path: str, names: set[str]) -> int | None:
    fname = path.rsplit("/", 1)[-1]
    if fname not in names:
        return None
    text = rd.text(path)
    value = parse_count(text)
    if text is not None and value is None:
        rd.warn(path, f"not a count ({text[:40]!r})")
    return value


def _bdf_link(rd: Reader, path: str) -> str | None:
    name = rd.link_name(path, missing_ok=False)
    if name is not None and not pci.is_bdf(name):
        rd.warn(path, f"link target {name!r} is not a PCI address")
        return None
    return name


def collect(rd: Reader, base: str, names: set[str]) -> dict | None:
    """None when the function is neither a PF (`sriov_totalvfs`) nor a VF (`physfn`)."""
    is_pf = "sriov_totalvfs" in names
    is_vf = "physfn" in names
    if not (is_pf or is_vf):
        return None
    vf_links = sorted(
        (int(m.group(1)), n) for n in names if (m := _VIRTFN_RE.match(n))
    )
    vfs = [bdf for _, n in vf_links if (bdf := _bdf_link(rd, f"{base}/{n}")) is not None]
    autoprobe_text = rd.text(f"{base}/sriov_drivers_autoprobe") if "sriov_drivers_autoprobe" in names else None
    autoprobe = parse_autoprobe(autoprobe_text)
    if autoprobe_text is not None and autoprobe is None:
        rd.warn(f"{base}/sriov_drivers_autoprobe", f"not 0 or 1 ({autoprobe_text[:40]!r})")
    return {
        "total_vfs": _count(rd, f"{base}/sriov_totalvfs", names),
        "num_vfs": _count(rd, f"{base}/sriov_numvfs", names),
        "physfn": _bdf_link(rd, f"{base}/physfn") if is_vf else None,
        "vfs": sorted(vfs),
        "drivers_autoprobe": autoprobe,
    }
