"""Processes holding a VFIO, iommufd or UIO fd, and the VM or workload each belongs to.

psutil's `open_files()` lists regular files only and never shows these fds, so `/proc/<pid>/fd`
is walked with `readlink`. Attribution (DOMAIN.md §5) comes from pure parsers of the QEMU argv,
the libvirt machine cgroup and DPDK EAL arguments, all tested on literal strings.
"""
from __future__ import annotations

import json
import os
import pwd
import re
from datetime import datetime, timezone

import psutil

from ..bdf import parse_bdf
from ..integers import parse_int
from ..sysfs import Reader
from .bounds import ARG_MAX, CMDLINE_ARGS_MAX, bounded, full_bdf
from .vfio import node_devices, node_kind

VFIO_DEVICE_FD = "anon_inode:[vfio-device]"
MAX_CMDLINE = 256 * 1024

_HELD_GROUP = re.compile(r"^/dev/vfio/(?:noiommu-)?([0-9]{1,10})$")
_SCOPE = re.compile(r"machine-(.+)\.scope$")
_QEMU_SCOPE_PREFIX = re.compile(r"^qemu-[0-9]+-")
_HEX_ESCAPE = re.compile(r"\\x([0-9a-fA-F]{2})")


# ---- pure parsing -------------------------------------------------------------------------

def is_held_node(target: str) -> bool:
    """An fd target that gives DMA-capable access: VFIO group/container/device, iommufd or UIO."""
    return (target.startswith("/dev/vfio/") or target == "/dev/iommu" or target == VFIO_DEVICE_FD
            or re.match(r"^/dev/uio[0-9]+$", target) is not None)


def parse_cmdline(raw: bytes) -> list[str]:
    """NUL-separated argv; a trailing NUL does not make an empty last argument."""
    if raw.endswith(b"\x00"):
        raw = raw[:-1]
    if not raw:
        return []
    return [part.decode("utf-8", errors="replace") for part in raw.split(b"\x00")]


def parse_status(text: str) -> dict:
    """`Key:\tvalue` lines of /proc/<pid>/status."""
    out = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def status_uid(status: dict) -> int | None:
    """The real uid: the first of `Uid:`'s four numbers."""
    first = (status.get("Uid") or "").split()[:1]
    return parse_int(first[0]) if first else None


def status_kb(status: dict, key: str) -> int | None:
    """`VmPin:\t  2048 kB` -> 2048."""
    parts = (status.get(key) or "").split()
    return parse_int(parts[0]) if len(parts) == 2 and parts[1] == "kB" else None


def qemu_options(value: str) -> list[str]:
    """Split a QEMU option value on commas, where `,,` is an escaped comma."""
    return [part.replace("\x00", ",") for part in value.replace(",,", "\x00").split(",")]


def _option_values(argv: list[str], names: tuple[str, ...]) -> list[str]:
    """Values of `-opt value` and `-opt=value` (QEMU accepts `-opt` and `--opt`)."""
    values = []
    for i, arg in enumerate(argv):
        for name in names:
            if arg == name and i + 1 < len(argv):
                values.append(argv[i + 1])
            elif arg.startswith(name + "="):
                values.append(arg[len(name) + 1:])
    return values


def qemu_vm_name(argv: list[str]) -> str | None:
    """`-name guest=<vm>,debug-threads=on` (libvirt) or `-name <vm>`."""
    for value in _option_values(argv, ("-name", "--name")):
        parts = qemu_options(value)
        for part in parts:
            if part.startswith("guest="):
                return part[len("guest="):] or None
        if parts and "=" not in parts[0]:
            return parts[0] or None
    return None


def qemu_vfio_devices(argv: list[str]) -> dict[str, str]:
    """BDF -> backend (`iommufd` when the device names an `iommufd=` object, else `legacy`) from
    `-device vfio-pci,host=…` (or `sysfsdev=…`) and JSON `-device {"driver":"vfio-pci",…}`."""
    found: dict[str, str] = {}
    for value in _option_values(argv, ("-device", "--device")):
        if value.lstrip().startswith("{"):
            try:
                spec = json.loads(value)
            except (ValueError, RecursionError):  # any user can start a process with `[[[[…` in its argv
                continue
            if not isinstance(spec, dict) or not str(spec.get("driver", "")).startswith("vfio-pci"):
                continue
            host, sysfsdev, iommufd = spec.get("host"), spec.get("sysfsdev"), spec.get("iommufd")
        else:
            parts = qemu_options(value)
            props = dict(p.split("=", 1) for p in parts if "=" in p)
            driver = parts[0] if parts and "=" not in parts[0] else props.get("driver", "")
            if not driver.startswith("vfio-pci"):
                continue
            host, sysfsdev, iommufd = props.get("host"), props.get("sysfsdev"), props.get("iommufd")
        for candidate in (host, str(sysfsdev).rstrip("/").rsplit("/", 1)[-1] if sysfsdev else None):
            bdf = parse_bdf(candidate) if isinstance(candidate, str) else None
            if bdf:
                found[bdf] = "iommufd" if iommufd else "legacy"
    return dict(sorted(found.items()))


def qemu_vfio_hosts(argv: list[str]) -> list[str]:
    """BDFs QEMU is told to assign with vfio-pci."""
    return list(qemu_vfio_devices(argv))


def _eal_args(argv: list[str]) -> list[str]:
    """EAL arguments stop at `--` (the application's own options follow)."""
    return argv[: argv.index("--")] if "--" in argv else argv


def dpdk_allowed(argv: list[str]) -> list[str]:
    """BDFs from `-a/--allow/-w/--pci-whitelist <BDF>[,devargs]` (also `-a0000:…` glued)."""
    eal = _eal_args(argv)
    values = _option_values(eal, ("-a", "--allow", "-w", "--pci-whitelist"))
    values += [a[2:] for a in eal if len(a) > 2 and a[:2] in ("-a", "-w") and not a.startswith("--") and a[2] != "="]
    found = {parse_bdf(v.split(",", 1)[0]) for v in values}
    return sorted(b for b in found if b)


def dpdk_file_prefix(argv: list[str]) -> str | None:
    values = _option_values(_eal_args(argv), ("--file-prefix",))
    return values[0] or None if values else None


def cgroup_path(text: str) -> str | None:
    """The process's cgroup: the unified (`0::`) path, else the first controller's."""
    paths = [line.split(":", 2)[2] for line in text.splitlines() if line.count(":") >= 2]
    unified = [line.split(":", 2)[2] for line in text.splitlines() if line.startswith("0::")]
    return (unified or paths or [None])[0]


def cgroup_vm(text: str) -> str | None:
    """`machine.slice/machine-qemu\\x2d3\\x2dtenant\\x2da\\x2dvm1.scope` -> `tenant-a-vm1` (systemd escaping undone)."""
    for line in text.splitlines():
        for component in line.split(":", 2)[-1].split("/"):
            m = _SCOPE.match(component)
            if m:
                name = _HEX_ESCAPE.sub(lambda h: chr(int(h.group(1), 16)), m.group(1))
                return _QEMU_SCOPE_PREFIX.sub("", name) or None
    return None


def parse_passwd(text: str) -> dict[int, str]:
    users = {}
    for line in text.splitlines():
        fields = line.split(":")
        uid = parse_int(fields[2]) if len(fields) >= 3 else None
        if uid is not None:
            users.setdefault(uid, fields[0])
    return users


def fdinfo_syspath(text: str) -> str | None:
    """6.18+ `vfio-device-syspath: /sys/devices/…/0000:02:00.0` of a VFIO device fd."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() == "vfio-device-syspath":
            return value.strip() or None
    return None


# vfio.node_kind()'s node kinds -> the fd kinds of schema 2 (a cdev node is a "device" node).
_FD_KINDS = {"group": "group", "noiommu_group": "noiommu_group", "container": "container",
             "iommufd": "iommufd", "device": "cdev", "uio": "uio"}


def fd_entry(fd: int | None, target: str, cdev_devices: dict[str, str], uio_devices: dict[str, str],
             syspath_device: str | None = None) -> dict | None:
    """One held fd in schema 2's terms (`{fd, target, kind, group, device, device_source}`), None for a
    target that gives no DMA access. The device comes from the kernel only: the fd's own fdinfo
    (`vfio-device-syspath`, 6.18+), else the cdev's or uio node's device link."""
    if target == VFIO_DEVICE_FD:
        kind, group = "device", None
    else:
        node = node_kind(target)
        if node is None:
            return None
        kind, group = _FD_KINDS[node[0]], node[1]
    entry = {"fd": fd, "target": target, "kind": kind, "group": group, "device": None, "device_source": None}
    if kind in ("cdev", "device") and syspath_device:
        entry.update(device=syspath_device, device_source="fdinfo-syspath")
    elif kind == "cdev" and cdev_devices.get(target):
        entry.update(device=cdev_devices[target], device_source="cdev")
    elif kind == "uio" and uio_devices.get(target):
        entry.update(device=uio_devices[target], device_source="uio-node")
    return entry


def config_claims(kind: str, argv: list[str], domain: dict | None) -> list[dict]:
    """Devices the holder's own configuration names (`{device, source, backend}`, by BDF): QEMU's
    vfio-pci devices (backend from `iommufd=`), DPDK's allow list, the libvirt domain's hostdevs."""
    claims: dict[str, dict] = {}
    if kind == "qemu":
        for bdf, backend in qemu_vfio_devices(argv).items():
            claims[bdf] = {"device": bdf, "source": "qemu-argv", "backend": backend}
    if kind == "dpdk":
        for bdf in dpdk_allowed(argv):
            claims.setdefault(bdf, {"device": bdf, "source": "dpdk-argv", "backend": None})
    for bdf in (domain or {}).get("hostdevs") or []:
        if isinstance(bdf, str):
            claims.setdefault(bdf, {"device": bdf, "source": "libvirt", "backend": None})
    return [claims[b] for b in sorted(claims)]


def holder_kind(name: str, argv: list[str]) -> str:
    exe = os.path.basename(argv[0]) if argv else name
    if "qemu" in exe or "qemu" in name:
        return "qemu"
    if "dpdk" in exe or "testpmd" in exe or dpdk_allowed(argv) or dpdk_file_prefix(argv):
        return "dpdk"
    return "other"


# ---- reading ------------------------------------------------------------------------------

def _held_fds(rd: Reader, pid: int) -> tuple[list[tuple[str, str]], bool]:
    """(fd, target) pairs that matter, and whether the fd directory was unreadable for permissions."""
    fd_dir = rd.root.path(f"/proc/{pid}/fd")
    try:
        fds = os.listdir(fd_dir)
    except PermissionError:
        return [], True
    except FileNotFoundError:
        return [], False  # the process exited, or a capture kept no fds for it
    except OSError as exc:
        rd.warn(f"/proc/{pid}/fd", f"unreadable ({exc.strerror or exc.__class__.__name__})")
        return [], False
    held = []
    for fd in fds:
        try:
            target = os.readlink(fd_dir / fd)
        except FileNotFoundError:
            continue  # closed meanwhile
        except PermissionError:
            return held, True  # listing allowed but links not (another user's process, no ptrace right)
        except OSError as exc:
            rd.warn(f"/proc/{pid}/fd/{fd}", f"not a readable link ({exc.strerror or exc.__class__.__name__})")
            continue
        if is_held_node(target):
            held.append((fd, rd.printable(f"/proc/{pid}/fd/{fd}", target)))
    return held, False


def _user_names(rd: Reader) -> dict[int, str]:
    if rd.root.is_live:
        return {}
    return parse_passwd(rd.text("/etc/passwd", "", missing_ok=True))


def _user(rd: Reader, uid: int | None, users: dict[int, str]) -> str | None:
    if uid is None:
        return None
    if rd.root.is_live:
        try:
            return pwd.getpwuid(uid).pw_name
        except KeyError:
            return None
    return users.get(uid)


def _start_time(rd: Reader, pid: int) -> str | None:
    if not rd.root.is_live:
        return None  # a captured root's pids are not this machine's
    try:
        created = psutil.Process(pid).create_time()
    except (psutil.Error, OSError):
        return None
    return datetime.fromtimestamp(created, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _holder(rd: Reader, pid: int, held: list[tuple[str, str]], cdev_devices: dict[str, str],
            uio_devices: dict[str, str], users: dict[int, str], domain: dict | None = None) -> dict:
    base = f"/proc/{pid}"
    status = parse_status(rd.text(f"{base}/status", ""))
    raw = rd.binary(f"{base}/cmdline", MAX_CMDLINE) or b""
    if raw == b"" and rd.exists(f"{base}/cmdline"):
        rd.warn(f"{base}/cmdline", "empty (zombie process, or the read failed)")
    argv = parse_cmdline(raw)
    if len(argv) > CMDLINE_ARGS_MAX:
        rd.warn(f"{base}/cmdline", f"{len(argv)} arguments, only the first {CMDLINE_ARGS_MAX} kept")
        argv = argv[:CMDLINE_ARGS_MAX]
    if any(len(arg) > ARG_MAX for arg in argv):
        rd.warn(f"{base}/cmdline", f"an argument longer than {ARG_MAX} characters, truncated")
        argv = [arg[:ARG_MAX] for arg in argv]
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        rd.warn(f"{base}/cmdline", "not UTF-8 (decoded with replacement)")
    name = bounded(rd, f"{base}/status", status.get("Name") or rd.text(f"{base}/comm", missing_ok=True)
                   or (os.path.basename(argv[0]) if argv else "")) or ""
    if "Name" not in status:
        rd.warn(f"{base}/status", "no Name: line")
    uid = status_uid(status)
    pinned, locked = status_kb(status, "VmPin"), status_kb(status, "VmLck")
    for key, value in (("Uid", uid), ("VmPin", pinned), ("VmLck", locked)):
        if key in status and value is None:
            rd.warn(f"{base}/status", f"{key}: line not understood ({status[key][:40]!r})")
    cgroup_text = rd.text(f"{base}/cgroup", "", missing_ok=True)
    kind = holder_kind(name, argv)

    nodes = sorted({t for _, t in held if t.startswith("/dev/")})
    groups = sorted({parse_int(m.group(1)) for t in nodes if (m := _HELD_GROUP.match(t))})
    fds = []
    for fd, target in held:
        syspath = None
        if target == VFIO_DEVICE_FD or target.startswith("/dev/vfio/devices/"):
            path = fdinfo_syspath(rd.text(f"{base}/fdinfo/{fd}", "", missing_ok=True))
            syspath = parse_bdf(path.rstrip("/").rsplit("/", 1)[-1]) if path else None
        if target.startswith("/dev/uio") and target not in uio_devices:
            # The node's own device link, when dev-nodes.tsv did not list the node.
            link = f"/sys/class/uio/{target.rsplit('/', 1)[-1]}/device"
            uio_devices = {**uio_devices, target: full_bdf(rd, link, rd.link_name(link))}
        entry = fd_entry(parse_int(fd), target, cdev_devices, uio_devices, syspath)
        if entry is not None:
            fds.append(entry)
    fds.sort(key=lambda f: (f["fd"] is None, f["fd"] or 0, f["target"]))
    # libvirt's live XML names the pid it started: the surest attribution, and its hostdevs name
    # devices QEMU got by fd (no host= on the command line).
    claims = config_claims(kind, argv, domain)

    vm = (domain or {}).get("name") \
        or bounded(rd, f"{base}/cmdline", qemu_vm_name(argv) if kind == "qemu" else None) \
        or bounded(rd, f"{base}/cgroup", cgroup_vm(cgroup_text))
    workload = bounded(rd, f"{base}/cmdline", dpdk_file_prefix(argv) if kind == "dpdk" else None) or vm
    return {
        "pid": pid,
        "name": name,
        "user": _user(rd, uid, users),
        "uid": uid,
        "cmdline": argv,
        "nodes": nodes,
        "fds": fds,
        "device_fds": sum(1 for _, t in held if t == VFIO_DEVICE_FD),
        "groups": groups,
        "claims": claims,
        "devices": [c["device"] for c in claims],
        "kind": kind,
        "vm": vm,
        "workload": workload,
        "cgroup": cgroup_path(cgroup_text),
        "vm_pinned_kb": pinned,
        "vm_locked_kb": locked,
        "start_time": _start_time(rd, pid),
    }


def collect(rd: Reader, vfio: dict, libvirt: dict | None = None) -> list[dict]:
    """`libvirt` is the libvirt collector's section: a holder whose pid a live domain names gets that VM."""
    # Only the kernel's spelling of a pid (`0123` would alias 123).
    pids = sorted(pid for name in rd.listdir("/proc") if (pid := parse_int(name)) is not None and name == str(pid))
    by_pid = {d["pid"]: d for d in (libvirt or {}).get("domains", []) if d.get("pid") is not None}
    cdev_devices, uio_devices = node_devices(vfio)
    users = None
    holders, unreadable = [], 0
    for pid in pids:
        held, denied = _held_fds(rd, pid)
        unreadable += denied
        if held:
            users = _user_names(rd) if users is None else users
            holder = rd.isolated(f"/proc/{pid}", "this holder left out", None, _holder, rd, pid, held, cdev_devices,
                                 uio_devices, users, by_pid.get(pid))
            if holder is not None:
                holders.append(holder)
    if unreadable:
        # One line, not one per pid: as non-root most of /proc is someone else's.
        whose = "1 process's fd directory" if unreadable == 1 else f"{unreadable} processes' fd directories"
        rd.warn("/proc/*/fd", f"{whose} unreadable (permission denied): "
                              "VFIO/iommufd fds held there are not visible (needs the same uid or CAP_SYS_PTRACE)")
    return holders
