"""Applying real captures to a host: current state, derived columns and the round trip through the tables."""
import pytest
from django.utils import timezone

from agent.upgrade import upgrade
from fleet.inventory.models import Change, Device, Group, Host
from fleet.inventory.selectors import host_state
from fleet.inventory.services import host_state_replace
from fleet.policy.engine import evaluate
from tests.agent.groundtruth import find_groups, gt, lspci_dnn, lspci_drivers
from tests.agent.groundtruth_iommufd import holder_logs
from tests.conftest import CAPTURE_NAMES
from tests.inventory.documents import document_of, ps_holders

pytestmark = pytest.mark.django_db

USERSPACE = {"vfio-pci", "uio_pci_generic"}


def applied(root, name="h1", seq=1):
    doc = document_of(root, seq=seq, hostname=name)
    host, _ = Host.objects.get_or_create(hostname=name)
    host_state_replace(host=host, document=doc, snapshot_id=None, seq=seq, at=timezone.now())
    host.refresh_from_db()
    return host, doc


def stored_view(doc: dict) -> dict:
    """The applied document as the server holds it: in schema 2's shape."""
    return upgrade(doc)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_host_state_gives_back_every_section_of_the_applied_document(capture, name):
    host, doc = applied(capture(name))
    doc = stored_view(doc)
    state = host_state(host)
    for section in ("devices", "groups", "holders", "mdevs", "mdev_parents", "warnings"):
        assert len(state[section]) == len(doc[section]), section
        for got, want in zip(state[section], doc[section]):
            for key in want:
                assert got[key] == want[key], (section, key, want.get("bdf") or want.get("id") or want.get("pid"))
    for key in ("enabled", "units"):
        assert state["iommu"][key] == doc["iommu"][key]
    for key in ("noiommu", "iommufd", "nodes", "parameters", "cdevs"):
        assert state["vfio"][key] == doc["vfio"][key], key
    assert state["pasid"] == doc["pasid"]
    for key, want in doc["host"].items():
        assert state["host"][key] == want, key


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_policy_finds_the_same_on_the_rebuilt_state_as_on_the_document(capture, name):
    host, doc = applied(capture(name))
    now = timezone.now()
    want = [(f.key, f.severity, f.subject_id) for f in evaluate(doc, now=now)]
    got = [(f.key, f.severity, f.subject_id) for f in evaluate(host_state(host), now=now)]
    assert got == want


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_tables_hold_the_devices_drivers_and_groups_lspci_and_find_saw(capture, name):
    root = capture(name)
    host, _ = applied(root)
    devices = {d.bdf: d for d in Device.objects.filter(host=host).select_related("group")}
    assert set(devices) == set(lspci_dnn(root))
    assert {bdf: d.driver for bdf, d in devices.items()} == {bdf: v["driver"] for bdf, v in lspci_drivers(root).items()}
    pairs = {(d.group.number, bdf) for bdf, d in devices.items() if d.group is not None}
    assert pairs == find_groups(root)
    assert host.device_count == len(lspci_dnn(root))
    assert host.group_count == len({group for group, _ in find_groups(root)})
    assert Group.objects.filter(host=host).count() == host.group_count


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_owner_columns_follow_drivers_and_the_processes_ps_shows(capture, name):
    root = capture(name)
    host, _ = applied(root)
    devices = {d.bdf: d for d in Device.objects.filter(host=host)}
    drivers = lspci_drivers(root)
    # A holder the kernel refused (its own log: SET_CONTAINER or the cdev bind failed) reaches nothing it names.
    refused = {pid for pid, log in holder_logs(root).items() if log.set_container_refused or log.bind_refused}
    held = {bdf: (pid, p["vm"]) for pid, p in ps_holders(root).items() if pid not in refused for bdf in p["devices"]}
    groups_of = {}
    for number, bdf in find_groups(root):
        groups_of.setdefault(number, set()).add(bdf)
    for bdf, device in devices.items():
        driver = drivers[bdf]["driver"]
        if driver in USERSPACE or bdf in held:
            assert device.owner_kind == Device.OwnerKind.USERSPACE, bdf
        elif device.owner_kind == Device.OwnerKind.USERSPACE:
            # Only reachable through a held group: another member of its group is named by a holder.
            mates = next((m for m in groups_of.values() if bdf in m), set())
            assert mates & set(held), bdf
        else:
            assert device.owner_kind == (Device.OwnerKind.UNBOUND if driver is None else Device.OwnerKind.HOST), bdf
        if bdf in held:
            assert (device.owner_pid, device.owner_vm) == held[bdf], bdf
        elif any(bdf in p["devices"] for pid, p in ps_holders(root).items() if pid in refused):
            assert device.owner_pid is None, bdf
    assert host.assigned_count == sum(1 for d in devices.values() if d.owner_kind == Device.OwnerKind.USERSPACE)


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_iommu_mode_follows_the_group_types_the_kernel_reported(capture, name):
    root = capture(name)
    host, _ = applied(root)
    types = set()
    for line in gt(root, "iommu-groups-summary.txt").read_text().splitlines():
        if line.startswith("group ") and "type=" in line:
            types.add(line.split("type=")[1].split()[0])
    expected = "off" if not types else {frozenset({"identity"}): "passthrough"}.get(frozenset(types), "translated")
    assert host.iommu_mode == expected


def test_first_snapshot_of_a_host_is_one_enrolled_change(capture):
    host, _ = applied(capture("sriov-nvme"))
    changes = list(Change.objects.filter(host=host))
    assert [c.kind for c in changes] == [Change.Kind.HOST_ENROLLED]


def test_applying_the_same_document_again_records_no_change(capture):
    host, doc = applied(capture("isolated-nics"))
    written = host_state_replace(host=host, document=doc, snapshot_id=None, seq=2, at=timezone.now()).changes
    assert written == []
    assert Change.objects.filter(host=host).count() == 1


def test_groups_that_leave_and_come_back_are_linked_to_their_devices_again(capture):
    root = capture("isolated-nics")
    host, _ = applied(root, seq=1)
    for seq, name in ((2, "no-iommu"), (3, "isolated-nics")):
        host_state_replace(host=host, document=document_of(capture(name), seq=seq, hostname="h1"), snapshot_id=None, seq=seq, at=timezone.now())
    pairs = {(d.group.number, d.bdf) for d in Device.objects.filter(host=host).select_related("group") if d.group is not None}
    assert pairs == find_groups(root)


@pytest.mark.parametrize("in_place_limit", [16, 2])
def test_a_snapshot_changing_most_devices_still_leaves_exactly_its_state(capture, monkeypatch, in_place_limit):
    # Stands for a host whose drivers were all rebound at once (e.g. a driver package update); limit 2 takes the re-insert path.
    monkeypatch.setattr("fleet.inventory.services.UPDATE_IN_PLACE_MAX", in_place_limit)
    host, doc = applied(capture("sriov-nvme"), seq=1)
    changed = document_of(capture("sriov-nvme"), seq=2, hostname="h1")
    for device in changed["devices"]:
        device["driver"] = "vfio-pci" if device["driver"] else None
        device["numa_node"] = 1
    written = host_state_replace(host=host, document=changed, snapshot_id=None, seq=2, at=timezone.now()).changes
    assert host_state(host)["devices"] == changed["devices"]
    assert {c.subject for c in written if c.kind == Change.Kind.DRIVER_CHANGED} == {
        bdf for bdf, v in lspci_drivers(capture("sriov-nvme")).items() if v["driver"] not in (None, "vfio-pci")
    }


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_rows_inserted_with_copy_read_back_as_the_document(capture, name, monkeypatch):
    # Captures have ~10 devices; 480-device hosts take the COPY path, forced here for every table.
    monkeypatch.setattr("fleet.inventory.statements.COPY_MIN_ROWS", 1)
    root = capture(name)
    host, doc = applied(root)
    doc = stored_view(doc)
    state = host_state(host)
    for section in ("devices", "groups", "holders"):
        assert state[section] == doc[section], section
    assert state["iommu"]["units"] == doc["iommu"]["units"] and state["vfio"]["nodes"] == doc["vfio"]["nodes"]
    pairs = {(d.group.number, d.bdf) for d in Device.objects.filter(host=host).select_related("group") if d.group is not None}
    assert pairs == find_groups(root)
    assert Device.objects.create(host=Host.objects.create(hostname="next"), bdf="0000:00:00.0").pk > max(Device.objects.filter(host=host).values_list("id", flat=True))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_the_state_an_apply_hands_to_policy_equals_the_state_read_back_from_the_tables(capture, name):
    host = Host.objects.create(hostname="h1")
    for seq, source in ((1, "shared-bridge-group"), (2, name)):
        replaced = host_state_replace(host=host, document=document_of(capture(source), seq=seq, hostname="h1"),
                                      snapshot_id=seq, seq=seq, at=timezone.now())
    assert replaced.state(host) == host_state(Host.objects.get(pk=host.pk))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_reapplying_a_freshly_parsed_same_document_rewrites_no_row(capture, name):
    # A worker parses each stored snapshot anew: the row fingerprints must come out equal for equal content.
    import orjson
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    host, doc = applied(capture(name))
    again = orjson.loads(orjson.dumps(dict(doc, seq=2)))
    with CaptureQueriesContext(connection) as queries:
        host_state_replace(host=host, document=again, snapshot_id=None, seq=2, at=timezone.now())
    writes = [q["sql"] for q in queries if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE", "COPY"))]
    assert writes and all("inventory_host" in sql.split("SET")[0] for sql in writes), writes


def test_the_host_row_holds_every_column_the_apply_computed(capture):
    """The host row is written with update() of the columns that moved (not save()); each value must read back as computed."""
    from fleet.inventory.rows import rows_from_document
    from fleet.inventory.services import _host_columns

    host, doc = applied(capture("isolated-nics"))
    second = upgrade(document_of(capture("shared-group-all-vfio"), seq=2, hostname=host.hostname))  # the apply upgrades it
    at = timezone.now()
    expected = _host_columns(host, second, rows_from_document(second), at=at, snapshot_id=None, seq=2, digest="d" * 64)
    host_state_replace(host=host, document=second, snapshot_id=None, seq=2, at=at, content_hash="d" * 64)
    stored = Host.objects.get(pk=host.pk)
    assert {name: getattr(stored, name) for name in expected} == expected
    assert stored.applied_seq == 2 and stored.device_count == len(second["devices"])


def test_devices_follow_their_group_rows_when_those_are_rewritten_under_new_ids(capture, monkeypatch):
    # Group rows past the in-place limit are deleted and inserted again (new ids) while their devices are
    # unchanged: the devices' fingerprints stay equal, their link to the group row must not.
    monkeypatch.setattr("fleet.inventory.services.UPDATE_IN_PLACE_MAX", 0)
    root = capture("shared-bridge-group")
    host, doc = applied(root, seq=1)
    old_ids = set(Group.objects.filter(host=host).values_list("id", flat=True))
    changed = document_of(root, seq=2, hostname="h1")
    for group in changed["groups"]:
        group["type"] = "DMA-FQ" if group["type"] != "DMA-FQ" else "DMA"
    host_state_replace(host=host, document=changed, snapshot_id=None, seq=2, at=timezone.now())
    assert not old_ids & set(Group.objects.filter(host=host).values_list("id", flat=True))
    pairs = {(d.group.number, d.bdf) for d in Device.objects.filter(host=host).select_related("group") if d.group is not None}
    assert pairs == find_groups(root)


def test_the_apply_works_without_libpq_pipeline_support(capture, monkeypatch):
    # Stands for psycopg built against a system libpq older than 14 (no pipeline mode), which the apply must not need.
    import psycopg

    monkeypatch.setattr(psycopg.Pipeline, "is_supported", classmethod(lambda cls: False))
    monkeypatch.setattr(psycopg.Connection, "pipeline", lambda self: pytest.fail("pipeline used without libpq support"))
    root = capture("shared-bridge-group")
    host, _ = applied(root, seq=1)
    changed = document_of(capture("shared-group-all-vfio"), seq=2, hostname="h1")
    host_state_replace(host=host, document=changed, snapshot_id=None, seq=2, at=timezone.now())
    assert host_state(host)["devices"] == changed["devices"]
