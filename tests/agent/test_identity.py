"""A device's stable identity survives bus renumbering and tells apart identical cards in different slots."""
import re

import pytest

from agent.identity import SERIAL_MARK, device_identities, device_identity, without_serial
from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth as gt
from tests.agent.captures import CAPTURE_NAMES
from tests.agent.renumber import renumbered, shifted


def test_renumbered_buses_keep_every_identity_and_identical_nics_differ(capture):
    root = capture("shared-bridge-group")
    doc = build(Root.of(root))
    moved = renumbered(doc)
    before = {d["bdf"]: d for d in doc["devices"]}
    after = {d["bdf"]: d for d in moved["devices"]}
    assert {b: device_identity(b, before) for b in before} == {b: device_identity(shifted(b), after) for b in before}
    # The two 82540EM NICs behind the bridge (lspci -tvnn) share every id and differ by slot only.
    ids = gt.lspci_dnn(root)
    twins = sorted(b for b, d in ids.items() if (d["vendor"], d["device"]) == ("8086", "100e"))
    assert len(twins) == 2 and device_identity(twins[0], before) != device_identity(twins[1], before)
    assert all(device_identity(b, before).endswith(f"8086:100e/{before[b]['subsystem_vendor_id']}:{before[b]['subsystem_device_id']}"
                                                   f"@{b[-4:]}") for b in twins)


def test_a_serial_number_ends_the_identity_and_can_be_left_out(capture):
    root = capture("shared-bridge-group")
    doc = build(Root.of(root))
    devices = {d["bdf"]: d for d in doc["devices"]}
    text = gt.gt(root, "lspci-vvvnn.txt").read_text()
    serial = re.search(r"Device Serial Number (\S+)", text).group(1)
    (bdf,) = [b for b in devices if device_identity(b, devices).endswith(SERIAL_MARK + serial)]
    assert SERIAL_MARK not in without_serial(device_identity(bdf, devices))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_all_identities_at_once_are_each_devices_own(capture, name):
    devices = {d["bdf"]: d for d in build(Root.of(capture(name)))["devices"]}
    assert device_identities(devices) == {b: device_identity(b, devices) for b in devices}
