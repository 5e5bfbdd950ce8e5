"""The shared Linux 6.12 iommufd captures (tests/fixtures/captures/README.md, "iommufd / VFIO cdev captures")
and their ground truth. The parsers read only the holders' own ioctl logs, `vfio-cdevs.txt` and `ps.txt`:
nothing from the agent.
"""
from __future__ import annotations

import re
import tarfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DIR = Path(__file__).parent / "fixtures" / "captures"
# The three of ../shared/fixtures/captures/linux-6.12-iommufd/: VMs on iommufd whose logs name every context.
NAMES = ["cdev-world-writable", "iommufd-two-devices-one-ioas", "iommufd-vm"]


@pytest.fixture(scope="session")
def iommufd_capture(tmp_path_factory):
    """iommufd_capture(name) -> the extracted root of that 6.12 capture."""
    dest = tmp_path_factory.mktemp("captures-6.12")

    def get(name: str) -> Path:
        root = dest / name
        if not root.exists():
            root.mkdir()
            with tarfile.open(DIR / f"{name}.tar.gz") as tar:
                tar.extractall(root, filter="fully_trusted")  # symlinks as the kernel made them
        return root

    return get


@dataclass
class Context:
    """One `/dev/iommu` fd of one holder, as its log tells: the devices bound to it, the IOAS they attached to."""

    pid: int
    fd: int
    bound: set = field(default_factory=set)       # VFIO_DEVICE_BIND_IOMMUFD … ok
    ioas: dict = field(default_factory=dict)      # BDF -> ioas id (VFIO_DEVICE_ATTACH_IOMMUFD_PT … ok)


_OPENED = re.compile(r"^\[holder pid (\d+)\] iommufd backend \S+: (?:opened /dev/iommu fd=(\d+)|using inherited fd (\d+) -> /dev/iommu)")
_BIND = re.compile(r"^\[holder pid (\d+)\] VFIO_DEVICE_BIND_IOMMUFD (\S+) to iommufd fd=(\d+) ok")
_IOAS = re.compile(r"^\[holder pid (\d+)\] IOMMU_IOAS_ALLOC ok: ioas_id=(\d+)")
_HWPT = re.compile(r"^\[holder pid (\d+)\] IOMMU_HWPT_ALLOC devid=\d+ pt_id=(\d+) ok: hwpt_id=(\d+)")
_ATTACH = re.compile(r"^\[holder pid (\d+)\] VFIO_DEVICE_ATTACH_IOMMUFD_PT (\S+) pt_id=(\d+) \((ioas|hwpt)\) ok")
_CDEV = re.compile(r"^(vfio\d+) dev=\S+ device=\S*/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]) ")


def iommufd_contexts(root: Path) -> dict[tuple[int, int], Context]:
    """(pid, fd) -> the iommufd context the holder logs describe."""
    out: dict[tuple[int, int], Context] = {}
    hwpt_ioas: dict[tuple[int, int], int] = {}
    for log in sorted((root / "ground-truth").glob("holder-*.log")):
        for line in log.read_text().splitlines():
            if m := _OPENED.match(line):
                pid, fd = int(m[1]), int(m[2] or m[3])
                out[(pid, fd)] = Context(pid, fd)
            elif m := _BIND.match(line):
                out[(int(m[1]), int(m[3]))].bound.add(m[2])
            elif m := _HWPT.match(line):
                hwpt_ioas[(int(m[1]), int(m[3]))] = int(m[2])
            elif m := _ATTACH.match(line):
                pid, pt = int(m[1]), int(m[3])
                ioas = pt if m[4] == "ioas" else hwpt_ioas[(pid, pt)]
                (context,) = [c for c in out.values() if c.pid == pid and m[2] in c.bound]
                context.ioas[m[2]] = ioas
    return out


def cdevs(root: Path) -> dict[str, str]:
    """BDF -> cdev name, from `ground-truth/vfio-cdevs.txt`."""
    return {m[2]: m[1] for line in (root / "ground-truth" / "vfio-cdevs.txt").read_text().splitlines() if (m := _CDEV.match(line))}


def vm_names(root: Path) -> dict[int, str]:
    """pid -> `-name guest=` of the QEMU processes in `ground-truth/ps.txt`."""
    out = {}
    for line in (root / "ground-truth" / "ps.txt").read_text().splitlines():
        if (m := re.match(r"\s*(\d+) .*qemu-system\S* .*-name guest=([^,\s]+)", line)):
            out[int(m[1])] = m[2]
    return out
