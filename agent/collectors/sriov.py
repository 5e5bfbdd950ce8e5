"""SR-IOV facts of one PCI function from its sysfs directory: PF side (`sriov_*`, `virtfnN`) and
VF side (`physfn`). The config-space view of the same capability is in `config_space`."""
from __future__ import annotations

import re

from ..integers import parse_bool01, parse_int
from ..sysfs import Reader
from .bounds import full_bdf
from .pci_files import device_dir

_VIRTFN_RE = re.compile(r"^virtfn([0-9]+)$")


def _count(rd: Reader, path: str, names: set[str]) -> int | None:
    fname = path.rsplit("/", 1)[-1]
    if fname not in names:
        return None
    return rd.read_int(path, what="a count")


def _bdf_link(rd: Reader, path: str) -> str | None:
    return full_bdf(rd, path, rd.link_name(path, missing_ok=False))


# The kernel creates these three together for every PF (sriov_pf_dev_attrs, drivers/pci/iov.c).
PF_FILES = ("sriov_totalvfs", "sriov_numvfs", "sriov_drivers_autoprobe")


def collect(rd: Reader, base: str, names: set[str]) -> dict | None:
    """None when the function is neither a PF (`sriov_*`) nor a VF (`physfn`)."""
    is_pf = any(f in names for f in PF_FILES)
    is_vf = "physfn" in names
    if not (is_pf or is_vf):
        return None
    if is_pf:
        for fname in PF_FILES:
            if fname not in names:
                rd.warn(f"{base}/{fname}", "missing, though the other SR-IOV files of this PF exist")
    vf_links = sorted(
        (index, n) for n in names if (m := _VIRTFN_RE.match(n)) and (index := parse_int(m.group(1))) is not None
    )
    vfs = [bdf for _, n in vf_links if (bdf := _bdf_link(rd, f"{base}/{n}")) is not None]
    autoprobe_text = rd.text(f"{base}/sriov_drivers_autoprobe") if "sriov_drivers_autoprobe" in names else None
    autoprobe = parse_bool01(autoprobe_text)
    if autoprobe_text is not None and autoprobe is None:
        rd.warn(f"{base}/sriov_drivers_autoprobe", f"not 0 or 1 ({autoprobe_text[:40]!r})")
    num_vfs = _count(rd, f"{base}/sriov_numvfs", names)
    if num_vfs is not None and num_vfs != len(vf_links):
        rd.warn(f"{base}/sriov_numvfs", f"says {num_vfs} VFs but {len(vf_links)} virtfn links exist")
    return {
        "total_vfs": _count(rd, f"{base}/sriov_totalvfs", names),
        "num_vfs": num_vfs,
        "physfn": _bdf_link(rd, f"{base}/physfn") if is_vf else None,
        "vfs": sorted(vfs),
        "drivers_autoprobe": autoprobe,
    }


def cross_check(rd: Reader, devices: list[dict]) -> None:
    """A VF's `physfn` and its PF's `virtfnN` links witness each other; a partial tree loses one."""
    by_bdf = {d["bdf"]: d for d in devices}
    for dev in devices:
        sriov = dev.get("sriov") or {}
        pf = sriov.get("physfn")
        if pf and dev["bdf"] not in ((by_bdf.get(pf) or {}).get("sriov") or {}).get("vfs", []):
            rd.warn(f"{device_dir(dev['bdf'])}/physfn", f"names PF {pf}, which has no virtfn link to this VF")
        for vf in sriov.get("vfs") or []:
            if ((by_bdf.get(vf) or {}).get("sriov") or {}).get("physfn") != dev["bdf"]:
                rd.warn(f"{device_dir(vf)}/physfn", f"missing or not naming {dev['bdf']}, whose virtfn link names this VF")
