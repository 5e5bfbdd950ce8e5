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
from datetime import datetime, timedelta, timezone

from agent.collectors.holders import cgroup_path, dpdk_allowed, dpdk_file_prefix, qemu_vfio_hosts, qemu_vm_name

from .drivers import host_driver

TENANTS = ("acme", "globex", "initech", "umbrella", "hooli", "wayne", "stark", "tyrell")
QEMU_UID = 64055  # libvirt-qemu on Debian/Ubuntu
DEFAULT_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=timezone.utc)


def is_gpu(class_code: str | None) -> bool:
    return bool(class_code) and class_code.startswith("03")


def assign(spec, rng: random.Random, devices: list[dict], by_bdf: dict, members: dict) -> tuple[list[dict], list[str]]:
    """Bind devices to vfio-pci/UIO and create their holders, per role and scenario."""
    if spec.role == "gpu-passthrough":
        return _assign_gpus(spec, rng, devices, by_bdf, members)
    if spec.role == "nfv":
        return _assign_vfs(spec, rng, devices, by_bdf, members)
    return [], []


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


def _qemu(rng, used_pids, vm: str, bdfs: list[str], groups: list[int], *, holds_groups: bool, number: int, start: datetime) -> dict:
    argv = ["/usr/bin/qemu-system-x86_64", "-name", f"guest={vm},debug-threads=on", "-S", "-machine", "pc-q35-8.2,usb=off,dump-guest-core=off",
            "-accel", "kvm", "-cpu", "host,migratable=on", "-m", str(rng.choice((65536, 131072, 262144))), "-smp", str(rng.choice((16, 32, 64))),
            "-uuid", "%08x-%04x-4%03x-a%03x-%012x" % (rng.getrandbits(32), rng.getrandbits(16), rng.getrandbits(12), rng.getrandbits(12), rng.getrandbits(48)),
            "-display", "none", "-no-user-config", "-nodefaults"]
    for i, bdf in enumerate(bdfs, 1):
        argv += ["-device", f"vfio-pci,host={bdf},id=hostdev{i},bus=pci.{i},addr=0x0"]
    argv += ["-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny", "-msg", "timestamp=on"]
    scope = "machine-qemu\\x2d{}\\x2d{}.scope".format(number, vm.replace("-", "\\x2d"))
    held = groups if holds_groups else []
    return {
        "pid": _new_pid(rng, used_pids),
        "name": "qemu-system-x86",
        "user": "libvirt-qemu",
        "uid": QEMU_UID,
        "cmdline": argv,
        "nodes": sorted([f"/dev/vfio/{g}" for g in held] + ["/dev/vfio/vfio"]),
        "device_fds": len(bdfs) if holds_groups else 0,
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


def _assign_gpus(spec, rng, devices, by_bdf, members) -> tuple[list[dict], list[str]]:
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
        holders.append(_qemu(rng, used, vm, bdfs, take, holds_groups=True, number=vm_number, start=start))
    return holders, notes


def _assign_vfs(spec, rng, devices, by_bdf, members) -> tuple[list[dict], list[str]]:
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
        mode = n % 3
        if mode == 0 and vfs:  # a DPDK data plane on half the VFs
            take = vfs[: max(1, len(vfs) // 2)]
            for bdf in take:
                _bind_vfio(by_bdf[bdf])
            groups = sorted({by_bdf[b]["iommu_group"] for b in take})
            holders.append(_dpdk(rng, used, f"{tenants[n % len(tenants)]}-fw{n}", take,
                                 [f"/dev/vfio/{g}" for g in groups] + ["/dev/vfio/vfio"], groups, start))
        elif mode == 1 and vfs:  # VFs passed to VNF VMs, one each
            for bdf in vfs[:2]:
                _bind_vfio(by_bdf[bdf])
                vm_number += 1
                g = by_bdf[bdf]["iommu_group"]
                holders.append(_qemu(rng, used, f"{tenants[vm_number % len(tenants)]}-vnf{vm_number}", [bdf], [g],
                                     holds_groups=True, number=vm_number, start=start))
    return holders, notes
