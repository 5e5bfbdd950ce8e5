"""What schema 2 adds to a synthetic host's document, derived the way the agent derives it.

Each holder's `fds` and `claims` come from the agent's own functions (`fd_entry` on its node paths,
`config_claims` on its command line), so the ownership model reads a synthetic host exactly as it
reads a real one; the rest (modules, cdev support, package versions) follows the kernel and the
distribution the demo gives the host.
"""
from __future__ import annotations

from agent.collectors.holders import VFIO_DEVICE_FD, config_claims, fd_entry
from agent.collectors.vfio import MODULES, node_devices

FIRST_FD = 20  # QEMU's first fds are its own (stdio, logs, monitor sockets)
# Distribution packages of the demo's kernels: Debian 12's, Ubuntu's (`-generic` kernels).
SOFTWARE = {
    "debian": {"qemu": "1:7.2+dfsg-7+deb12u18", "libvirt": "9.0.0-4+deb12u2"},
    "ubuntu": {"qemu": "1:8.2.2+ds-0ubuntu1.4", "libvirt": "10.0.0-2ubuntu8.5"},
}


def holders(holder_list: list[dict], vfio: dict) -> None:
    """Give each holder its fds (numbered from FIRST_FD, device fds last), claims, devices and VmLck."""
    cdevs, uio = node_devices(vfio)
    for h in holder_list:
        targets = list(h["nodes"]) + [VFIO_DEVICE_FD] * h.get("device_fds", 0)
        entries = (fd_entry(FIRST_FD + i, t, cdevs, uio) for i, t in enumerate(targets))
        h["fds"] = [e for e in entries if e is not None]
        h["claims"] = config_claims(h["kind"], h["cmdline"], None)
        h["devices"] = [c["device"] for c in h["claims"]]
        h["vm_locked_kb"] = 0


def vfio(facts: dict, devices: list[dict]) -> None:
    on_vfio = any(d.get("driver") == "vfio-pci" for d in devices)
    facts["cdev_support"] = bool(facts["cdevs"]) if on_vfio else None
    facts["modules"] = {name: (facts["iommufd"] if name == "iommufd" else True) for name in MODULES}


def software(release: str) -> dict:
    return dict(SOFTWARE["ubuntu" if release.endswith("-generic") else "debian"])
