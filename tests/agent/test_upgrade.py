"""Schema 1 documents upgraded to schema 2: valid against the schema 2 file, nothing guessed."""
import copy
import json
from pathlib import Path

import jsonschema
import pytest

from agent.paths import Root
from agent.snapshot import build
from agent.upgrade import upgrade
from tests.conftest import CAPTURE_NAMES

V2 = json.loads((Path(__file__).parents[2] / "agent" / "schema" / "snapshot-v2.schema.json").read_text())


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_capture_upgraded_validates_against_schema_2(capture, name):
    v1 = build(Root.of(capture(name)))
    v1["schema"] = 1
    before = copy.deepcopy(v1)
    doc = upgrade(v1)
    jsonschema.validate(doc, V2)
    assert doc is not v1 and v1 == before  # the caller's document is left alone, to its last nested field


def test_a_held_groups_members_are_not_taken_as_claims(capture):
    # shared-group-all-vfio: tenant-b-vm2 names 02:01.0 and 02:02.0 with host=; schema 1 listed the bridge too.
    root = capture("shared-group-all-vfio")
    v1 = build(Root.of(root))
    v1["schema"] = 1
    argv = (root / "ground-truth" / "ps.txt").read_text()  # what ps printed for the VM, in the same boot
    [holder] = upgrade(v1)["holders"]
    named = sorted(c["device"] for c in holder["claims"])
    assert named and all(f"host={b}" in argv for b in named)
    assert "0000:01:00.0" not in named  # the bridge is a group member, no QEMU argument names it
    assert holder["devices"] == named
    assert {f["kind"] for f in holder["fds"]} == {"group", "container"}


def test_what_schema_1_did_not_say_is_null_not_guessed():
    doc = upgrade({"schema": 1, "host": {}, "vfio": {"nodes": [], "cdevs": []}, "holders": [
        {"pid": 7, "kind": "other", "cmdline": [], "nodes": ["/dev/vfio/devices/vfio3", "/dev/iommu"]}],
        "pasid": {"idxd": [{"wqs": [{"name": "wq0.0"}]}]}})
    assert doc["vfio"]["cdev_support"] is None and set(doc["vfio"]["modules"].values()) == {None}
    assert doc["host"]["software"] == {"qemu": None, "libvirt": None}
    assert doc["pasid"]["idxd"][0]["wqs"][0]["clients"] is None
    [holder] = doc["holders"]
    assert holder["vm_locked_kb"] is None and holder["claims"] == []
    assert [(f["fd"], f["kind"], f["device"]) for f in holder["fds"]] == [(None, "cdev", None), (None, "iommufd", None)]


def test_a_schema_2_document_is_returned_as_it_is():
    doc = {"schema": 2, "holders": [{"pid": 1, "fds": [], "claims": [{"device": "0000:02:00.0"}]}]}
    assert upgrade(doc) is doc
