"""Host facts: names, kernel, command line and its IOMMU-relevant flags, taint, DMI, QEMU/libvirt versions, psutil facts."""
from __future__ import annotations

from datetime import datetime, timezone

import psutil

from ..kernel import release_from_version_line
from ..sysfs import Reader
from . import software

DMI_DIR = "/sys/class/dmi/id"
# product_uuid and product_serial are root-only and identify hardware, not isolation: skipped.
DMI_FIELDS = ("sys_vendor", "product_name", "product_version", "bios_vendor", "bios_version",
              "board_vendor", "board_name")
HOSTNAME_MAX = 253
# `key=value` flags kept verbatim (last occurrence wins, as with the kernel's own __setup handlers).
_SCALAR_FLAGS = {
    "intel_iommu": "intel_iommu",
    "amd_iommu": "amd_iommu",
    "iommu": "iommu",
    "iommu.passthrough": "iommu_passthrough",
    "iommu.strict": "iommu_strict",
    "pcie_acs_override": "pcie_acs_override",
    "vfio.enable_unsafe_noiommu_mode": "vfio_noiommu",
}
_PCI_ACS_OPTIONS = ("disable_acs_redir=", "config_acs=")


def empty() -> dict:
    return {"hostname": "", "machine_id": None, "kernel": None, "kernel_version": None, "cmdline": None,
            "cmdline_flags": parse_cmdline(""), "tainted": None, "cpu_count": None, "memory_bytes": None,
            "boot_time": None, "dmi": {}, "software": software.empty()}


def split_cmdline(text: str) -> list[str]:
    """Kernel-style split: whitespace separates, double quotes group (`foo="a b"`); `--` ends the
    kernel's part (what follows goes to init)."""
    params, current, quoted, started = [], [], False, False
    for ch in text:
        if ch == '"':
            quoted, started = not quoted, True
        elif ch.isspace() and not quoted:
            if started:
                params.append("".join(current))
            current, started = [], False
        else:
            current.append(ch)
            started = True
    if started:
        params.append("".join(current))
    if "--" in params:
        params = params[: params.index("--")]
    return params


def _normalise_key(key: str) -> str:
    # The kernel treats `-` and `_` alike in parameter names (parameq()): vfio-pci.ids == vfio_pci.ids.
    return key.replace("-", "_")


def parse_cmdline(text: str) -> dict:
    """Pure: the IOMMU-relevant flags of a kernel command line (docs/snapshot.md `cmdline_flags`)."""
    flags: dict = {key: None for key in _SCALAR_FLAGS.values()}
    flags.update({"pci_acs": [], "pci_noats": False, "vfio_pci_ids": []})
    scalars = {_normalise_key(k): v for k, v in _SCALAR_FLAGS.items()}
    for param in split_cmdline(text):
        key, sep, value = param.partition("=")
        key = _normalise_key(key)
        if key in scalars:
            flags[scalars[key]] = value if sep else ""
        elif key == "pci" and sep:
            # pci= carries comma-separated options and may appear several times; the ACS options
            # separate their device lists with `;` (pci=disable_acs_redir=0000:00:1c.0;0000:02:00.0),
            # so splitting on `,` keeps each option whole.
            for option in value.split(","):
                if option == "noats":
                    flags["pci_noats"] = True
                elif option.startswith(_PCI_ACS_OPTIONS):
                    flags["pci_acs"].append(option)
        elif key == "vfio_pci.ids" and sep:
            flags["vfio_pci_ids"] = [i for i in value.split(",") if i]
    return flags


def _psutil_facts() -> dict:
    return {
        "cpu_count": psutil.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "boot_time": datetime.fromtimestamp(psutil.boot_time(), timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def collect(rd: Reader) -> dict:
    facts = empty()
    hostname = rd.text("/proc/sys/kernel/hostname", missing_ok=True) or rd.text("/etc/hostname", missing_ok=True)
    if hostname is None:
        rd.warn("/etc/hostname", "no hostname in /proc/sys/kernel/hostname or /etc/hostname")
    if hostname and len(hostname) > HOSTNAME_MAX:
        # A DNS name is at most 253 characters; a longer one is garbage, and the schema bounds it.
        rd.warn("/etc/hostname", f"longer than {HOSTNAME_MAX} characters, truncated")
        hostname = hostname[:HOSTNAME_MAX]
    facts["hostname"] = hostname or ""
    facts["machine_id"] = rd.text("/etc/machine-id", missing_ok=True)
    facts["kernel_version"] = rd.text("/proc/version")
    facts["kernel"] = rd.text("/proc/sys/kernel/osrelease", missing_ok=True) or release_from_version_line(
        facts["kernel_version"])
    facts["cmdline"] = rd.text("/proc/cmdline")
    facts["cmdline_flags"] = parse_cmdline(facts["cmdline"] or "")
    facts["tainted"] = rd.read_int("/proc/sys/kernel/tainted", missing_ok=True)
    facts["dmi"] = {f: rd.text(f"{DMI_DIR}/{f}", missing_ok=True) for f in DMI_FIELDS}
    facts["software"] = rd.isolated(software.DPKG_STATUS, "QEMU/libvirt versions left unknown", software.empty(),
                                    software.collect, rd)
    if rd.root.is_live:
        facts.update(rd.isolated("psutil", "cpu count, memory and boot time left unknown", {}, _psutil_facts))
    return facts
