"""PASID users: idxd (DSA/IAA) shared work queues and their openers, and devices with PASID enabled.
No capture has either (QEMU 7.2 emulates no DSA and no PASID capability), so hand-made trees stand in."""
import json
import re

import jsonschema
import pytest

from agent.collectors import pasid
from agent.paths import Root
from agent.snapshot import SCHEMA_PATH, build
from agent.sysfs import Reader
from tests.agent.handmade import link, write
from tests.agent.captures import CAPTURE_NAMES

DSA = "sys/devices/pci0000:6a/0000:6a:01.0/dsa0"



@pytest.fixture
def spr_host(tmp_path):
    """Stands for a Sapphire Rapids host (6.4+) with DSA dsa0: wq0.0 shared user WQ opened by pids 900
    and 901, wq0.1 dedicated kernel WQ with no openers."""
    write(tmp_path, f"{DSA}/pasid_enabled", "1\n")
    link(tmp_path, "sys/bus/dsa/devices/dsa0", "../../../devices/pci0000:6a/0000:6a:01.0/dsa0")
    for wq, mode, typ in (("wq0.0", "shared", "user"), ("wq0.1", "dedicated", "kernel")):
        write(tmp_path, f"{DSA}/{wq}/mode", mode + "\n")
        write(tmp_path, f"{DSA}/{wq}/type", typ + "\n")
        write(tmp_path, f"{DSA}/{wq}/state", "enabled\n")
        link(tmp_path, f"sys/bus/dsa/devices/{wq}", f"../../../devices/pci0000:6a/0000:6a:01.0/dsa0/{wq}")
    write(tmp_path, f"{DSA}/wq0.0/clients", "2\n")
    for n, pid in ((0, 900), (1, 901)):
        write(tmp_path, f"{DSA}/wq0.0/dsa!wq0.0/file{n}/pid", f"{pid}\n")
    return tmp_path


def test_idxd_device_with_its_work_queues_and_openers(spr_host):
    rd = Reader(Root.of(spr_host))
    facts = pasid.collect(rd, [])
    (dev,) = facts["idxd"]
    assert (dev["name"], dev["device"], dev["pasid_enabled"]) == ("dsa0", "0000:6a:01.0", True)
    assert dev["wqs"] == [
        {"name": "wq0.0", "mode": "shared", "type": "user", "state": "enabled", "clients": 2, "openers": [900, 901]},
        {"name": "wq0.1", "mode": "dedicated", "type": "kernel", "state": "enabled", "clients": None, "openers": []},
    ]
    assert rd.warnings.as_list() == []


def test_each_wq_opener_is_a_pasid_user_of_the_dsa_device(spr_host):
    users = pasid.collect(Reader(Root.of(spr_host)), [])["users"]
    assert users == [{"device": "0000:6a:01.0", "pid": 900, "source": "idxd-wq"},
                     {"device": "0000:6a:01.0", "pid": 901, "source": "idxd-wq"}]


def test_a_device_whose_pasid_capability_is_enabled_is_a_user_without_pid():
    # Stands for a GPU doing SVA: config space PASID Enable+ (decoded by config_space into capabilities).
    devices = [{"bdf": "0000:3b:00.0", "capabilities": {"pasid": {"present": True, "enabled": True, "width": 20}}},
               {"bdf": "0000:3c:00.0", "capabilities": {"pasid": {"present": True, "enabled": False, "width": 20}}},
               {"bdf": "0000:3d:00.0", "capabilities": {"pasid": None}}]
    users = pasid.collect(Reader(Root.of("/nonexistent-root")), devices)["users"]
    assert users == [{"device": "0000:3b:00.0", "pid": None, "source": "device-pasid-enabled"}]


def test_a_garbled_opener_pid_is_warned_and_skipped(spr_host):
    (spr_host / f"{DSA}/wq0.0/dsa!wq0.0/file1/pid").write_text("nine hundred\n")
    rd = Reader(Root.of(spr_host))
    facts = pasid.collect(rd, [])
    assert facts["idxd"][0]["wqs"][0]["openers"] == [900]
    assert any("file1/pid" in w for w in rd.warnings.as_list())


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_captures_have_no_idxd_and_pasid_users_only_where_lspci_shows_pasid_enabled(capture, name):
    root = capture(name)
    text = (root / "ground-truth" / "lspci-vvvnn.txt").read_text()
    enabled, current = set(), None
    for line in text.splitlines():
        if line and not line[0].isspace():
            current = line.split()[0]
        elif re.search(r"PASIDCtl:\s*Enable\+", line):
            enabled.add(current)
    doc = build(Root.of(root))
    assert doc["pasid"]["idxd"] == []
    assert {u["device"] for u in doc["pasid"]["users"]} == enabled


def test_both_kinds_of_pasid_user_fit_the_snapshot_schema(spr_host):
    devices = [{"bdf": "0000:3b:00.0", "capabilities": {"pasid": {"present": True, "enabled": True, "width": 20}}}]
    facts = pasid.collect(Reader(Root.of(spr_host)), devices)
    assert {u["source"] for u in facts["users"]} == {"idxd-wq", "device-pasid-enabled"}
    schema = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator({**schema["properties"]["pasid"], "$defs": schema["$defs"]}).validate(facts)
