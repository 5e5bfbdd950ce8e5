"""Inventory's SQL statements do what their ORM references do: COPY writes the rows bulk_create writes (every
topology table, the change rows), the one-statement fingerprint read reads what one values_list per table reads."""
import pytest
from django.db import connection
from django.utils import timezone

from fleet.inventory.models import Change, Host
from fleet.inventory.rows import KEYED_TABLES, PASID_USERS, rows_from_document
from fleet.inventory.services import _stored_fingerprints_orm, host_state_replace
from fleet.inventory.statements import rows_copy, stored_fingerprints
from tests.conftest import CAPTURE_NAMES
from tests.inventory.documents import document_of

pytestmark = pytest.mark.django_db

# No capture has mdevs or PASID users (README: "Not in these captures"): one of each, as docs/snapshot.md shows them.
HAND_MADE = {
    "mdevs": [{"uuid": "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "parent": "0000:00:02.0", "type": "i915-GVTg_V5_4",
               "type_name": "GVTg_V5_4", "iommu_group": 12}],
    "pasid": {"idxd": [], "users": [{"device": "0000:6a:01.0", "pid": 4242, "source": "idxd-wq"},
                                    {"device": "0000:6b:00.0", "pid": None, "source": "device-pasid-enabled"}]},
}


def table_values(model, host):
    skip = {"id", "host"}
    names = [f.attname for f in model._meta.concrete_fields if f.name not in skip]
    return list(model.objects.filter(host=host).order_by("id").values(*names))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_copy_writes_every_topology_row_as_bulk_create_does(capture, name):
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    document = {**document_of(capture(name)), **HAND_MADE}
    rows = rows_from_document(document)
    copied, created = Host.objects.create(hostname="copied"), Host.objects.create(hostname="created")
    for table in (*KEYED_TABLES, PASID_USERS):
        items = rows[table.name].values() if table.key else rows[table.name]
        values = [{**table.values(row), "fingerprint": f"fp{n}"} if hasattr(table.model, "fingerprint") else table.values(row)
                  for n, row in enumerate(items)]
        if table.name == "devices":
            for row in values:
                row["group_id"] = None
        ids = rows_copy(table.model, [{**row, "host_id": copied.pk} for row in values])
        table.model.objects.bulk_create([table.model(**row, host_id=created.pk) for row in values])
        assert ids == sorted(ids) and ids == list(table.model.objects.filter(host=copied).order_by("id").values_list("id", flat=True))
        assert table_values(table.model, copied) == table_values(table.model, created), table.name


def test_copy_writes_change_rows_as_bulk_create_does_and_the_sequence_moves_past_them():
    if connection.vendor != "postgresql":
        pytest.skip("COPY is PostgreSQL's")
    at = timezone.now()
    host = Host.objects.create(hostname="h")
    # Stands for an every-device rebind: JSON before/after of every shape the diff writes, None included.
    facts = [
        {"kind": Change.Kind.DRIVER_CHANGED, "subject": "0000:01:00.0", "before": "nvidia", "after": "vfio-pci"},
        {"kind": Change.Kind.DEVICE_ADDED, "subject": "0000:02:00.0", "before": None,
         "after": {"vendor_id": "10de", "class": "030200", "driver": None}},
        {"kind": Change.Kind.PASID_CHANGED, "subject": "0000:6a:01.0", "before": [{"pid": 1, "source": "idxd-wq"}], "after": None},
        {"kind": Change.Kind.OTHER, "subject": "ünïcode ✓", "before": {"numa_node": 0}, "after": {"numa_node": 1}},
    ]
    rows = [{"host_id": host.pk, "snapshot_id": 7, "at": at, **fact} for fact in facts]
    ids = rows_copy(Change, rows)
    Change.objects.bulk_create([Change(**row) for row in rows])
    stored = list(Change.objects.filter(host=host).order_by("id").values("id", "snapshot_id", "at", "kind", "subject", "before", "after"))
    assert [row["id"] for row in stored[:4]] == ids
    assert [{k: v for k, v in row.items() if k != "id"} for row in stored[:4]] == [{k: v for k, v in row.items() if k != "id"} for row in stored[4:]]
    assert stored[4]["id"] > ids[-1]


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_the_one_statement_fingerprint_read_reads_what_the_orm_reads(capture, name):
    if connection.vendor != "postgresql":
        pytest.skip("the statement is PostgreSQL's")
    host = Host.objects.create(hostname="h1")
    for seq, source in ((1, "shared-bridge-group"), (2, name)):
        document = {**document_of(capture(source), seq=seq, hostname="h1"), **HAND_MADE}
        host_state_replace(host=host, document=document, snapshot_id=None, seq=seq, at=timezone.now())
    read = stored_fingerprints(host.pk)
    assert read == _stored_fingerprints_orm(host)
    # Keys keep their types (group numbers and pids are ints), devices carry their group row, PASID users their fields.
    assert all(isinstance(k, int) for k in (*read["groups"], *read["holders"]))
    assert {bdf for bdf, (_, _, link) in read["devices"].items() if link is not None} == {
        d["bdf"] for d in document["devices"] if d["iommu_group"] is not None}
    assert read["pasid_users"] == [{"device": u["device"], "pid": u["pid"], "source": u["source"]} for u in HAND_MADE["pasid"]["users"]]
