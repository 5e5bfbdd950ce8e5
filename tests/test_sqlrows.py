"""fleet.sqlrows builds the instances Model.objects.raw() builds, from the same statement."""
import pytest
from django.db import connection
from django.utils import timezone

from fleet.ingest.models import Snapshot
from fleet.inventory.models import Host
from fleet.sqlrows import fetch_models, model_columns

pytestmark = pytest.mark.django_db


def values(instance):
    return {f.attname: getattr(instance, f.attname) for f in type(instance)._meta.concrete_fields}


def test_instances_equal_raw_querysets_json_booleans_datetimes_and_extra_columns_included():
    host = Host.objects.create(hostname="h", cmdline_flags={"intel_iommu": "on", "nested": [1, {"a": None}]}, vfio_noiommu=True,
                               last_seen=timezone.now(), dmi={"vendor": "Q\u00e9mu"}, warnings=["x", "y"])
    Snapshot.objects.create(host=host, raw=b"\x00\x01zz", content_hash="a" * 64, seq=5, received_at=timezone.now())
    q = connection.ops.quote_name
    sql = f"SELECT {model_columns(Host, alias='h')}, 41 + 1 AS {q('answer')} FROM {q(Host._meta.db_table)} h WHERE h.{q('id')} = %s"
    [raw] = list(Host.objects.raw(sql, [host.pk]))
    [fast] = fetch_models(Host, sql, [host.pk], extra=("answer",))
    assert values(fast) == values(raw) == values(Host.objects.get(pk=host.pk))
    assert fast.answer == raw.answer == 42 and fast.pk == host.pk and not fast._state.adding
    snapshots = f"SELECT {model_columns(Snapshot)} FROM {q(Snapshot._meta.db_table)} WHERE {q('host_id')} = %s"
    assert [values(s) for s in fetch_models(Snapshot, snapshots, [host.pk])] == [values(s) for s in Snapshot.objects.raw(snapshots, [host.pk])]
    assert bytes(fetch_models(Snapshot, snapshots, [host.pk])[0].raw) == b"\x00\x01zz"
