"""Hypothesis fuzz of POST /api/v1/snapshots from a real capture's snapshot: never a 5xx, nothing half-written."""
import copy
import itertools
import json

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from fleet.ingest.models import Snapshot
from fleet.ingest.tasks import snapshot_apply_task
from fleet.inventory.models import Host

pytestmark = pytest.mark.django_db

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)


def paths_of(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for key, value in node.items():
            yield from paths_of(value, (*prefix, key))
    elif isinstance(node, list):
        for index, value in enumerate(node[:3]):
            yield from paths_of(value, (*prefix, index))


def mutate(doc, path, action, value):
    out = copy.deepcopy(doc)
    if not path:
        return value if action == "replace" else out
    parent = out
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "delete":
        del parent[last]
    elif action == "replace":
        parent[last] = value
    elif isinstance(parent, list):
        parent.append(value)
    else:
        parent[f"{last}_extra"] = value
    return out


@pytest.fixture
def target(enrolled):
    return enrolled("shared-group-all-vfio")


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_mutated_snapshots_and_random_bytes_never_cause_a_5xx_or_a_partial_write(target, push, queued, data):
    host, token, doc = target
    seqs = itertools.count(1000 + Snapshot.objects.count() * 10)
    kind = data.draw(st.sampled_from(["bytes", "mutation", "mutation", "mutation"]))
    if kind == "bytes":
        payload = data.draw(st.binary(max_size=600))
    else:
        path = data.draw(st.sampled_from(list(paths_of(doc))))
        action = data.draw(st.sampled_from(["replace", "delete", "add"]))
        payload = mutate(dict(doc, seq=next(seqs)), path, action, data.draw(json_values))
    gzipped = data.draw(st.booleans())
    rows_before = Snapshot.objects.count()
    state_before = Host.objects.filter(pk=host.pk).values("content_hash", "device_count", "applied_seq").get()
    queued.clear()

    response = push(token, payload, gzipped=gzipped)

    assert response.status_code < 500
    if response.status_code >= 400:
        assert "errors" in response.json()
        assert Snapshot.objects.count() == rows_before
        assert Host.objects.filter(pk=host.pk).values("content_hash", "device_count", "applied_seq").get() == state_before
    elif response.status_code == 202:
        assert queued == [response.json()["id"]]
        assert snapshot_apply_task(queued[0]) in ("applied", "superseded")


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=300), json_values.map(lambda v: json.dumps(v).encode())),
       tokenless=st.booleans(), gzipped=st.booleans())
def test_random_heartbeats_are_never_a_5xx_and_never_mark_the_host_seen(target, push, payload, tokenless, gzipped):
    host, token, _ = target
    before = Host.objects.filter(pk=host.pk).values_list("last_seen", flat=True).get()
    response = push(None if tokenless else token, payload, gzipped=gzipped, path="/api/v1/heartbeat")
    assert response.status_code in (400, 401, 409, 413, 415)
    assert Host.objects.filter(pk=host.pk).values_list("last_seen", flat=True).get() == before


heartbeat_fields = st.fixed_dictionaries({
    "content_hash": st.one_of(st.text(alphabet="0123456789abcdefABCDEF\x00\n é", min_size=60, max_size=66), json_values),
    "seq": st.one_of(st.integers(min_value=-(2**70), max_value=2**70), st.floats(allow_nan=False), st.booleans(), st.none()),
})


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(doc=heartbeat_fields, tokenless=st.booleans())
def test_heartbeats_with_hostile_hashes_and_seqs_are_never_a_5xx(target, push, doc, tokenless):
    """Shaped like a heartbeat, wrong in the details: a NUL or upper-case in the hash, a seq past 2^53, a float."""
    host, token, _ = target
    response = push(None if tokenless else token, doc, path="/api/v1/heartbeat")
    assert response.status_code in (400, 401, 409)


AGENT_PATHS = ("/api/v1/snapshots", "/api/v1/heartbeat")
HOSTILE_AUTHORIZATION = ["Bearer \x00", "Bearer iof_\x00abc", "Bearer " + "é" * 50, "Bearer " + "a" * 100_000, "Basic Zm9vOmJhcg==",
                         "Bearer", "bearer  iof_x", "\x00"]


@pytest.mark.parametrize("path", AGENT_PATHS)
def test_hostile_headers_query_strings_and_paths_on_the_agent_endpoints_are_never_a_5xx(client, path):
    """The agent endpoints are outside the page fuzz (tests/web/test_fuzz_pages.py): their own hostile inputs here."""
    for authorization in HOSTILE_AUTHORIZATION:
        assert client.post(path, b"{}", content_type="application/json", HTTP_AUTHORIZATION=authorization).status_code == 401
    for query in ("?x=%00", "?%00=1", "?seq=%FF%FE"):
        assert client.post(path + query, b"{}", content_type="application/json").status_code == 401
    for suffix in ("%00", "/%00", "%ED%A0%80"):
        assert client.post(path + suffix, b"{}", content_type="application/json").status_code == 404
    assert client.get(path).status_code == 405
    assert client.post(path, b"{}", content_type="application/json", HTTP_CONTENT_LENGTH="-1").status_code == 401
