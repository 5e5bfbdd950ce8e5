"""Column limits, validation and the agent's schema agree, for every field the row mapping stores.

A value one past its column's limit is refused at receive (400 naming its path, before anything is
stored); a value at the limit that the schema accepts is stored and read back unchanged. The cases
come from the mapping, so a newly mapped column is checked without editing this file.
"""
import json

import pytest
from django.core.management import call_command
from django.db import models
from django.utils import timezone

from agent.snapshot import SCHEMA_PATH
from fleet.ingest.validation import document_problems, schema_problems
from fleet.inventory import limits
from fleet.inventory.models import Host
from fleet.inventory.rows import HOST_FACTS, TABLES
from fleet.inventory.selectors import host_state
from fleet.inventory.services import host_state_replace
from tests.inventory.documents import document_of

pytestmark = pytest.mark.django_db

# No capture has mdevs or PASID users (README: "Not in these captures"): one of each, as docs/snapshot.md shows them.
HAND_MADE = {
    "mdevs": [{"uuid": "83b8f4f2-509f-382f-3c1e-e6bfe0fa1001", "parent": "0000:00:02.0", "type": "i915-GVTg_V5_4",
               "type_name": "GVTg_V5_4", "iommu_group": 12}],
    "pasid": {"idxd": [], "users": [{"device": "0000:6a:01.0", "pid": 4242, "source": "idxd-wq"}]},
}


def bounded(field):
    if isinstance(field, models.CharField):
        return ("text", field.max_length)
    if isinstance(field, models.BigIntegerField):
        return ("int", limits.INT64[1])
    if isinstance(field, models.IntegerField):
        return ("int", limits.INT32[1])
    return None


def cases():
    for table in TABLES:
        for f in table.fields:
            bound = bounded(table.model._meta.get_field(f.name))
            if bound:
                yield pytest.param((*table.path, 0, f.key), *bound, id=f"{table.name}.{f.key}")
    for fact in HOST_FACTS:
        bound = bounded(Host._meta.get_field(fact.column))
        if bound and fact.path[0] == "host":
            yield pytest.param(fact.path, *bound, id=f"host.{fact.path[1]}")
    yield pytest.param(("host", "machine_id"), "text", limits.MACHINE_ID, id="host.machine_id")


def with_value(document: dict, path: tuple, value) -> dict:
    node = document
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return document


def json_path(path) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)


def read_back(state: dict, path: tuple):
    node = state
    for part in path:
        node = node[part]
    return node


@pytest.mark.parametrize("path, kind, limit", list(cases()))
def test_one_past_a_columns_limit_is_refused_and_the_limit_itself_is_stored(capture, path, kind, limit):
    base = {**document_of(capture("sriov-nvme"), seq=1, hostname="h1"), **HAND_MADE}
    over = "x" * (limit + 1) if kind == "text" else limit + 1
    problems = document_problems(with_value(json.loads(json.dumps(base)), path, over))
    assert json_path(path) in {p["path"] for p in problems}, problems

    at_limit = "x" * limit if kind == "text" else limit
    document = with_value(json.loads(json.dumps(base)), path, at_limit)
    if schema_problems(document):
        return  # the schema itself bounds this field tighter (a pattern or an enum): nothing longer reaches the column
    assert document_problems(document) == []
    host = Host.objects.create(hostname="h1")
    host_state_replace(host=host, document=document, snapshot_id=None, seq=1, at=timezone.now())
    state = host_state(Host.objects.get(pk=host.pk))
    if len(path) >= 3:  # an item of a list section: (section..., index, key)
        *section, _, key = path
        assert at_limit in [item[key] for item in read_back(state, section)]
    else:
        assert read_back(state, path) == at_limit


def test_the_hostname_limit_is_the_schemas():
    schema = json.loads(SCHEMA_PATH.read_text())
    assert schema["properties"]["host"]["properties"]["hostname"]["maxLength"] == limits.HOSTNAME


def test_the_models_limits_are_the_migrated_columns():
    call_command("makemigrations", "inventory", "--check", "--dry-run", verbosity=0)
