"""PCI addresses: the one parser, short form and range check the agent uses everywhere."""
import json

import jsonschema
import pytest

from agent.bdf import bdf_from_numbers, is_bdf, parse_bdf, short_bdf, slot_of
from agent.paths import Root
from agent.snapshot import SCHEMA_PATH, build


@pytest.mark.parametrize("text, want", [
    ("0000:02:00.0", "0000:02:00.0"),
    ("02:00.0", "0000:02:00.0"),
    ("0000:0A:1F.7\n", "0000:0a:1f.7"),
    ("1:02:00.0", "0001:02:00.0"),
    ("10000:e0:06.0", None),  # Intel VMD domain: the wire format has 4-digit domains only
    ("0000:02:00.8", None),
    ("0000:02:0.0", None),
    ("0000:02:00.0,rombar=0", None),
    ("٠٠٠٠:02:00.0", None),
])
def test_any_spelling_of_a_bdf_becomes_the_kernels_and_nothing_else_does(text, want):
    assert parse_bdf(text) == want


def test_only_the_kernels_spelling_is_a_bdf():
    assert is_bdf("0000:02:00.0")
    assert not is_bdf("0000:0A:00.0") and not is_bdf("02:00.0") and not is_bdf("0000:02:00.0\n")


def test_numbers_out_of_their_field_are_no_bdf():
    assert bdf_from_numbers(0, 2, 31, 7) == "0000:02:1f.7"
    assert bdf_from_numbers(0x10000, 2, 0, 0) is None and bdf_from_numbers(0, 2, 32, 0) is None
    assert bdf_from_numbers(0, 256, 0, 0) is None and bdf_from_numbers(0, 2, 0, 8) is None


def test_short_form_and_slot():
    assert short_bdf("0000:02:00.1") == "02:00.1" and short_bdf("0001:02:00.1") == "0001:02:00.1"
    assert slot_of("0000:02:00.1") == "0000:02:00"


def test_a_qemu_passing_through_a_vmd_device_leaves_the_snapshot_valid(writable_capture):
    # QEMU given `host=10000:e0:06.0` (a device behind Intel VMD): the BDF used to go out as the
    # holder's device, which the schema refuses, so the server rejected every snapshot of the host.
    root = writable_capture("isolated-nics")
    cmdline = root / "proc/254/cmdline"
    cmdline.write_bytes(cmdline.read_bytes() + b"-device\x00vfio-pci,host=10000:e0:06.0\x00")
    doc = build(Root.of(root))
    [holder] = doc["holders"]
    assert holder["devices"] == ["0000:02:00.0"]
    jsonschema.validate(doc, json.loads(SCHEMA_PATH.read_text()))
