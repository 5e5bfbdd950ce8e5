"""Who owns what on a synthetic host: devices bound to vfio-pci or UIO, and the processes holding them.

Per role: gpu-passthrough hosts bind every GPU to vfio-pci and give whole groups to
tenant VMs (QEMU, libvirt-style command lines and cgroups); nfv hosts hand VFs to
DPDK data planes and VNF VMs. Scenarios plant the problems listed in
`fleet.demo.synth.SCENARIOS`. Holder fields are derived with the agent's own
parsers (VM name, vfio-pci hosts, DPDK allow-list and file prefix, cgroup), so a
holder reads exactly as the agent would have reported that process.
"""
from __future__ import annotations

import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from agent.collectors.holders import cgroup_path, dpdk_allowed, dpdk_file_prefix, qemu_vfio_hosts, qemu_vm_name

from .drivers import host_driver

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "wayne", "stark", "tyrell")
QEMU_UID = 64055  # libvirt-qemu on Debian/Ubuntu
DEFAULT_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def is_gpu(class_code: str | None) -> bool:
    return bool(class_code) and class_code.startswith("03")


@dataclass
class Ownership:
    """What assignment adds to a host's snapshot besides the drivers it sets on the devices."""

    holders: list[dict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    mdevs: list[dict] = field(default_factory=list)
    mdev_parents: list[dict] = field(default_factory=list)
    mdev_groups: list[dict] = field(default_factory=list)


def assign(spec, rng: random.Random, devices: list[dict], by_bdf: dict, members: dict, *, cdevs: bool = False) -> Ownership:
    """Bind devices to vfio-pci/UIO (or carve vGPUs) and create their holders, per role and scenario.

    With `cdevs` (kernel 6.6+ with iommufd) some VMs open their devices through the per-device
    VFIO nodes and /dev/iommu instead of the group nodes.
    """
    if spec.role == "gpu-passthrough":
        out = Ownership(*_assign_gpus(spec, rng, devices, by_bdf, members, cdevs=cdevs))
    elif spec.role == "nfv":
        out = Ownership(*_assign_vfs(spec, rng, devices, by_bdf, members, cdevs=cdevs))
    elif spec.role == "vdi":
        out = _assign_vgpus(spec, rng, devices, members)
    else:
        out = Ownership()
    if spec.scenario == "unknown-holder":
        _stray_process(rng, out, devices, by_bdf, members, start=spec.collected_at or DEFAULT_NOW)
    if cdevs:
        names = cdev_names(devices)
        for holder in out.holders:
            if IOMMUFD_OBJECT in holder["cmdline"]:
                holder["nodes"] = sorted(["/dev/iommu"] + [f"/dev/vfio/devices/{names[b]}" for b in holder["devices"]])
    return out


def _stray_process(rng, out: Ownership, devices, by_bdf, members, *, start: datetime) -> None:
    """A root shell's tool holding an idle vfio-pci group: what the agent sees but no intent explains."""
    held = {g for h in out.holders for g in h["groups"]} | {by_bdf[b]["iommu_group"] for h in out.holders for b in h["devices"]}
    idle = sorted({d["iommu_group"] for d in devices if d["driver"] == "vfio-pci"} - held)
    if not idle:  # every vfio-pci group is in use: the tool's user rebinds a spare VF first
        spare = next((d for d in devices if (d["sriov"] or {}).get("physfn") and d["iommu_group"] not in held
                      and d["driver"] not in ("vfio-pci", "igb_uio")), None)
        if spare is None:
            return
        _bind_vfio(spare)
        idle = [spare["iommu_group"]]
    group = idle[0]
    bdfs = sorted(b for b in members[group] if by_bdf[b]["driver"] == "vfio-pci")
    out.holders.append({
        "pid": _new_pid(rng, {h["pid"] for h in out.holders}),
        "name": "python3",
        "user": "root",
        "uid": 0,
        "cmdline": ["/usr/bin/python3", "/root/vfio-poke.py", "--group", str(group)],
        "nodes": [f"/dev/vfio/{group}", "/dev/vfio/vfio"],
        "device_fds": len(bdfs),
        "groups": [group],
        "devices": bdfs,
        "kind": "other",
        "vm": None,
        "workload": None,
        "cgroup": "/user.slice/user-0.slice/session-7.scope",
        "vm_pinned_kb": 0,
        "start_time": (start - timedelta(minutes=rng.randint(5, 300))).strftime("%Y-%m-%dT%H:%M:%SZ"),
    })
    out.notes.append(f"Process {out.holders[-1]['pid']} (python3, root) holds /dev/vfio/{group}.")


def cdev_names(devices: list[dict]) -> dict[str, str]:
    """BDF -> `vfioN` of the per-device VFIO node, numbered as vfio-pci bound them (BDF order at boot)."""
    return {bdf: f"vfio{i}" for i, bdf in enumerate(sorted(d["bdf"] for d in devices if d["driver"] == "vfio-pci"))}


def _bind_vfio(dev: dict) -> None:
    # Operators pin passthrough devices with driverctl, which writes driver_override.
    dev["driver"] = "vfio-pci"
    dev["driver_override"] = "vfio-pci"


def _new_pid(rng: random.Random, used: set[int]) -> int:
    while True:
        pid = rng.randint(1500, 4_000_000)
        if pid not in used:
            used.add(pid)
            return pid


IOMMUFD_OBJECT = "iommufd,id=iommufd0"


def _qemu(rng, used_pids, vm: str, bdfs: list[str], groups: list[int], *, holds_groups: bool, number: int, start: datetime,
          mdevs: tuple[str, ...] = (), iommufd: bool = False) -> dict:
    """A libvirt-started QEMU; with `iommufd` it opens the devices' cdevs (QEMU 8.2+ `-object iommufd`), not their groups."""
    argv = ["/usr/bin/qemu-system-x86_64", "-name", f"guest={vm},debug-threads=on", "-S", "-machine", "pc-q35-8.2,usb=off,dump-guest-core=off",
            "-accel", "kvm", "-cpu", "host,migratable=on", "-m", str(rng.choice((65536, 131072, 262144))), "-smp", str(rng.choice((16, 32, 64))),
            "-uuid", "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48)),
            "-display", "none", "-no-user-config", "-nodefaults"]
    if iommufd:
        argv += ["-object", IOMMUFD_OBJECT]
    for i, bdf in enumerate(bdfs, 1):
        argv += ["-device", f"vfio-pci,host={bdf},id=hostdev{i},{'iommufd=iommufd0,' if iommufd else ''}bus=pci.{i},addr=0x0"]
    for i, mdev in enumerate(mdevs, len(bdfs) + 1):
        argv += ["-device", f"vfio-pci,id=hostdev{i},sysfsdev=/sys/bus/mdev/devices/{mdev},display=off,bus=pci.{i},addr=0x0"]
    argv += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", "-msg", "timestamp=on"]
    scope = "machine-qemu\\x2d{}\\x2d{}.scope".format(number, vm.replace("-", "\\x2d"))
    held = groups if holds_groups and not iommufd else []
    return {
        "pid": _new_pid(rng, used_pids),
        "name": "qemu-system-x86",
        "user": "libvirt-qemu",
        "uid": QEMU_UID,
        "cmdline": argv,
        "nodes": sorted([f"/dev/vfio/{g}" for g in held] + ["/dev/vfio/vfio"]),
        "device_fds": len(bdfs) + len(mdevs) if holds_groups and not iommufd else 0,
        "groups": sorted(held),
        "devices": sorted(set(qemu_vfio_hosts(argv))),
        "kind": "qemu",
        "vm": qemu_vm_name(argv),
        "workload": qemu_vm_name(argv),
        "cgroup": cgroup_path(f"0::/machine.slice/{scope}/libvirt/emulator\n"),
        "vm_pinned_kb": rng.randint(16, 256) * 1024 * 1024 if holds_groups else 0,
        "start_time": (start - timedelta(hours=rng.randint(1, 900))).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _dpdk(rng, used_pids, prefix: str, bdfs: list[str], nodes: list[str], groups: list[int], start: datetime) -> dict:
    argv = ["/usr/bin/dpdk-testpmd", "-l", "2-5", "-n", "4"]
    for bdf in bdfs:
        argv += ["-a", bdf]
    argv += [f"--file-prefix={prefix}", "--", "-i", "--forward-mode=io"]
    return {
        "pid": _new_pid(rng, used_pids),
        "name": "dpdk-testpmd",
        "user": "root",
        "uid": 0,
        "cmdline": argv,
        "nodes": sorted(nodes),
        "device_fds": len(bdfs) if groups else 0,
        "groups": sorted(groups),
        "devices": dpdk_allowed(argv),
        "kind": "dpdk",
        "vm": None,
        "workload": dpdk_file_prefix(argv),
        "cgroup": "/system.slice/dpdk-" + prefix + ".service",
        "vm_pinned_kb": rng.randint(1, 64) * 1024 * 1024,
        "start_time": (start - timedelta(hours=rng.randint(1, 900))).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }


def _assign_gpus(spec, rng, devices, by_bdf, members, *, cdevs: bool) -> tuple[list[dict], list[str]]:
    start = spec.collected_at or DEFAULT_NOW
    gpu_groups = sorted({d["iommu_group"] for d in devices if is_gpu(d["class"])})
    gpus_of = {g: [b for b in members[g] if is_gpu(by_bdf[b]["class"])] for g in gpu_groups}
    for bdfs in gpus_of.values():
        for bdf in bdfs:
            _bind_vfio(by_bdf[bdf])
    merged = [g for g in gpu_groups if len(gpus_of[g]) > 1]
    notes: list[str] = []
    holders: list[dict] = []
    used: set[int] = set()
    vm_number = 0
    tenants = list(TENANTS)
    rng.shuffle(tenants)

    if spec.scenario == "gpu-on-host-driver" and gpu_groups:
        left = gpus_of[gpu_groups[-1]][0]
        by_bdf[left].update(driver=host_driver(by_bdf[left]["vendor_id"], by_bdf[left]["device_id"], by_bdf[left]["class"]),
                            driver_override=None)
        gpu_groups = gpu_groups[:-1]
        notes.append(f"{left} stayed on {by_bdf[left]['driver']}.")
    if merged and spec.scenario == "mixed-ownership":
        g = merged[0]
        first, *rest = gpus_of[g]
        for bdf in rest:
            by_bdf[bdf].update(driver=host_driver(by_bdf[bdf]["vendor_id"], by_bdf[bdf]["device_id"], by_bdf[bdf]["class"]),
                               driver_override=None)
        gpu_groups.remove(g)
        notes.append(f"group {g}: {first} on vfio-pci, {', '.join(rest)} on the host driver.")
    if merged and spec.scenario == "split-group":
        g = merged[0]
        half = max(1, len(gpus_of[g]) // 2)
        for k, (part, holds) in enumerate(((gpus_of[g][:half], True), (gpus_of[g][half:], False))):
            vm_number += 1
            vm = f"{tenants[k]}-vm{vm_number}"
            holders.append(_qemu(rng, used, vm, part, [g], holds_groups=holds, number=vm_number, start=start))
        gpu_groups.remove(g)
        notes.append(f"group {g} is split between {tenants[0]} and {tenants[1]}.")

    # Whole groups to VMs of 1, 2, 4 or 8 GPUs; about a quarter of the groups stay idle on vfio-pci.
    pool = [g for g in gpu_groups if rng.random() < 0.75]
    while pool:
        size = min(len(pool), rng.choice((1, 2, 4, 8)))
        take, pool = pool[:size], pool[size:]
        vm_number += 1
        vm = f"{rng.choice(tenants)}-vm{vm_number}"
        bdfs = [b for g in take for b in gpus_of[g]]
        holders.append(_qemu(rng, used, vm, bdfs, take, holds_groups=True, number=vm_number, start=start,
                             iommufd=cdevs and rng.random() < 0.5))
    return holders, notes


# A PF with at least this many VFs enabled is shared between a data plane, VNF VMs and the host.
WIDE_PF_VFS = 8


def _assign_vfs(spec, rng, devices, by_bdf, members, *, cdevs: bool) -> tuple[list[dict], list[str]]:
    start = spec.collected_at or DEFAULT_NOW
    holders: list[dict] = []
    notes: list[str] = []
    used: set[int] = set()
    tenants = list(TENANTS)
    rng.shuffle(tenants)
    pfs = [d for d in devices if d["sriov"] and not d["sriov"]["physfn"] and d["sriov"]["vfs"]]
    vm_number = 0
    for n, pf in enumerate(pfs):
        vfs = list(pf["sriov"]["vfs"])
        if spec.scenario == "uio" and n == len(pfs) - 1:
            bdf = vfs.pop(0)
            by_bdf[bdf]["driver"] = "igb_uio"
            holders.append(_dpdk(rng, used, f"{tenants[0]}-uio", [bdf], ["/dev/uio0"], [], start))
            notes.append(f"{bdf} is on igb_uio.")
        take_dpdk, take_vms = [], []
        if len(vfs) >= WIDE_PF_VFS:  # a ConnectX-6 with 8 VFs: a data plane, two VNFs and VFs left to the host
            take_dpdk, take_vms = vfs[: len(vfs) // 4], vfs[len(vfs) // 4: len(vfs) // 4 + 2]
        elif n % 3 == 0 and vfs:  # a DPDK data plane on half the VFs
            take_dpdk = vfs[: max(1, len(vfs) // 2)]
        elif n % 3 == 1 and vfs:  # VFs passed to VNF VMs, one each
            take_vms = vfs[:2]
        if take_dpdk:
            for bdf in take_dpdk:
                _bind_vfio(by_bdf[bdf])
            groups = sorted({by_bdf[b]["iommu_group"] for b in take_dpdk})
            holders.append(_dpdk(rng, used, f"{tenants[n % len(tenants)]}-fw{n}", take_dpdk,
                                 [f"/dev/vfio/{g}" for g in groups] + ["/dev/vfio/vfio"], groups, start))
        for bdf in take_vms:
            _bind_vfio(by_bdf[bdf])
            vm_number += 1
            g = by_bdf[bdf]["iommu_group"]
            holders.append(_qemu(rng, used, f"{tenants[vm_number % len(tenants)]}-vnf{vm_number}", [bdf], [g],
                                 holds_groups=True, number=vm_number, start=start,
                                 iommufd=cdevs and rng.random() < 0.5))
    return holders, notes


# NVIDIA vGPU profiles of a Tesla T4 (16 GiB): (mdev type id, name, framebuffer MiB, max instances).
# The names and sizes are NVIDIA's; the `nvidia-NNN` type ids are illustrative.
T4_VGPU_TYPES = (
    ("nvidia-222", "GRID T4-1B", 1024, 16),
    ("nvidia-231", "GRID T4-2Q", 2048, 8),
    ("nvidia-232", "GRID T4-4Q", 4096, 4),
    ("nvidia-233", "GRID T4-8Q", 8192, 2),
)


def _assign_vgpus(spec, rng, devices, members) -> Ownership:
    """Each GPU stays on nvidia (the vGPU manager) and is carved into mdevs, one per desktop VM."""
    start = spec.collected_at or DEFAULT_NOW
    out = Ownership()
    used: set[int] = set()
    tenants = list(TENANTS)
    rng.shuffle(tenants)
    next_group = max(members) + 1
    vm_number = 0
    for n, gpu in enumerate(d for d in devices if is_gpu(d["class"])):
        type_id, type_name, fb, max_instances = rng.choice(T4_VGPU_TYPES)
        count = rng.randint(1, max_instances)
        shared = spec.scenario == "mdev-shared-parent" and n == 0  # every profile allows two or more
        if shared:
            count = max(count, 2)
        for k in range(count):
            mdev = str(uuid.UUID(int=rng.getrandbits(128), version=4))
            tenant = tenants[k % 2] if shared else tenants[n % len(tenants)]
            vm_number += 1
            group = next_group
            next_group += 1
            out.mdevs.append({"uuid": mdev, "parent": gpu["bdf"], "type": type_id, "type_name": type_name, "iommu_group": group})
            # An mdev's group is VFIO's own (named vfio-noiommu): no PCI member, no IOMMU unit.
            out.mdev_groups.append({"id": group, "type": None, "name": "vfio-noiommu", "devices": [], "other_devices": [mdev],
                                    "reserved_regions": [], "unit": None})
            out.holders.append(_qemu(rng, used, f"{tenant}-vdi{vm_number}", [], [group], holds_groups=True,
                                     number=vm_number, start=start, mdevs=(mdev,)))
        if shared:
            out.notes.append(f"the vGPUs of {gpu['bdf']} go to {tenants[0]} and {tenants[1]}.")
        # Once one profile is in use on a GPU, the vGPU manager offers no other profile on it.
        out.mdev_parents.append({"device": gpu["bdf"], "types": [
            {"id": tid, "name": name, "available_instances": (mx - count) if tid == type_id else 0, "device_api": "vfio-pci",
             "description": f"num_heads=4, frl_config=60, framebuffer={mb}M, max_resolution=7680x4320, max_instance={mx}"}
            for tid, name, mb, mx in T4_VGPU_TYPES
        ]})
    out.mdevs.sort(key=lambda m: m["uuid"])
    return out
