"""Installed QEMU and libvirt versions, from the package database of the root read (dpkg's status file).

What the migration from the legacy VFIO container path to iommufd needs to know per host: QEMU 8.2+
drives iommufd, libvirt 10.x passes its fds. Only dpkg's database is read (RPM's is a binary database);
a root without one reports both as null (unknown), never guessed from a binary's name.
"""
from __future__ import annotations

from ..sysfs import Reader

DPKG_STATUS = "/var/lib/dpkg/status"
STATUS_MAX_BYTES = 64 * 1024 * 1024  # a distribution install's status file is a few MiB
VERSION_MAX = 200

# The package that carries each program, most specific first (Debian/Ubuntu names).
PACKAGES = {
    "qemu": ("qemu-system-x86", "qemu-system-arm", "qemu-system-misc", "qemu-kvm", "qemu-system-x86-64"),
    "libvirt": ("libvirt-daemon", "libvirt-daemon-system", "libvirt0"),
}


def empty() -> dict:
    return {name: None for name in PACKAGES}


def parse_dpkg_status(lines, wanted: set[str]) -> dict[str, str]:
    """Package -> version of the `wanted` packages whose `Status:` is `install ok installed`."""
    found: dict[str, str] = {}
    package = version = status = None
    for raw in list(lines) + [""]:
        line = raw.rstrip("\n")
        if not line:
            if package in wanted and version and status and status.split()[-1:] == ["installed"]:
                found[package] = version
            package = version = status = None
        elif line.startswith("Package: "):
            package = line[len("Package: "):].strip()
        elif line.startswith("Version: "):
            version = line[len("Version: "):].strip()
        elif line.startswith("Status: "):
            status = line[len("Status: "):].strip()
    return found


def _lines(rd: Reader, kernel_path: str):
    with open(rd.root.fspath(kernel_path), "rb") as f:
        raw = f.read(STATUS_MAX_BYTES + 1)
    if len(raw) > STATUS_MAX_BYTES:
        rd.warn(kernel_path, f"longer than {STATUS_MAX_BYTES} bytes, read only that far")
        raw = raw[:STATUS_MAX_BYTES]
    return raw.decode("utf-8", errors="replace").splitlines()


def collect(rd: Reader) -> dict:
    if not rd.exists(DPKG_STATUS):
        return empty()
    try:
        lines = _lines(rd, DPKG_STATUS)
    except OSError as exc:
        rd.warn(DPKG_STATUS, f"unreadable ({exc.strerror or exc.__class__.__name__}): QEMU/libvirt versions unknown")
        return empty()
    installed = parse_dpkg_status(lines, {p for names in PACKAGES.values() for p in names})
    out = empty()
    for program, names in PACKAGES.items():
        version = next((installed[p] for p in names if p in installed), None)
        if version is not None and len(version) > VERSION_MAX:
            rd.warn(DPKG_STATUS, f"{program} version implausibly long ({len(version)} characters); treated as unknown")
            version = None
        out[program] = version
    return out
