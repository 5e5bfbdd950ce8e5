#!/usr/bin/env python3
"""A Proxmox VE hookscript (`qm set VMID --hookscript local:snippets/proxmox-preflight.py`, with
fleet_preflight.py beside it in the snippets directory): before the VM starts, ask the fleet's pre-flight
whether its hostpci devices may go to it, and refuse the start on deny.

Proxmox runs it as `<script> <vmid> <phase>`; a non-zero exit in `pre-start` aborts the start and its
stderr lands in the task log. The VM's config is /etc/pve/qemu-server/<vmid>.conf ($FLEET_PVE_CONFIG_DIR
overrides the directory). hostpciN values follow qemu-server's format (PVE/QemuServer/PCI.pm):
`[host=]HOSTPCIID[;HOSTPCIID2...][,option=...]`, HOSTPCIID `[dddd:]bb:dd[.f]`; without `.f` every function
of the slot passes through, read from sysfs ($FLEET_SYSFS overrides /sys). `mapping=` entries name a
cluster resource mapping the hook does not read; they are reported and refused unless unreachable = open.
"""
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.realpath(__file__)))
import fleet_preflight  # noqa: E402

_ID = re.compile(r"^(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})(?:\.([0-7]))?$")
_HOSTPCI = re.compile(r"^hostpci\d+$")


def vm_config(vmid: str) -> dict:
    """The VM's current settings (snapshot sections, after the first `[name]` line, left out)."""
    directory = os.environ.get("FLEET_PVE_CONFIG_DIR", "/etc/pve/qemu-server")
    out = {}
    with open(os.path.join(directory, f"{vmid}.conf"), encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith("["):
                break
            key, sep, value = line.partition(":")
            if sep and not line.startswith("#"):
                out[key.strip()] = value.strip()
    return out


def _functions(domain: str, bus: str, slot: str) -> list[str]:
    prefix = f"{domain}:{bus}:{slot}."
    devices = os.path.join(os.environ.get("FLEET_SYSFS", "/sys"), "bus", "pci", "devices")
    try:
        return sorted(name for name in os.listdir(devices) if name.startswith(prefix))
    except OSError:
        return [prefix + "0"]


def hostpci_devices(config: dict) -> tuple[list[str], list[str]]:
    """(BDFs, entries that could not be read) of the config's hostpciN lines."""
    devices, unread = [], []
    for key in sorted(k for k in config if _HOSTPCI.match(k)):
        first = config[key].split(",", 1)[0]
        value = first[len("host="):] if first.startswith("host=") else first
        if "=" in value:  # mapping=NAME (or a form this hook does not know)
            unread.append(f"{key}: {config[key]}")
            continue
        for part in value.split(";"):
            m = _ID.match(part.strip())
            if not m:
                unread.append(f"{key}: {part}")
                continue
            domain, bus, slot, function = (m.group(1) or "0000").lower(), m.group(2).lower(), m.group(3).lower(), m.group(4)
            found = [f"{domain}:{bus}:{slot}.{function}"] if function is not None else _functions(domain, bus, slot)
            devices += [b for b in found if b not in devices]
    return devices, unread


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[1] != "pre-start":
        return 0
    vmid = argv[0]
    try:
        config = vm_config(vmid)
    except OSError as exc:
        print(f"fleet pre-flight: start of VM {vmid} refused: cannot read its config ({exc})", file=sys.stderr)
        return 1
    devices, unread = hostpci_devices(config)
    # QEMU is started with `-name <name>` (the VMID when unnamed): the holder name the fleet will see.
    vm = config.get("name") or vmid
    if unread:
        print(f"fleet pre-flight: cannot check {'; '.join(unread)}", file=sys.stderr)
        try:
            if fleet_preflight.load_config()["unreachable"] != "open":
                print(f"fleet pre-flight: start of {vm} refused (unreachable = closed)", file=sys.stderr)
                return 1
        except fleet_preflight.ConfigError as exc:
            print(f"fleet pre-flight: start of {vm} refused: {exc}", file=sys.stderr)
            return 1
    return fleet_preflight.run(vm, devices)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
