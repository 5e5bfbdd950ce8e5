"""The content hash keeps its value across the shallow-copy/orjson rewrite of stable_view/canonical_json.

Agents in the field and the server compare hashes, so a new server must hash every document
exactly as the old code did. `_reference_hash` is the previous implementation, frozen here.
"""
import copy
import hashlib
import json

import pytest

from agent.paths import Root
from agent.snapshot import VOLATILE, VOLATILE_HOLDER_FIELDS, build, canonical_json, content_hash, stable_view
from tests.agent.captures import CAPTURE_NAMES


def _reference_stable_view(doc: dict) -> dict:
    out = copy.deepcopy(doc)
    for path, keys in VOLATILE.items():
        node = out
        for part in path:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict):
            for key in keys:
                node.pop(key, None)
    for holder in out.get("holders") or []:
        if isinstance(holder, dict):
            for key in VOLATILE_HOLDER_FIELDS:
                holder.pop(key, None)
    return out


def _reference_hash(doc: dict) -> str:
    canonical = json.dumps(_reference_stable_view(doc), sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return hashlib.sha256(canonical).hexdigest()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_capture_snapshot_hashes_as_the_previous_implementation_did(capture, name):
    doc = build(Root.of(capture(name)), seq=7)
    assert content_hash(doc) == _reference_hash(doc)


def test_a_480_device_host_hashes_as_the_previous_implementation_did():
    from fleet.demo.synth import large_host

    doc = large_host(480, hostname="hash-check")
    assert content_hash(doc) == _reference_hash(doc)


def test_the_stable_view_leaves_the_document_untouched(capture):
    doc = build(Root.of(capture(CAPTURE_NAMES[0])), seq=3)
    doc["holders"] = [{"pid": 1, "start_time": "x", "vm_pinned_kb": 5}]
    before = copy.deepcopy(doc)
    view = stable_view(doc)
    assert doc == before
    assert "seq" not in view and "boot_time" not in view["host"] and view["holders"] == [{"pid": 1}]


# Values the agent does not write today but json and orjson spell (or accept) differently; each must
# still hash as before (the json fallback). Hand-made: no capture holds floats or 65-bit integers.
ODD_VALUES = [
    pytest.param(1e-05, id="small-float"),
    pytest.param(1e16, id="exponent-float"),
    pytest.param(2**64 + 1, id="int-past-64-bits"),
    pytest.param({1: "int key"}, id="non-str-key"),
    pytest.param("\x00\x1f\x7f\u2028 é \U0001f600", id="control-and-astral"),
    pytest.param({"\uffff": 1, "\U0001f600": 2, "Z": 3, "a": 4}, id="key-order-across-planes"),
]


@pytest.mark.parametrize("value", ODD_VALUES)
def test_values_orjson_spells_differently_still_hash_as_before(capture, value):
    doc = build(Root.of(capture(CAPTURE_NAMES[0])), seq=1)
    doc["host"]["dmi"] = {"odd": value}
    assert content_hash(doc) == _reference_hash(doc)
    assert canonical_json(doc) == json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
