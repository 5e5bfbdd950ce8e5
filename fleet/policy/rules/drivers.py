"""Drivers: UIO, drift from the declared intent, kernels that predate DMA ownership checks."""
from __future__ import annotations

from agent.drivers import is_uio_driver
from agent.kernel import DMA_OWNERSHIP_SINCE, kernel_tuple

from ..facts import HostFacts
from ..findings import Finding
from ..intent import pattern_matches


def uio_driver(facts: HostFacts) -> list[Finding]:
    out = []
    for bdf, d in facts.devices.items():
        if not is_uio_driver(d.get("driver")):
            continue
        owners = [o.as_dict() for o in facts.owners_of(bdf)]
        out.append(Finding(
            "uio-driver", "device", bdf,
            f"{bdf} is bound to {d['driver']}, which gives userspace DMA with no IOMMU protection.",
            evidence={"bdf": bdf, "driver": d["driver"], "driver_override": d.get("driver_override"),
                      "vendor_device": f"{d.get('vendor_id')}:{d.get('device_id')}", "owners": owners,
                      "iommu_group": d.get("iommu_group")},
            remediation=f"enable the IOMMU and bind {bdf} to vfio-pci (DPDK and VMs both use VFIO), "
                        f"e.g. `dpdk-devbind.py -b vfio-pci {bdf}`.",
        ))
    return sorted(out, key=lambda f: f.subject_id)


def host_expectations(facts: HostFacts) -> list:
    """The device expectations that apply to this host (by role and hostname pattern)."""
    role_names = {r.name for r in facts.roles}
    return [exp for exp in facts.intent.devices
            if (not exp.role or exp.role in role_names)
            and (not exp.host_pattern or pattern_matches((exp.host_pattern,), facts.hostname))]


def _expected_problems(facts: HostFacts, bdf: str, device: dict, expectations: list) -> list[dict]:
    problems = []
    driver = device.get("driver")
    tenants = None
    for exp in expectations:
        if not exp.matches_device(device):
            continue
        if exp.owner and tenants is None:
            tenants = sorted({o.tenant for o in facts.owners_of(bdf) if o.tenant})
        if exp.driver and (driver or "none") != exp.driver:
            problems.append({"expectation": exp.name, "expected_driver": exp.driver, "driver": driver})
        if exp.owner == "host" and bdf in facts.assigned:
            problems.append({"expectation": exp.name, "expected_owner": "host", "owner": tenants or "userspace"})
        elif exp.owner and exp.owner != "host" and exp.owner not in tenants:
            problems.append({"expectation": exp.name, "expected_owner": exp.owner, "owner": tenants or (
                "userspace (unattributed)" if bdf in facts.assigned else "host")})
    if bdf in facts.assigned and driver:
        for role in facts.roles:
            if role.expected_drivers and driver not in role.expected_drivers:
                problems.append({"role": role.name, "expected_drivers": list(role.expected_drivers), "driver": driver})
        allowed = facts.intent.allowed_userspace_drivers
        if allowed and driver not in allowed:
            problems.append({"allowed_userspace_drivers": list(allowed), "driver": driver})
    return problems


def driver_drift(facts: HostFacts) -> list[Finding]:
    intent = facts.intent
    if not (intent.devices or intent.allowed_userspace_drivers or any(r.expected_drivers for r in facts.roles)):
        return []
    expectations = host_expectations(facts)
    # Without a device expectation for this host only assigned devices can drift (allowed/role drivers).
    candidates = facts.devices if expectations else facts.assigned
    out = []
    for bdf in sorted(candidates):
        device = facts.devices[bdf]
        problems = _expected_problems(facts, bdf, device, expectations)
        if not problems:
            continue
        first = problems[0]
        if "expected_owner" in first:
            owner = first["owner"] if isinstance(first["owner"], str) else ", ".join(first["owner"])
            what = f"is owned by {owner} but intent ({first['expectation']}) expects {first['expected_owner']}"
        elif "expected_driver" in first:
            now = f"is on {first['driver']}" if first["driver"] else "has no driver"
            expected = "no driver" if first["expected_driver"] == "none" else first["expected_driver"]
            what = f"{now} but intent ({first['expectation']}) expects {expected}"
        else:
            what = f"is assigned through {first['driver']}, which intent does not allow here"
        target = first.get("expected_driver") or (first.get("expected_drivers") or first.get("allowed_userspace_drivers") or [None])[0]
        fix = (f"rebind {bdf} to {target} (driverctl set-override {bdf} {target})" if target and target != "none"
               else f"unbind {bdf}" if target == "none" else f"move {bdf} to its declared owner {first.get('expected_owner')}")
        out.append(Finding(
            "driver-drift", "device", bdf, f"{bdf} {what}.",
            evidence={"bdf": bdf, "driver": device.get("driver"), "vendor_device": f"{device.get('vendor_id')}:{device.get('device_id')}",
                      "class": device.get("class"), "owners": [o.as_dict() for o in facts.owners_of(bdf)], "problems": problems},
            remediation=f"{fix}, or change the intent if the new assignment is deliberate.",
        ))
    return out


def old_kernel_viability(facts: HostFacts) -> list[Finding]:
    kernel = (facts.state.get("host") or {}).get("kernel")
    release = kernel_tuple(kernel)
    if release is None or release >= DMA_OWNERSHIP_SINCE or not facts.assigned:
        return []
    return [Finding(
        "old-kernel-viability", "host", facts.hostname,
        f"kernel {kernel} predates DMA ownership checks (5.19): binding a host driver into a group userspace holds crashes the host.",
        evidence={"kernel": kernel, "assigned": sorted(facts.assigned)},
        remediation="upgrade to a 5.19+ kernel; until then never bind or probe drivers on devices that share a group with assigned ones.",
    )]


RULES = (uio_driver, driver_drift, old_kernel_viability)
