"""Synthetic snapshot documents (schema v2) built from real machines' PCI trees.

Public, stable entry points (other work calls them; keep names and signatures):

- ``large_host(devices=480, seed=0, *, hostname=None) -> dict``: one host with at
  least ``devices`` PCI functions: the NVIDIA DGX-2H tree replicated into further
  PCI domains (0000, 0001, …), GPUs on vfio-pci held by tenant VMs. For the
  benchmarks of issues 3/4/5. With ``hostname`` fixed, two seeds give two
  different states of one host (other VMs hold other GPUs): a changed snapshot.
- ``fleet(n_hosts, seed=0, *, start=0) -> Iterator[dict]``: ``n_hosts`` varied
  documents (hostnames like ``gpu-a12-r03``; roles gpu-passthrough, vdi (vGPU
  mdevs), nfv (SR-IOV VFs to DPDK and VNFs: Intel VFs, and ConnectX-6 VFs on
  hosts built on llnl-corona's tree), hpc, storage; several kernels; a
  sprinkle of real problems, see SCENARIOS), generated lazily and deterministically: host ``i`` depends only on
  ``(seed, i)``, so 10,000 hosts cost only the time to build them one by one and
  ``start`` resumes anywhere. The first hosts of every fleet are a showcase that
  covers each scenario once.
- ``host(index, seed=0) -> dict``: host ``index`` of ``fleet(…, seed)``.

Every document carries a top-level ``synthetic`` object (extra keys are allowed by
agent/schema/snapshot-v2.schema.json): the hwloc file it derives from, that file's
source and licence line (copied from tests/fixtures/hwloc/README.md), the role and
labels the demo gives the host, the scenario, and a note saying what is generated.
Its ``warnings`` list is empty: nothing was read, so nothing failed to be read.
"""
from __future__ import annotations

import hashlib
import marshal
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Iterator

from agent import __version__ as AGENT_VERSION
from agent.collectors.host import parse_cmdline

from . import iommu, owners, topology, wire
from .drivers import VF_DRIVER, host_driver
from .groups import derive_groups
from .hwloc import Machine, machines

SCHEMA_VERSION = 2
DGX2 = "nvidia-dgx2h"
G4DN = "aws-g4dn-metal-8xT4"
CORONA = "llnl-corona-epyc-amd-gpus"
TIOGA = "llnl-tioga-hpe-cray-ex235a-mi250x"
SRIOV = "intel64-sriov-manyVFs"

ROLE_PREFIX = {"gpu-passthrough": "gpu", "hpc": "hpc", "nfv": "nfv", "storage": "stor", "vdi": "vdi"}
# Machine -> roles it plays in a random fleet, with weights.
MACHINE_WEIGHTS = ((DGX2, 3), (G4DN, 4), (CORONA, 2), (TIOGA, 3), (SRIOV, 4))
MACHINE_ROLES = {DGX2: ("gpu-passthrough",), G4DN: ("gpu-passthrough", "vdi"), CORONA: ("gpu-passthrough", "hpc", "nfv"),
                 TIOGA: ("hpc", "storage"), SRIOV: ("nfv",)}
SITES = ("fra1", "iad2", "sjc3")
# VFs enabled per SR-IOV PF on an nfv host: Corona's ConnectX-6 (TotalVFs 16) gets 8, which owners.py
# shares between a DPDK data plane, VNF VMs and mlx5_core; the I350s keep 4.
NFV_VFS = {CORONA: 8}
NFV_VFS_DEFAULT = 4

# name -> (release, /proc/version line); the old kernel (ubuntu20) predates DMA ownership (5.19).
KERNELS = {
    "debian12": ("6.1.0-26-amd64", "Linux version 6.1.0-26-amd64 (debian-kernel@lists.debian.org) (gcc-12 (Debian 12.2.0-14) 12.2.0, GNU ld (GNU Binutils for Debian) 2.40) #1 SMP PREEMPT_DYNAMIC Debian 6.1.112-1 (2024-09-30)"),
    "ubuntu24": ("6.8.0-45-generic", "Linux version 6.8.0-45-generic (buildd@lcy02-amd64-115) (x86_64-linux-gnu-gcc-13 (Ubuntu 13.2.0-23ubuntu4) 13.2.0, GNU ld (GNU Binutils for Ubuntu) 2.42) #45-Ubuntu SMP PREEMPT_DYNAMIC Fri Aug 30 12:02:04 UTC 2024"),
    "ubuntu22": ("6.5.0-45-generic", "Linux version 6.5.0-45-generic (buildd@lcy02-amd64-103) (x86_64-linux-gnu-gcc-12 (Ubuntu 12.3.0-1ubuntu1~22.04) 12.3.0, GNU ld (GNU Binutils for Ubuntu) 2.38) #45~22.04.1-Ubuntu SMP PREEMPT_DYNAMIC Mon Jul 15 16:40:02 UTC 2024"),
    "ubuntu20": ("5.4.0-196-generic", "Linux version 5.4.0-196-generic (buildd@lcy02-amd64-064) (gcc version 9.4.0 (Ubuntu 9.4.0-1ubuntu1~20.04.2)) #216-Ubuntu SMP Thu Aug 29 13:26:53 UTC 2024"),
}

STALE_DAYS = 3  # how long ago a "stale" host last reported
SCENARIOS = {
    None: "no problem planted",
    "split-group": "firmware left ACS off on one root port, so its GPUs share one IOMMU group; the GPUs of that group are given to VMs of two tenants (the second VM's QEMU cannot open the group and waits)",
    "mixed-ownership": "firmware left ACS off on one root port; one GPU of the merged group is bound to vfio-pci while its neighbours stay on the host driver (not viable)",
    "gpu-on-host-driver": "one GPU of a gpu-passthrough host is still on the host driver",
    "iommu-pt": "iommu=pt: host-owned devices DMA untranslated while GPUs go to tenant VMs",
    "acs-override": "firmware ACS is off on every root port and pcie_acs_override= on the cmdline splits the groups anyway",
    "old-kernel": "kernel 5.4 (before DMA ownership, 5.19) with VFs assigned",
    "uio": "a VF bound to igb_uio, driven by DPDK through /dev/uio0",
    "stale": "the host stopped reporting days ago",
    "mdev-shared-parent": "the vGPUs (mdevs) carved from one GPU are given to VMs of two tenants",
    "unknown-holder": "an ad-hoc root process holds an idle VFIO group; no VM or service explains it",
    "vfio-node-world-writable": "someone made a VFIO group node world read-writable",
    "unsafe-interrupts": "the cmdline sets vfio_iommu_type1.allow_unsafe_interrupts=1, a workaround from hosts without interrupt remapping",
}

# Showcase: the first hosts of every fleet, so a small demo fleet shows each scenario once.
SHOWCASE = (
    (DGX2, "gpu-passthrough", None, "ubuntu22"),
    (DGX2, "gpu-passthrough", "split-group", "ubuntu22"),
    (G4DN, "gpu-passthrough", "gpu-on-host-driver", "ubuntu24"),
    (SRIOV, "nfv", "uio", "debian12"),
    (CORONA, "gpu-passthrough", "iommu-pt", "debian12"),
    (G4DN, "gpu-passthrough", "acs-override", "ubuntu22"),
    (SRIOV, "nfv", "old-kernel", "ubuntu20"),
    (TIOGA, "hpc", None, "debian12"),
    (DGX2, "gpu-passthrough", "mixed-ownership", "ubuntu24"),
    (TIOGA, "storage", "stale", "ubuntu22"),
    (SRIOV, "nfv", None, "ubuntu24"),
    (CORONA, "hpc", None, "debian12"),
    (G4DN, "vdi", "mdev-shared-parent", "debian12"),
    (G4DN, "vdi", None, "ubuntu24"),
    (SRIOV, "nfv", "unknown-holder", "debian12"),
    (DGX2, "gpu-passthrough", "vfio-node-world-writable", "ubuntu22"),
    (G4DN, "gpu-passthrough", "unsafe-interrupts", "debian12"),
    (CORONA, "nfv", None, "ubuntu24"),  # ConnectX-6 VFs: DPDK, VNF VMs and mlx5_core side by side
)
# A random host has a problem with probability PROBLEM_RATE, picked from its role's list.
PROBLEM_RATE = 0.25
RANDOM_PROBLEMS = {
    "gpu-passthrough": ("gpu-on-host-driver", "iommu-pt", "split-group", "acs-override", "mixed-ownership", "stale",
                        "unknown-holder", "vfio-node-world-writable", "unsafe-interrupts"),
    "nfv": ("uio", "old-kernel", "uio", "stale", "unknown-holder", "unsafe-interrupts"),
    "hpc": ("stale", None, None),
    "storage": ("stale", None, None),
    "vdi": ("mdev-shared-parent", "stale", None),
}


@dataclass
class HostSpec:
    """Everything that varies between two synthetic hosts of one machine."""

    hostname: str
    machine: str
    role: str
    scenario: str | None
    kernel: str
    seed: str
    labels: list[str] = field(default_factory=list)
    domains: int = 1
    collected_at: datetime | None = None


# --- public entry points ----------------------------------------------------------------


def large_host(devices: int = 480, seed: int = 0, *, hostname: str | None = None) -> dict:
    """A host with at least `devices` functions: the DGX-2H tree replicated over PCI domains."""
    per_copy = len(_base(DGX2, 0, 0, frozenset()))
    copies = max(1, -(-devices // per_copy))
    spec = HostSpec(
        hostname=hostname or f"dgx2-x{copies}-s{seed}",
        machine=DGX2,
        role="gpu-passthrough",
        scenario=None,
        kernel="ubuntu22",
        seed=f"large:{seed}",
        labels=["gpu-passthrough", "bench"],
        domains=copies,
    )
    return build(spec)


def fleet(n_hosts: int, seed: int = 0, *, start: int = 0) -> Iterator[dict]:
    """`n_hosts` documents, lazily; host i depends only on (seed, i)."""
    for i in range(start, start + n_hosts):
        yield host(i, seed)


def host(index: int, seed: int = 0) -> dict:
    return build(host_spec(index, seed))


def host_spec(index: int, seed: int = 0) -> HostSpec:
    rng = random.Random(f"fleet:{seed}:{index}")
    if index < len(SHOWCASE):
        machine, role, scenario, kernel = SHOWCASE[index]
    else:
        machine = rng.choices([m for m, _ in MACHINE_WEIGHTS], [w for _, w in MACHINE_WEIGHTS])[0]
        role = rng.choice(MACHINE_ROLES[machine])
        scenario = rng.choice(RANDOM_PROBLEMS[role]) if rng.random() < PROBLEM_RATE else None
        kernel = "ubuntu20" if scenario == "old-kernel" else rng.choice(("debian12", "ubuntu22", "ubuntu24"))
        if scenario in ("split-group", "mixed-ownership"):
            machine = DGX2  # the only tree here with several GPUs below one root port
    row, rack = chr(ord("a") + index % 26), index // 26 % 40 + 1
    slot = index // 1040 + 1
    hostname = f"{ROLE_PREFIX[role]}-{row}{slot:02d}-r{rack:02d}"
    site = SITES[index % len(SITES)]
    return HostSpec(hostname=hostname, machine=machine, role=role, scenario=scenario, kernel=kernel,
                    seed=f"{seed}:{index}", labels=[role, f"site-{site}", f"rack-r{rack:02d}"])


# --- building one document ----------------------------------------------------------------


def build(spec: HostSpec) -> dict:
    """The snapshot document of one synthetic host."""
    rng = random.Random(f"host:{spec.seed}")
    machine = machines()[spec.machine]
    release, version_line = KERNELS[spec.kernel]
    # The IOMMU is the root complex's: AMD root ports mean AMD-Vi, otherwise VT-d.
    vendor = "amd" if any(f.vendor_id == "1022" and f.is_bridge and f.parent is None for f in machine.functions) else "intel"
    cmdline = _cmdline(spec, release, vendor)
    flags = parse_cmdline(cmdline)
    acs_off = _acs_off_ports(machine, spec.scenario)
    vfs = NFV_VFS.get(spec.machine, NFV_VFS_DEFAULT) if spec.role == "nfv" else 0

    devices: list[dict] = []
    for d in range(spec.domains):
        # A fresh deep copy per host (marshal is the fastest one for JSON-shaped data): callers may change any part.
        devices.extend(marshal.loads(_base_blob(spec.machine, d, vfs, acs_off)))
    group_of = _groups(spec.machine, spec.domains, vfs, acs_off, flags["pcie_acs_override"])

    host_bridges = sorted({dev["path"].split("/", 1)[0] for dev in devices})
    unit_names = {hb: f"{'ivhd' if vendor == 'amd' else 'dmar'}{i}" for i, hb in enumerate(host_bridges)}
    for dev in devices:
        dev["iommu_group"] = group_of[dev["bdf"]]
        dev["iommu_unit"] = unit_names[dev["path"].split("/", 1)[0]]
        dev["driver"] = host_driver(dev["vendor_id"], dev["device_id"], dev["class"])
    by_bdf = {dev["bdf"]: dev for dev in devices}
    for dev in devices:
        if dev["sriov"] and dev["sriov"]["physfn"]:
            dev["driver"] = VF_DRIVER.get(by_bdf[dev["sriov"]["physfn"]]["driver"] or "")

    members: dict[int, list[str]] = {}
    for dev in devices:
        members.setdefault(dev["iommu_group"], []).append(dev["bdf"])

    owned = owners.assign(spec, rng, devices, by_bdf, members, cdevs=iommu.has_cdevs(release))
    holders, notes = owned.holders, owned.notes
    group_type = "identity" if flags["iommu"] == "pt" else "DMA-FQ"
    groups = [
        {
            "id": gid,
            "type": group_type,
            "name": None,
            "devices": sorted(bdfs),
            "reserved_regions": iommu.reserved_regions(vendor),
            "unit": by_bdf[bdfs[0]]["iommu_unit"],
        }
        for gid, bdfs in sorted(members.items())
    ] + owned.mdev_groups
    units = iommu.units(vendor, release, unit_names, devices)
    vfio = iommu.vfio_facts(release, holders, devices, by_bdf)
    if spec.scenario == "vfio-node-world-writable":
        loose = next(n for n in vfio["nodes"] if n["kind"] == "group")
        loose["mode"] = "0666"
        notes.append(f"{loose['path']} is mode 0666.")
    if spec.scenario == "unsafe-interrupts":
        vfio["parameters"]["type1_allow_unsafe_interrupts"] = "Y"
    wire.vfio(vfio, devices)
    wire.holders(holders, vfio)
    now = spec.collected_at or owners.DEFAULT_NOW
    if spec.scenario == "stale":
        now -= timedelta(days=STALE_DAYS)

    return {
        "schema": SCHEMA_VERSION,
        "collected_at": now.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "seq": 1,
        "agent": {"version": f"{AGENT_VERSION}+synthetic", "euid": 0, "root": "/"},
        "host": {
            "hostname": spec.hostname,
            # From the name, not the seed: one host keeps its machine id across its changing states.
            "machine_id": hashlib.md5(spec.hostname.encode("utf-8")).hexdigest(),
            "kernel": release,
            "kernel_version": version_line,
            "cmdline": cmdline,
            "cmdline_flags": flags,
            "tainted": _tainted(devices),
            "cpu_count": machine.cpus or None,
            "memory_bytes": machine.memory_bytes or None,
            "boot_time": (now - timedelta(days=rng.randint(2, 200))).strftime("%Y-%m-%dT%H:%M:%SZ"),
            # Provenance where an operator looks for the machine model, as well as in `synthetic`.
            "dmi": {"sys_vendor": machine.vendor, "bios_version": None,
                    "product_name": f"{machine.product or machine.key} (synthetic; derived from {machine.source}, {machine.licence})"},
            "software": wire.software(release),
        },
        "iommu": {"enabled": True, "units": units},
        "groups": groups,
        "devices": sorted(devices, key=lambda d: d["bdf"]),
        "vfio": vfio,
        "holders": sorted(holders, key=lambda h: h["pid"]),
        "mdevs": owned.mdevs,
        "mdev_parents": owned.mdev_parents,
        "pasid": {
            "idxd": [],
            # As the agent reports it: a device with PASID enabled is a consumer whose process is unknown.
            "users": [
                {"device": d["bdf"], "pid": None, "source": "device-pasid-enabled"}
                for d in sorted(devices, key=lambda d: d["bdf"])
                if (d["capabilities"]["pasid"] or {}).get("enabled")
            ],
        },
        "warnings": [],
        "synthetic": {
            "derived_from": f"tests/fixtures/hwloc/{machine.file}",
            "machine": machine.product or machine.key,
            "source": machine.source,
            "licence": machine.licence,
            "role": spec.role,
            "labels": list(spec.labels),
            "scenario": spec.scenario,
            "note": "Synthetic host: the PCI tree and ids are a real machine's (hwloc XML); groups were derived "
                    "with Linux's rules, and drivers, holders and problems were generated. "
                    + _sentence(SCENARIOS[spec.scenario]) + "".join(" " + _sentence(n) for n in notes),
        },
    }


def _sentence(text: str) -> str:
    text = text.rstrip(".")
    return text[:1].upper() + text[1:] + "."


@lru_cache(maxsize=64)
def _base(machine: str, domain: int, vfs: int, acs_off: frozenset[str]) -> tuple[dict, ...]:
    """One machine's device dicts in one PCI domain (shared by every host built from it: copy before changing)."""
    devs = topology.base_devices(machines()[machine], domain=f"{domain:04x}", vfs_per_pf=vfs)
    for dev in devs:
        if dev["bdf"][5:] in acs_off:
            dev["capabilities"] = dict(dev["capabilities"], acs=topology.acs(present=True, enabled=False))
    return tuple(devs)


@lru_cache(maxsize=64)
def _base_blob(machine: str, domain: int, vfs: int, acs_off: frozenset[str]) -> bytes:
    return marshal.dumps(list(_base(machine, domain, vfs, acs_off)))


@lru_cache(maxsize=64)
def _groups(machine: str, domains: int, vfs: int, acs_off: frozenset[str], override: str | None) -> dict[str, int]:
    devices = [dev for d in range(domains) for dev in _base(machine, d, vfs, acs_off)]
    return derive_groups(devices, acs_override=override)


def _acs_off_ports(machine: Machine, scenario: str | None) -> frozenset[str]:
    """Root ports (domain-less "bb:dd.f") whose firmware leaves ACS disabled in this scenario."""
    roots = [f for f in machine.functions if f.is_bridge and f.parent is None]
    with_gpus = [r for r in roots if _gpus_below(machine, r.bdf) >= 2]
    if scenario in ("split-group", "mixed-ownership") and with_gpus:
        return frozenset({with_gpus[0].bdf[5:]})
    if scenario == "acs-override":
        return frozenset(r.bdf[5:] for r in roots)
    return frozenset()


def _gpus_below(machine: Machine, bdf: str) -> int:
    by = machine.by_bdf()

    def under(f) -> bool:
        p = f.parent
        while p:
            if p == bdf:
                return True
            p = by[p].parent
        return False

    return sum(1 for f in machine.functions if owners.is_gpu(f.class_code) and under(f))


# Modules outside the kernel tree taint it: P (proprietary, bit 0) and O (out-of-tree, bit 12).
TAINT_PROPRIETARY, TAINT_OOT = 1 << 0, 1 << 12
OUT_OF_TREE = {"nvidia": TAINT_PROPRIETARY | TAINT_OOT, "cxi_core": TAINT_OOT, "igb_uio": TAINT_OOT}


def _tainted(devices: list[dict]) -> int:
    value = 0
    for driver in {d["driver"] for d in devices}:
        value |= OUT_OF_TREE.get(driver, 0)
    return value


def _cmdline(spec: HostSpec, release: str, vendor: str) -> str:
    parts = [f"BOOT_IMAGE=/boot/vmlinuz-{release}", "root=/dev/mapper/vg0-root", "ro", "quiet"]
    if vendor == "intel":
        parts.append("intel_iommu=on")
    if spec.scenario == "iommu-pt" or spec.role in ("hpc", "storage"):
        parts.append("iommu=pt")
    if spec.scenario == "acs-override":
        parts.append("pcie_acs_override=downstream,multifunction")
    if spec.scenario == "unsafe-interrupts":
        parts.append("vfio_iommu_type1.allow_unsafe_interrupts=1")
    if spec.role == "gpu-passthrough":
        parts += ["kvm.ignore_msrs=1", "modprobe.blacklist=nouveau"]
    if spec.role == "nfv":
        parts += ["default_hugepagesz=1G", "hugepagesz=1G", "hugepages=64", "isolcpus=2-15"]
    return " ".join(parts)


