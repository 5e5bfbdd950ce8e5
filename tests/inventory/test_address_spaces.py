"""Address spaces and their attachments in the inventory, against the holders' own ioctl logs (6.12 captures)
and the 6.1 captures' held containers; their history."""
import os
from pathlib import Path

import pytest
from django.utils import timezone

from agent.upgrade import upgrade
from fleet.ingest.validation import document_problems
from fleet.inventory.diff import snapshot_changes
from fleet.inventory.models import AddressSpace, Attachment, Change, Device, Host
from fleet.inventory.selectors import host_address_spaces, shared_spaces
from fleet.inventory.services import host_state_replace
from tests.inventory.documents import document_of, ps_holders
from tests.iommufd_captures import NAMES, cdevs, iommufd_capture, iommufd_contexts, vm_names  # noqa: F401

pytestmark = pytest.mark.django_db


def apply(doc, host=None, seq=1):
    host = host or Host.objects.create(hostname=doc["host"]["hostname"])
    doc["seq"] = seq
    replaced = host_state_replace(host=host, document=doc, snapshot_id=seq, seq=seq, at=timezone.now())
    return host, replaced.changes


@pytest.mark.parametrize("name", NAMES)
def test_each_iommufd_context_the_holder_logs_opened_is_one_address_space_mapping_the_devices_bound_to_it(iommufd_capture, name):
    root = iommufd_capture(name)
    host, _ = apply(document_of(root, hostname=name))
    contexts = iommufd_contexts(root)
    spaces = {s.pid: s for s in AddressSpace.objects.filter(host=host)}
    assert set(spaces) == {pid for pid, _ in contexts}
    attached = {s["pid"]: {d["device"] for d in s["devices"]} for s in host_address_spaces(host)}
    names = vm_names(root)
    for (pid, fd), context in contexts.items():
        space = spaces[pid]
        assert (space.kind, space.backend) == ("iommufd", "iommufd")
        assert space.fd in (None, fd)  # schema 1 agents do not send fd numbers
        assert attached[pid] == context.bound
        assert space.vm == names[pid]
        # One IOAS per context in these captures: what the space stands for.
        assert len(set(context.ioas.values())) == 1


def test_two_devices_bound_to_one_iommufd_make_that_address_space_shared_and_the_single_one_not(iommufd_capture):
    root = iommufd_capture("iommufd-two-devices-one-ioas")
    host, _ = apply(document_of(root, hostname="h"))
    many = {c.pid for c in iommufd_contexts(root).values() if len(c.bound) > 1}
    assert many  # the capture's point: tenant-n-vm21 binds two devices to one context
    assert set(shared_spaces().filter(host=host).values_list("pid", flat=True)) == many


@pytest.mark.parametrize("name", NAMES)
def test_each_device_row_names_the_cdev_vfio_cdevs_txt_lists(iommufd_capture, name):
    root = iommufd_capture(name)
    host, _ = apply(document_of(root, hostname=name))
    want = cdevs(root)
    got = dict(Device.objects.filter(host=host).values_list("bdf", "cdev"))
    assert {b: c for b, c in got.items() if c} == want


def test_a_held_container_is_a_legacy_space_mapping_the_group_of_the_vm(capture):
    root = capture("shared-group-all-vfio")
    host, _ = apply(document_of(root, hostname="h"))
    (pid,) = ps_holders(root)
    containers = {int(fd.parent.parent.name) for fd in Path(root).glob("proc/[0-9]*/fd/*") if os.readlink(fd) == "/dev/vfio/vfio"}
    assert containers == {pid}
    (space,) = AddressSpace.objects.filter(host=host)
    assert (space.pid, space.backend, space.kind) == (pid, "legacy", "vfio-container")
    devices = set(Attachment.objects.filter(host=host, device_bdf__isnull=False).values_list("device_bdf", flat=True))
    assert devices == ps_holders(root)[pid]["devices"]


def test_a_capture_without_holders_has_no_address_space(capture):
    host, _ = apply(document_of(capture("shared-bridge-group"), hostname="h"))
    assert not AddressSpace.objects.filter(host=host).exists() and not Attachment.objects.filter(host=host).exists()


def test_history_records_spaces_appearing_and_leaving_by_the_holder_logs(iommufd_capture):
    first, second = iommufd_capture("iommufd-vm"), iommufd_capture("iommufd-two-devices-one-ioas")
    host, _ = apply(document_of(first, hostname="h"))
    _, changes = apply(document_of(second, hostname="h"), host, seq=2)
    added = {int(c.subject.split(":")[0]) for c in changes if c.kind == Change.Kind.ADDRESS_SPACE_ADDED}
    removed = {int(c.subject.split(":")[0]) for c in changes if c.kind == Change.Kind.ADDRESS_SPACE_REMOVED}
    assert added == {pid for pid, _ in iommufd_contexts(second)}
    assert removed == {pid for pid, _ in iommufd_contexts(first)}
    (vm21,) = [c for c in changes if c.kind == Change.Kind.ADDRESS_SPACE_ADDED and c.after["vm"] == "tenant-n-vm21"]
    (context,) = [c for c in iommufd_contexts(second).values() if c.pid == vm21.after["pid"]]
    assert {a["device"] for a in vm21.after["attached"] if "device" in a} == context.bound


def test_the_same_snapshot_again_records_nothing_and_rewrites_no_space(iommufd_capture):
    root = iommufd_capture("iommufd-two-devices-one-ioas")
    host, _ = apply(document_of(root, hostname="h"))
    before = dict(AddressSpace.objects.filter(host=host).values_list("key", "id"))
    _, changes = apply(document_of(root, hostname="h"), host, seq=2)
    assert changes == []
    assert dict(AddressSpace.objects.filter(host=host).values_list("key", "id")) == before


def test_a_vm_restarted_on_iommufd_is_one_backend_change(capture, iommufd_capture):
    # Hand-made from two real captures: tenant-a-vm1 on the legacy path (isolated-nics), then the iommufd-vm
    # capture's holder renamed to it, as if the same VM came back on iommufd.
    legacy = document_of(capture("isolated-nics"), hostname="h")
    (vm,) = {h["vm"] for h in legacy["holders"]}
    host, _ = apply(legacy)
    moved = document_of(iommufd_capture("iommufd-vm"), hostname="h")
    for holder in moved["holders"]:
        holder["vm"] = holder["workload"] = vm
    _, changes = apply(moved, host, seq=2)
    (fact,) = [c for c in changes if c.kind == Change.Kind.ADDRESS_SPACE_BACKEND_CHANGED]
    assert (fact.subject, fact.before, fact.after) == (vm, {"backends": ["legacy"]}, {"backends": ["iommufd"]})


def test_pinned_memory_moving_is_no_change_but_is_stored(iommufd_capture):
    root = iommufd_capture("iommufd-vm")
    host, _ = apply(document_of(root, hostname="h"))
    doc = document_of(root, hostname="h")
    doc["holders"][0]["vm_pinned_kb"] = (doc["holders"][0]["vm_pinned_kb"] or 0) + 4096
    _, changes = apply(doc, host, seq=2)
    assert [c.kind for c in changes] == []
    assert AddressSpace.objects.get(host=host).pinned_kb == doc["holders"][0]["vm_pinned_kb"]


def test_a_space_losing_a_device_is_one_change_naming_what_it_mapped_before_and_after(iommufd_capture):
    # Hand-made from the real capture: tenant-n-vm21 hot-unplugs 02:00.0 (closes its cdev), keeps 01:00.0.
    root = iommufd_capture("iommufd-two-devices-one-ioas")
    host, _ = apply(document_of(root, hostname="h"))
    (context,) = [c for c in iommufd_contexts(root).values() if len(c.bound) > 1]
    doc = document_of(root, hostname="h")
    cdev = {c["device"]: f"/dev/vfio/devices/{c['name']}" for c in doc["vfio"]["cdevs"]}
    gone, kept = sorted(context.bound)[1], sorted(context.bound)[0]
    (vm21,) = [h for h in doc["holders"] if h["pid"] == context.pid]
    vm21["nodes"] = [n for n in vm21["nodes"] if n != cdev[gone]]
    # Schema 2 lists the fd itself too: closing the cdev removes both.
    vm21["fds"] = [f for f in vm21.get("fds", []) if f.get("target") != cdev[gone]]
    _, changes = apply(doc, host, seq=2)
    (fact,) = [c for c in changes if c.kind == Change.Kind.ADDRESS_SPACE_CHANGED]
    assert fact.subject.startswith(f"{context.pid}:")
    devices = lambda side: {a["device"] for a in side if "device" in a}  # noqa: E731
    assert (devices(fact.before), devices(fact.after)) == ({gone}, set())  # what moved; 01:00.0 stays
    assert kept in context.bound
    # The same fact from the two whole documents (the history page's diff).
    assert snapshot_changes(document_of(root, hostname="h"), doc) == [
        {"kind": c.kind, "subject": c.subject, "before": c.before, "after": c.after} for c in changes]


def test_hostile_fd_numbers_cannot_break_the_apply(iommufd_capture):
    # A compromised agent: the same context listed twice, and an fd number no kernel gives (the schema sets no maximum).
    doc = upgrade(document_of(iommufd_capture("iommufd-vm"), hostname="h"))
    (holder,) = doc["holders"]
    context = next(f for f in holder["fds"] if f["kind"] == "iommufd")
    holder["fds"] += [dict(context, fd=2**40), dict(context, fd=2**40)]
    assert document_problems(doc) == []
    host, _ = apply(doc)
    keys = set(AddressSpace.objects.filter(host=host).values_list("key", flat=True))
    real = f"{holder['pid']}:{context['fd'] if context['fd'] is not None else 'iommufd'}"  # schema 2 knows the fd
    assert keys == {real, f"{holder['pid']}:iommufd"}  # the impossible fd numbers fold into one space of unknown fd
    # several contexts: what each maps is not guessed
    assert not AddressSpace.objects.filter(host=host, attachment_known=True).exists()
