"""VFIO, iommufd and UIO device nodes, per-device VFIO cdevs, and the module parameters that weaken isolation.

Device nodes cannot live in a captured tree (nor in git), so a captured root records them in
`<root>/dev-nodes.tsv` (one `ls -ln` line per node: `crw------- 64055 64055 246:0 /dev/vfio/6`);
a live root is stat'ed directly.
"""
from __future__ import annotations

import os
import re
import stat

from ..integers import parse_int
from ..sysfs import Reader
from .bounds import bounded, full_bdf

DEV_NODES_TSV = "/dev-nodes.tsv"

PARAMETERS = {
    "enable_unsafe_noiommu_mode": "/sys/module/vfio/parameters/enable_unsafe_noiommu_mode",
    "type1_allow_unsafe_interrupts": "/sys/module/vfio_iommu_type1/parameters/allow_unsafe_interrupts",
    "iommufd_allow_unsafe_interrupts": "/sys/module/iommufd/parameters/allow_unsafe_interrupts",
    "disable_denylist": "/sys/module/vfio_pci/parameters/disable_denylist",
    "enable_sriov": "/sys/module/vfio_pci/parameters/enable_sriov",
}

# The modules whose presence says which VFIO paths a host can use (legacy type1, iommufd).
MODULES = ("vfio", "vfio_iommu_type1", "vfio_pci", "iommufd")

_GROUP = re.compile(r"^/dev/vfio/([0-9]{1,10})$")
_NOIOMMU = re.compile(r"^/dev/vfio/noiommu-([0-9]{1,10})$")
_CDEV = re.compile(r"^/dev/vfio/devices/(vfio[0-9]+)$")
_UIO = re.compile(r"^/dev/(uio[0-9]+)$")
_RDEV = re.compile(r"^[0-9]+:[0-9]+$")


def empty() -> dict:
    return {"noiommu": False, "iommufd": False, "nodes": [], "parameters": {}, "cdevs": [],
            "cdev_support": None, "modules": {name: None for name in MODULES}}


# ---- pure parsing -------------------------------------------------------------------------

def node_kind(path: str) -> tuple[str, int | None] | None:
    """(kind, group id) for a node path, None for a path that is not one of ours."""
    if path == "/dev/vfio/vfio":
        return "container", None
    if path == "/dev/iommu":
        return "iommufd", None
    if m := _GROUP.match(path):
        return "group", parse_int(m.group(1))
    if m := _NOIOMMU.match(path):
        return "noiommu_group", parse_int(m.group(1))
    if _CDEV.match(path):
        return "device", None
    if _UIO.match(path):
        return "uio", None
    return None


_SPECIAL = ((0o4000, "sS"), (0o2000, "sS"), (0o1000, "tT"))


def node_devices(vfio: dict) -> tuple[dict[str, str], dict[str, str]]:
    """(cdev node path -> BDF, uio node path -> BDF) from a document's `vfio` section: the cdevs'
    `/sys/class/vfio-dev/vfioX/device` links and the uio nodes' device links."""
    cdevs = {f"/dev/vfio/devices/{c['name']}": c["device"] for c in _list(vfio.get("cdevs"))
             if isinstance(c, dict) and isinstance(c.get("name"), str) and isinstance(c.get("device"), str)}
    for n in _list(vfio.get("nodes")):  # a tree without /sys/class/vfio-dev: the device's own vfio-dev/ entry
        if isinstance(n, dict) and n.get("kind") == "device" and isinstance(n.get("path"), str) and isinstance(n.get("device"), str):
            cdevs.setdefault(n["path"], n["device"])
    uio = {n["path"]: n["device"] for n in _list(vfio.get("nodes"))
           if isinstance(n, dict) and n.get("kind") == "uio" and isinstance(n.get("path"), str) and isinstance(n.get("device"), str)}
    return cdevs, uio


def _list(value) -> list:
    return value if isinstance(value, list) else []


def ls_mode_to_octal(mode: str) -> str | None:
    """`crw-rw----` -> `"0660"`, setuid/setgid/sticky included; None when it is not an `ls` mode."""
    if len(mode) != 10:
        return None
    value = 0
    for triplet, (special, letters) in enumerate(_SPECIAL):
        r, w, x = mode[1 + 3 * triplet: 4 + 3 * triplet]
        shift = 6 - 3 * triplet
        if r not in "r-" or w not in "w-" or x not in "x-" + letters:
            return None
        value |= (r == "r") << (shift + 2) | (w == "w") << (shift + 1)
        if x == "x" or x == letters[0]:
            value |= 1 << shift
        if x in letters:
            value |= special
    return "%04o" % value


def parse_dev_nodes(text: str) -> tuple[list[dict], list[int]]:
    """Rows of dev-nodes.tsv as {path, mode, uid, gid, rdev}; also the 1-based numbers of unparsable lines."""
    rows, bad = [], []
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            bad.append(number)
            continue
        mode, uid, gid, rdev, path = fields
        octal, uid, gid = ls_mode_to_octal(mode), parse_int(uid), parse_int(gid)
        if octal is None or uid is None or gid is None or not _RDEV.match(rdev):
            bad.append(number)
            continue
        rows.append({"path": path, "mode": octal, "uid": uid, "gid": gid, "rdev": rdev})
    return rows, bad


def is_enabled(value: str | None) -> bool:
    return value is not None and value.strip() in ("Y", "y", "1")


# ---- reading ------------------------------------------------------------------------------

def _stat_node(path: str) -> dict | None:
    try:
        st = os.lstat(path)  # never follow a link out of the root
    except OSError:
        return None
    if not stat.S_ISCHR(st.st_mode):
        return None
    rdev = f"{os.major(st.st_rdev)}:{os.minor(st.st_rdev)}"
    return {"path": path, "mode": "%04o" % (st.st_mode & 0o7777), "uid": st.st_uid, "gid": st.st_gid, "rdev": rdev}


def _live_nodes(rd: Reader) -> list[dict]:
    paths = [f"/dev/vfio/{n}" for n in rd.listdir("/dev/vfio", missing_ok=True)]
    paths += [f"/dev/vfio/devices/{n}" for n in rd.listdir("/dev/vfio/devices", missing_ok=True)]
    paths += ["/dev/iommu"]
    paths += [f"/dev/{n}" for n in rd.listdir("/dev", missing_ok=True) if _UIO.match(f"/dev/{n}")]
    nodes = []
    for path in paths:
        if node_kind(path) is None:
            continue
        row = _stat_node(str(rd.root.path(path)))
        if row is not None:
            row["path"] = path
            nodes.append(row)
    return nodes


def _captured_nodes(rd: Reader) -> tuple[list[dict], set[str]]:
    """The nodes of a captured root, and the paths of lines too garbled to parse (the node exists,
    its mode or owner is unknown)."""
    if not rd.exists(DEV_NODES_TSV):
        if rd.exists("/dev"):
            return _live_nodes(rd), set()  # a mounted host root with real nodes
        rd.warn(DEV_NODES_TSV, "missing, and the root has no /dev: VFIO device nodes unknown")
        return [], set()
    text = rd.text(DEV_NODES_TSV, "")
    rows, bad = parse_dev_nodes(text)
    if bad:
        rd.warn(DEV_NODES_TSV, f"unparsable line(s) {', '.join(map(str, bad[:10]))}")
    lines = text.splitlines()
    unparsed = {lines[n - 1].split()[-1] for n in bad if lines[n - 1].split()}
    return [r for r in rows if node_kind(r["path"]) is not None], unparsed


def _cdevs(rd: Reader) -> list[dict]:
    out = []
    for name in rd.listdir("/sys/class/vfio-dev", missing_ok=True):
        base = f"/sys/class/vfio-dev/{name}"
        # `dev` only exists from 6.6 (the cdev); before that the class device has no node.
        rdev = rd.text(f"{base}/dev", missing_ok=True)
        if rdev is not None and not _RDEV.match(rdev):
            rd.warn(f"{base}/dev", f"not major:minor: {rdev[:40]!r}")
            rdev = None
        device = full_bdf(rd, f"{base}/device", rd.link_name(f"{base}/device"))
        out.append({"name": rd.printable(base, name), "device": device, "rdev": rdev})
    return out


def _cdev_owner(rd: Reader, devices: list[dict], cdev: str) -> str | None:
    """The device whose own `vfio-dev/` directory holds `cdev`, for a tree without /sys/class/vfio-dev."""
    for d in devices:
        if d.get("path") and cdev in rd.listdir(f"/sys/devices/{d['path']}/vfio-dev", missing_ok=True):
            return d.get("bdf")
    return None


def parse_proc_modules(text: str) -> set[str]:
    """Names of the loaded modules, the first field of each `/proc/modules` line."""
    return {line.split()[0] for line in text.splitlines() if line.split()}


def _modules(rd: Reader) -> dict:
    """Each module: loaded (listed in /proc/modules, or built in: /sys/module/<name> exists) or not;
    null when neither says (no /proc/modules, and the tree has no such /sys/module entry)."""
    text = rd.text("/proc/modules", missing_ok=True)
    loaded = parse_proc_modules(text) if text is not None else None
    out = {}
    for name in MODULES:
        if (loaded is not None and name in loaded) or rd.exists(f"/sys/module/{name}"):
            out[name] = True
        else:
            out[name] = False if loaded is not None else None
    return out


def cdev_support(cdevs: list[dict], nodes: list[dict]) -> bool | None:
    """Per-device cdevs (CONFIG_VFIO_DEVICE_CDEV): a `/dev/vfio/devices/vfioX` node or a class device
    with a `dev` number says yes; class devices without one (6.1-6.5, or the option off) say no;
    with no device on vfio-pci there is nothing to tell by (null)."""
    if any(n.get("kind") == "device" for n in nodes) or any(c.get("rdev") for c in cdevs):
        return True
    return False if cdevs else None


def collect(rd: Reader, devices: list[dict], groups: list[dict]) -> dict:
    nodes, unparsed = (_live_nodes(rd), set()) if rd.root.is_live else _captured_nodes(rd)
    cdevs = _cdevs(rd)
    cdev_device = {c["name"]: c["device"] for c in cdevs}
    known_bdfs = {d.get("bdf") for d in devices}
    known_groups = {g.get("id") for g in groups}
    out_nodes = []
    for row in sorted(nodes, key=lambda r: r["path"]):
        kind, group = node_kind(row["path"])
        device = None
        if kind == "uio":
            name = row["path"].rsplit("/", 1)[-1]
            device = full_bdf(rd, f"/sys/class/uio/{name}/device", rd.link_name(f"/sys/class/uio/{name}/device"))
        elif kind == "device":
            name = row["path"].rsplit("/", 1)[-1]
            device = cdev_device.get(name) or _cdev_owner(rd, devices, name)
        if group is not None and known_groups and group not in known_groups:
            # A node without its group: a partial tree, or a capture taken while the group went away.
            rd.warn(row["path"], f"VFIO node for IOMMU group {group}, which /sys/kernel/iommu_groups does not list")
        if device is not None and known_bdfs and device not in known_bdfs:
            rd.warn(row["path"], f"device {device!r} is not a PCI function of this host")
        out_nodes.append({**row, "kind": kind, "group": group, "device": device})
    parameters = {key: bounded(rd, path, rd.text(path, missing_ok=True)) for key, path in PARAMETERS.items()}
    noiommu = is_enabled(parameters["enable_unsafe_noiommu_mode"]) or any(n["kind"] == "noiommu_group" for n in out_nodes)
    return {
        "noiommu": noiommu,
        "iommufd": any(n["kind"] == "iommufd" for n in out_nodes) or "/dev/iommu" in unparsed,
        "nodes": out_nodes,
        "parameters": parameters,
        "cdevs": cdevs,
        "cdev_support": cdev_support(cdevs, out_nodes),
        "modules": _modules(rd),
    }
