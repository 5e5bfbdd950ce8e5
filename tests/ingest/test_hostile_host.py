"""What a hostile host can send to the agent endpoints (issue 10 items 1-4, 6): deep nesting, lists no real
host has, a seq no agent produces, a NUL in a heartbeat's hash, a body it never finishes. Each is a 4xx
naming what is wrong, before anything is stored; nothing of it reaches the apply."""
import copy
import io
import json
import time

import pytest
from django.core.handlers.wsgi import LimitedStream
from django.test import RequestFactory

from fleet.ingest import views
from fleet.ingest.models import Snapshot
from fleet.inventory import limits

pytestmark = pytest.mark.django_db

ISOLATED = "isolated-nics"


def nested(depth: int) -> str:
    """JSON text of a value `depth` containers deep (objects and lists in turn); as text, since json.dumps
    itself recurses past ~900 levels."""
    opening = "".join('{"k":' if level % 2 == 0 else "[" for level in range(depth))
    closing = "".join("}" if level % 2 == 0 else "]" for level in reversed(range(depth)))
    return f'{opening}"bottom"{closing}'


def with_nested(doc: dict, depth: int) -> bytes:
    doc["devices"][0]["vendor_extension"] = "DEEP"
    return json.dumps(doc).encode().replace(b'"DEEP"', nested(depth).encode())


def errors(response) -> list[dict]:
    body = response.json()
    assert body.get("errors"), body
    return body["errors"]


@pytest.mark.parametrize("depth", [950, 1000])
def test_deep_nesting_in_a_free_form_field_is_refused_before_anything_is_stored(enrolled, push, depth):
    """Every object of the schema takes unknown keys; 950 levels in one made the apply raise RecursionError
    (re-queued forever), 1000 made the content hash raise at receive (a 500 the agent retries forever)."""
    _, token, doc = enrolled(ISOLATED)
    response = push(token, with_nested(doc, depth))
    assert response.status_code == 400
    [error] = errors(response)
    assert error["path"].startswith("$.devices[0].vendor_extension") and "MAX_JSON_DEPTH" in error["message"]
    assert Snapshot.objects.count() == 0


def test_nesting_within_the_limit_in_a_free_form_field_is_stored(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    # The document, devices and the device are 3 levels.
    assert push(token, with_nested(doc, limits.MAX_JSON_DEPTH - 3)).status_code == 202


def _device_copies(doc: dict, count: int, **fields) -> list[dict]:
    template = doc["devices"][0]
    out = []
    for i in range(count):
        device = copy.deepcopy(template)
        device.update(bdf=f"{i // 65536 + 1:04x}:{i // 256 % 256:02x}:{i // 8 % 32:02x}.{i % 8}", iommu_group=None,
                      **{k: v(i) if callable(v) else v for k, v in fields.items()})
        out.append(device)
    return out


def test_more_devices_than_a_host_has_are_refused_naming_the_cap(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    doc["devices"] = _device_copies(doc, limits.MAX_DEVICES + 1)
    doc["groups"] = []
    response = push(token, doc, gzipped=True)
    assert response.status_code == 400
    assert errors(response) == [{"path": "$.devices", "message": f"{limits.MAX_DEVICES + 1} devices; a host may report at most "
                                 f"{limits.MAX_DEVICES} (fleet.inventory.limits.MAX_DEVICES)"}]
    assert Snapshot.objects.count() == 0


def test_thousands_of_distinct_driver_names_are_refused(enrolled, push):
    """Driver names come from hosts and the search probes each one: 10,000 of them from one host made searches slow."""
    _, token, doc = enrolled(ISOLATED)
    doc["devices"] = _device_copies(doc, limits.MAX_DRIVERS + 1, driver=lambda i: f"evil{i}")
    doc["groups"] = []
    response = push(token, doc)
    assert response.status_code == 400
    [error] = errors(response)
    assert error["path"] == "$.devices[*].driver" and "MAX_DRIVERS" in error["message"]


def test_thousands_of_holders_are_refused(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    holder = {"pid": 1, "comm": "x", "exe": None, "uid": 0, "cmdline": [], "nodes": [], "device_fds": 0, "groups": [],
              "devices": [], "kind": "other", "vm": None, "workload": None, "cgroup": None, "start_time": None}
    doc["holders"] = [dict(holder, pid=pid) for pid in range(1, limits.MAX_HOLDERS + 2)]
    response = push(token, doc, gzipped=True)
    assert response.status_code == 400
    assert [e["path"] for e in errors(response)] == ["$.holders"]
    assert "MAX_HOLDERS" in errors(response)[0]["message"]


@pytest.mark.parametrize("seq", [10**18 * 1.0, 1e18, 2.0, 2**53, 2**63 - 1, True, -1])
def test_a_seq_no_agent_produces_is_refused(enrolled, push, seq):
    """One report with seq 1e18 used to supersede every later one of the host, forever."""
    _, token, doc = enrolled(ISOLATED)
    body = json.dumps(dict(doc, seq=seq)).encode()
    if isinstance(seq, float):
        body = body.replace(json.dumps(seq).encode(), repr(seq).encode())  # as the host wrote it
    response = push(token, body)
    assert response.status_code == 400
    assert [e["path"] for e in errors(response)] == ["$.seq"]
    assert Snapshot.objects.count() == 0


def test_the_largest_seq_an_agent_can_produce_is_stored(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    assert push(token, dict(doc, seq=limits.MAX_SEQ)).status_code == 202


@pytest.mark.parametrize("digest", ["\x00" * 64, "a" * 63 + "\x00", "A" * 64, "g" * 64, "a" * 64 + "\n"])
def test_a_heartbeat_whose_hash_is_not_64_lowercase_hex_is_a_4xx(enrolled, push, digest):
    """A NUL in the hash reached PostgreSQL (which refuses NUL in text) before the token was looked at: a 500."""
    _, token, _doc = enrolled(ISOLATED)
    assert push(token, {"content_hash": digest, "seq": 1}, path="/api/v1/heartbeat").status_code == 400
    assert push(None, {"content_hash": digest, "seq": 1}, path="/api/v1/heartbeat").status_code == 401
    assert push("iof_\x00", {"content_hash": digest, "seq": 1}, path="/api/v1/heartbeat").status_code == 401


def test_a_heartbeat_with_a_seq_no_agent_produces_is_refused(enrolled, push):
    _, token, _doc = enrolled(ISOLATED)
    for seq in (2**53, 1.5, True):
        assert push(token, {"content_hash": "a" * 64, "seq": seq}, path="/api/v1/heartbeat").status_code == 400


class _Untouchable(io.RawIOBase):
    """A request body that fails the test if anyone reads it."""

    def readable(self):
        return True

    def readinto(self, buffer):
        raise AssertionError("the body was read before the token was checked")


class _Trickle(io.RawIOBase):
    """A body sent a byte every `pause` seconds."""

    def __init__(self, size: int, pause: float):
        self.left, self.pause = size, pause

    def readable(self):
        return True

    def readinto(self, buffer):
        if not self.left:
            return 0
        time.sleep(self.pause)
        buffer[0:1] = b"{"
        self.left -= 1
        return 1


def _agent_request(path: str, stream, *, token: str | None, length: int):
    request = RequestFactory().post(path, b"", content_type="application/json")
    request.META.update({"wsgi.input": stream, "CONTENT_LENGTH": str(length)})
    if token:
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    request._stream = LimitedStream(stream, length)  # what WSGIRequest builds from wsgi.input
    return request


@pytest.mark.parametrize("view, path", [(views.snapshot_create, "/api/v1/snapshots"), (views.heartbeat_create, "/api/v1/heartbeat")])
def test_a_request_without_a_token_is_refused_without_reading_its_body(view, path):
    for token in (None, "x" * 500, "iof_\x00\x01"):
        response = view(_agent_request(path, io.BufferedReader(_Untouchable()), token=token, length=1000))
        assert response.status_code == 401


def test_a_snapshot_with_an_unknown_token_is_refused_without_reading_its_body():
    response = views.snapshot_create(_agent_request("/api/v1/snapshots", io.BufferedReader(_Untouchable()),
                                                    token="iof_" + "a" * 43, length=10**6))
    assert response.status_code == 401


def test_a_body_that_does_not_arrive_within_the_deadline_is_a_408(enrolled, settings):
    settings.FLEET_INGEST_BODY_DEADLINE = 1
    _, token, _doc = enrolled(ISOLATED)
    started = time.monotonic()
    response = views.snapshot_create(_agent_request("/api/v1/snapshots", _Trickle(100, 0.05), token=token, length=100))
    assert response.status_code == 408
    assert time.monotonic() - started < 3
    assert Snapshot.objects.count() == 0


@pytest.mark.parametrize("driver", [["a"], {"a": 1}, 7, None])
def test_a_driver_that_is_not_a_string_is_a_schema_400_not_a_500(enrolled, push, driver):
    """The cardinality checks run before the schema, on whatever the host sent (hypothesis found a list here)."""
    _, token, doc = enrolled(ISOLATED)
    doc["devices"][0]["driver"] = driver
    doc["holders"] = [{"groups": {"x": 1}, "devices": "abc", "nodes": None}]
    assert push(token, doc).status_code == 400
