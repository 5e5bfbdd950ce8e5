"""Independent readers of what the 6.12 captures' setup and holder processes wrote in the same boot:
`holder-*.log` (each open and ioctl, with its result), `vfio-cdevs.txt` (cdev -> device, from
/sys/class/vfio-dev), `dev-nodes.tsv` (`ls -ln` of the nodes) and the setup's `+ pid N …` report
(VmLck/VmPin and each fd's target). Nothing here imports the agent: these are the witnesses."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

_LINE = re.compile(r"^\[holder pid (\d+)\] (.*)$")


@dataclass
class HolderLog:
    pid: int
    uid: int | None = None
    opened: dict = field(default_factory=dict)         # fd -> path (every open the holder logged)
    viable: dict = field(default_factory=dict)         # group -> GET_STATUS said VIABLE
    attached_groups: set = field(default_factory=set)  # groups SET_CONTAINER accepted
    set_container_refused: bool = False
    device_fds: dict = field(default_factory=dict)     # BDF -> fd of VFIO_GROUP_GET_DEVICE_FD
    get_device_fd_failed: bool = False
    cdevs: dict = field(default_factory=dict)          # BDF -> cdev node the holder opened for it
    bound: set = field(default_factory=set)            # BDFs VFIO_DEVICE_BIND_IOMMUFD accepted
    bind_refused: bool = False
    attached_ioas: dict = field(default_factory=dict)  # BDF -> IOAS id (or HWPT) it was attached to
    iommufd_fds: set = field(default_factory=set)      # fds the holder uses as /dev/iommu
    named: set = field(default_factory=set)            # BDFs its configuration asked for
    uio: set = field(default_factory=set)              # BDFs on a UIO driver whose /dev/uioN it opened

    @property
    def reached(self) -> set[str]:
        """Devices the kernel let it reach: a device fd, a cdev bound to an iommufd, a uio node."""
        return set(self.device_fds) | self.bound | self.uio


def holder_logs(root: Path) -> dict[int, HolderLog]:
    logs: dict[int, HolderLog] = {}
    uio_device = None
    for path in sorted((Path(root) / "ground-truth").glob("holder-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            m = _LINE.match(line)
            if not m:
                continue
            h = logs.setdefault(int(m[1]), HolderLog(int(m[1])))
            text = m[2]
            if u := re.search(r"\buid=(\d+) gid=", text):
                h.uid = int(u[1])
            if o := re.match(r"opened (/dev/\S+) fd=(\d+)", text):
                h.opened[int(o[2])] = o[1]
                if uio_device and o[1].startswith("/dev/uio"):
                    h.uio.add(uio_device)
                if o[1] == "/dev/iommu":
                    h.iommufd_fds.add(int(o[2]))
            if o := re.match(r"iommufd backend \S+: (?:opened /dev/iommu|using inherited) fd[= ](\d+)", text):
                h.iommufd_fds.add(int(o[1]))
                h.opened[int(o[1])] = text.rsplit("-> ", 1)[-1] if "inherited" in text else "/dev/iommu"
            if s := re.match(r"group (\d+) status flags=0x([0-9a-f]+) viable=(\d)", text):
                h.viable[int(s[1])] = s[3] == "1"
            if s := re.match(r"group (\d+) attached to container", text):
                h.attached_groups.add(int(s[1]))
            if d := re.match(r"device (\S+) driver=(\S+)", text):
                h.named.add(d[1])
                uio_device = d[1] if d[2].startswith("uio") else None
            if d := re.match(r"device (\S+): vfio cdev (\S+)", text):
                h.cdevs[d[1]] = d[2]
            if d := re.match(r"device (\S+) fd=(\d+) flags=", text):
                # a cdev's own fd answers GET_INFO after the bind too: only other fds are device fds
                if not h.opened.get(int(d[2]), "").startswith("/dev/vfio/devices/"):
                    h.device_fds[d[1]] = int(d[2])
            if b := re.match(r"VFIO_DEVICE_BIND_IOMMUFD (\S+) to iommufd fd=\d+ ok", text):
                h.bound.add(b[1])
            if a := re.match(r"VFIO_DEVICE_ATTACH_IOMMUFD_PT (\S+) pt_id=(\d+)", text):
                h.attached_ioas[a[1]] = int(a[2])
            if text.startswith("FAIL VFIO_GROUP_SET_CONTAINER"):
                h.set_container_refused = True
            if text.startswith("FAIL VFIO_GROUP_GET_DEVICE_FD"):
                h.get_device_fd_failed = True
            if text.startswith("FAIL VFIO_DEVICE_BIND_IOMMUFD"):
                h.bind_refused = True
    return logs


def vfio_cdevs(root: Path) -> dict[str, str]:
    """cdev name -> BDF, from `vfioN dev=M:m device=/sys/devices/…/BDF node=…`."""
    path = Path(root) / "ground-truth" / "vfio-cdevs.txt"
    out = {}
    if path.exists():
        for line in path.read_text().splitlines():
            m = re.match(r"^(vfio\d+) dev=\S+ device=\S*/([0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7])\b", line)
            if m:
                out[m[1]] = m[2]
    return out


def dev_node_paths(root: Path) -> set[str]:
    """Paths listed in dev-nodes.tsv (`mode uid gid major:minor path`)."""
    return {line.split()[-1] for line in (Path(root) / "dev-nodes.tsv").read_text().splitlines() if line.split()}


def setup_status(root: Path) -> dict[int, dict]:
    """pid -> {VmLck, VmPin} (kB) from the setup's `+ pid N (comm) uid=U: VmLck: 0 kB VmPin: 1024 kB` lines."""
    out = {}
    for line in (Path(root) / "ground-truth" / "setup.log").read_text(errors="replace").splitlines():
        m = re.match(r"^\+ pid (\d+) \(.*?\) uid=\d+: (.*)$", line)
        if m:
            out[int(m[1])] = {k: int(v) for k, v in re.findall(r"(Vm\w+): (\d+) kB", m[2])}
    return out
