"""The machine the tests run on: real PCI devices, no IOMMU (or whatever this host really has)."""
import os
from pathlib import Path

import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.policy.engine import evaluate
from fleet.policy.facts import HostContext
from fleet.policy.intent import Intent, Role

PCI = Path("/sys/bus/pci/devices")
USERSPACE = ("vfio", "uio_pci_generic", "igb_uio")


def _live_truth():
    """Read straight from sysfs, without the agent: drivers in use and whether any IOMMU group exists."""
    drivers = {}
    for dev in PCI.iterdir():
        link = dev / "driver"
        drivers[dev.name] = os.path.basename(os.readlink(link)) if link.is_symlink() else None
    groups = Path("/sys/kernel/iommu_groups")
    has_groups = groups.is_dir() and any(groups.iterdir())
    return drivers, has_groups


@pytest.fixture(scope="module")
def live():
    if not PCI.is_dir():
        pytest.skip("no /sys/bus/pci on this machine")
    drivers, has_groups = _live_truth()
    if has_groups:
        pytest.skip("this machine has IOMMU groups; the test is about a host without an IOMMU")
    return build(Root.of("/")), drivers


def test_live_host_without_iommu_yields_iommu_disabled_only_if_devices_are_assigned(live):
    snapshot, drivers = live
    assigned = {b for b, d in drivers.items() if d and any(u in d for u in USERSPACE)}
    expected = {"iommu-disabled"} if assigned else set()
    expected |= {"uio-driver"} if any(drivers[b] in ("uio_pci_generic", "igb_uio") for b in assigned) else set()
    assert {f.rule for f in evaluate(snapshot)} == expected


def test_live_host_without_iommu_is_iommu_disabled_once_its_role_expects_assignment(live):
    snapshot, drivers = live
    hostname = snapshot["host"]["hostname"]
    intent = Intent(roles=(Role(name="hypervisor", host_patterns=(hostname,), expects_assignment=True),))
    assigned = {b for b, d in drivers.items() if d and any(u in d for u in USERSPACE)}
    findings = evaluate(snapshot, intent, context=HostContext(hostname=hostname))
    assert {f.rule for f in findings} - {"uio-driver"} == {"iommu-disabled"}
    (f,) = [f for f in findings if f.rule == "iommu-disabled"]
    assert f.evidence["roles_expecting_assignment"] == ["hypervisor"] and set(f.evidence["assigned"]) == assigned
