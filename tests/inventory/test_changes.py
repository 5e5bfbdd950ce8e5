"""Change rows between two real captures played as one host's history; expectations come from ground truth."""
import os
import re
from pathlib import Path

import pytest
from django.utils import timezone

from fleet.inventory.diff import snapshot_changes
from fleet.inventory.models import Change, Host
from fleet.inventory.services import host_state_replace
from tests.agent.groundtruth import find_groups, gt, lspci_dnn, lspci_drivers, lspci_vvv
from tests.inventory.documents import document_of, ps_holders

pytestmark = pytest.mark.django_db

# Kinds no ground-truth file witnesses (driver_override, /dev nodes, VFIO cdevs): allowed, but nothing else unexpected.
FOLLOWERS = {Change.Kind.DRIVER_OVERRIDE_CHANGED, Change.Kind.VFIO_CHANGED, Change.Kind.NODE_CHANGED}


def booted_cmdline(root):
    """The kernel command line QEMU was given (`-append`), from `ground-truth/qemu-cmdline.txt`."""
    text = gt(root, "qemu-cmdline.txt").read_text()
    return re.search(r"-append ((?:\\ |\S)+)", text)[1].replace("\\ ", " ").strip()


def summary_types(root):
    """group -> default domain type, from `ground-truth/iommu-groups-summary.txt`."""
    out = {}
    for line in gt(root, "iommu-groups-summary.txt").read_text().splitlines():
        if line.startswith("group ") and "type=" in line:
            out[int(line.split()[1])] = line.split("type=")[1].split()[0]
    return out


def held_containers(root) -> set[str]:
    """Pids whose `proc/<pid>/fd/*` links (readlink in the guest) include the VFIO container."""
    return {fd.parent.parent.name for fd in Path(root).glob("proc/[0-9]*/fd/*") if os.readlink(fd) == "/dev/vfio/vfio"}


def play(capture, first, second):
    host = Host.objects.create(hostname="replayed")
    for seq, name in ((1, first), (2, second)):
        doc = document_of(capture(name), seq=seq, hostname="replayed")
        written = host_state_replace(host=host, document=doc, snapshot_id=seq, seq=seq, at=timezone.now()).changes
    return host, written


def expected_from_ground_truth(old_root, new_root):
    old_drv, new_drv = lspci_drivers(old_root), lspci_drivers(new_root)
    old_dev, new_dev = set(lspci_dnn(old_root)), set(lspci_dnn(new_root))
    old_grp, new_grp = dict((b, g) for g, b in find_groups(old_root)), dict((b, g) for g, b in find_groups(new_root))
    old_ps, new_ps = ps_holders(old_root), ps_holders(new_root)
    old_types, new_types = summary_types(old_root), summary_types(new_root)
    old_cmd, new_cmd = booted_cmdline(old_root), booted_cmdline(new_root)
    return {
        Change.Kind.CMDLINE_CHANGED: {("cmdline", old_cmd, new_cmd)} if old_cmd != new_cmd else set(),
        Change.Kind.GROUP_ADDED: {(str(g), None, None) for g in set(new_grp.values()) - set(old_grp.values())},
        Change.Kind.GROUP_REMOVED: {(str(g), None, None) for g in set(old_grp.values()) - set(new_grp.values())},
        Change.Kind.GROUP_TYPE_CHANGED: {(str(g), old_types[g], new_types[g]) for g in old_types.keys() & new_types.keys() if old_types[g] != new_types[g]},
        Change.Kind.DRIVER_CHANGED: {(b, old_drv[b]["driver"], new_drv[b]["driver"]) for b in old_dev & new_dev if old_drv[b]["driver"] != new_drv[b]["driver"]},
        Change.Kind.DEVICE_ADDED: {(b, None, None) for b in new_dev - old_dev},
        Change.Kind.DEVICE_REMOVED: {(b, None, None) for b in old_dev - new_dev},
        Change.Kind.GROUP_CHANGED: {(b, old_grp.get(b), new_grp.get(b)) for b in old_dev & new_dev if old_grp.get(b) != new_grp.get(b)},
        Change.Kind.HOLDER_ADDED: {(str(p), None, None) for p in new_ps.keys() - old_ps.keys()},
        Change.Kind.HOLDER_REMOVED: {(str(p), None, None) for p in old_ps.keys() - new_ps.keys()},
        # Every held container is a legacy address space; pids differ between two boots.
        Change.Kind.ADDRESS_SPACE_ADDED: {(p, None, None) for p in held_containers(new_root) - held_containers(old_root)},
        Change.Kind.ADDRESS_SPACE_REMOVED: {(p, None, None) for p in held_containers(old_root) - held_containers(new_root)},
    }


def observed(changes, kind):
    rows = [c for c in changes if c.kind == kind]
    if kind in (Change.Kind.DRIVER_CHANGED, Change.Kind.GROUP_CHANGED, Change.Kind.GROUP_TYPE_CHANGED, Change.Kind.CMDLINE_CHANGED):
        return {(c.subject, c.before, c.after) for c in rows}
    if kind in (Change.Kind.ADDRESS_SPACE_ADDED, Change.Kind.ADDRESS_SPACE_REMOVED):
        return {(c.subject.split(":")[0], None, None) for c in rows}
    return {(c.subject, None, None) for c in rows}


@pytest.mark.parametrize("first,second", [
    ("shared-bridge-group", "shared-group-all-vfio"),
    ("shared-group-all-vfio", "shared-bridge-group"),
    ("isolated-nics", "iommu-passthrough"),
    ("sriov-nvme", "no-iommu"),
])
def test_replaying_two_captures_records_exactly_the_changes_ground_truth_shows(capture, first, second):
    host, written = play(capture, first, second)
    expected = expected_from_ground_truth(capture(first), capture(second))
    for kind, want in expected.items():
        assert observed(written, kind) == want, kind
    # A unit's translated-device list follows the device set; the on/off flag follows the groups.
    iommu_moved = bool(find_groups(capture(first))) != bool(find_groups(capture(second))) or set(lspci_dnn(capture(first))) != set(lspci_dnn(capture(second)))
    allowed = set(expected) | FOLLOWERS | ({Change.Kind.IOMMU_CHANGED} if iommu_moved else set())
    # Same BDF, different function (two different machines): identity and capability changes, only where lspci saw them.
    old_dnn, new_dnn, old_vvv, new_vvv = lspci_dnn(capture(first)), lspci_dnn(capture(second)), lspci_vvv(capture(first)), lspci_vvv(capture(second))
    both = old_dnn.keys() & new_dnn.keys()
    swapped = {b for b in both if old_dnn[b] != new_dnn[b]}
    decoded = lambda d: (d.caps, d.express, d.acs_cap, d.acs_ctl, d.ats_enabled, d.pri_enabled, d.pasid, d.sriov)  # noqa: E731
    caps_moved = {b for b in both if decoded(old_vvv[b]) != decoded(new_vvv[b])}
    other = {c.subject for c in written if c.kind == Change.Kind.OTHER}
    assert swapped <= other <= both
    assert {c.subject for c in written if c.kind == Change.Kind.CAPABILITY_CHANGED} <= caps_moved | swapped
    allowed |= {Change.Kind.OTHER, Change.Kind.CAPABILITY_CHANGED} if swapped or caps_moved else set()
    assert {c.kind for c in written} <= allowed
    assert list(Change.objects.filter(host=host, snapshot_id=2).order_by("id")) == written


def test_a_nic_moving_from_e1000_to_vfio_pci_and_its_new_vm_are_both_recorded(capture):
    _, written = play(capture, "shared-bridge-group", "shared-group-all-vfio")
    new_ps = ps_holders(capture("shared-group-all-vfio"))
    (driver,) = [c for c in written if c.kind == Change.Kind.DRIVER_CHANGED]
    (holder,) = [c for c in written if c.kind == Change.Kind.HOLDER_ADDED]
    assert holder.after["vm"] == new_ps[int(holder.subject)]["vm"]
    assert driver.subject in holder.after["devices"]


def test_losing_the_iommu_records_it_and_every_group_leaving(capture):
    _, written = play(capture, "isolated-nics", "no-iommu")
    groups_before = {g for g, _ in find_groups(capture("isolated-nics"))}
    assert {int(c.subject) for c in written if c.kind == Change.Kind.GROUP_REMOVED} == groups_before
    (iommu,) = [c for c in written if c.kind == Change.Kind.IOMMU_CHANGED and c.subject == "iommu"]
    assert (iommu.before, iommu.after) == ({"enabled": True}, {"enabled": False})


# Hand-made: no capture has mdevs, PASID users or a kernel update (README: "Not in these captures").
def test_mdevs_pasid_users_and_kernel_updates_are_changes():
    old = {"host": {"kernel": "6.1.0", "cmdline": "quiet"}, "mdevs": [], "pasid": {"users": []}}
    new = {
        "host": {"kernel": "6.12.0", "cmdline": "quiet"},
        "mdevs": [{"uuid": "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "parent": "0000:00:02.0", "type": "i915-GVTg_V5_4", "type_name": None, "iommu_group": 12}],
        "pasid": {"users": [{"device": "0000:6a:01.0", "pid": 4242, "source": "idxd-wq"}]},
    }
    facts = snapshot_changes(old, new)
    assert [(f["kind"], f["subject"]) for f in facts] == [
        ("kernel_changed", "kernel"),
        ("mdev_changed", "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001"),
        ("pasid_changed", "0000:6a:01.0"),
    ]
    assert facts[2]["after"] == [{"pid": 4242, "source": "idxd-wq"}] and facts[2]["before"] is None


def test_volatile_holder_facts_are_not_changes():
    holder = {"pid": 7, "name": "qemu", "vm": "a", "devices": ["0000:02:00.0"], "start_time": "2026-01-01T00:00:00Z", "vm_pinned_kb": 1}
    moved_on = dict(holder, start_time="2026-02-01T00:00:00Z", vm_pinned_kb=4096)
    assert snapshot_changes({"holders": [holder]}, {"holders": [moved_on]}) == []


@pytest.mark.parametrize("first,second", [("isolated-nics", "no-iommu"), ("shared-bridge-group", "shared-group-all-vfio")])
def test_change_rows_written_with_copy_equal_those_written_with_insert(capture, monkeypatch, first, second):
    # An every-device change of a 480-device host writes ~500 Change rows through COPY; a capture pair writes a
    # few, so COPY is forced for one replay and compared with the same replay through bulk_create.
    at = timezone.now()

    def replay(hostname, copy_from):
        monkeypatch.setattr("fleet.inventory.statements.COPY_MIN_ROWS", copy_from)
        host = Host.objects.create(hostname=hostname)
        for seq, name in ((1, first), (2, second)):
            host_state_replace(host=host, document=document_of(capture(name), seq=seq, hostname=hostname), snapshot_id=seq, seq=seq, at=at)
        return list(Change.objects.filter(host=host, snapshot_id=2).order_by("id").values_list("kind", "subject", "before", "after", "at"))

    copied, inserted = replay("copied", 1), replay("inserted", 10**9)
    assert copied == inserted and len(copied) > 1
