"""The JSON Schema accepts every capture's snapshot and rejects broken documents, with both validators the server uses."""
import copy
import json

import fastjsonschema
import jsonschema
import pytest

from agent.paths import Root
from agent.snapshot import SCHEMA_PATH, build
from tests.agent.captures import CAPTURE_NAMES


@pytest.fixture(scope="module")
def schema():
    doc = json.loads(SCHEMA_PATH.read_text())
    jsonschema.Draft202012Validator.check_schema(doc)
    return doc


@pytest.fixture(scope="module")
def validators(schema):
    strict = jsonschema.Draft202012Validator(schema)
    fast = fastjsonschema.compile(schema)

    def accepts(doc) -> tuple[bool, bool]:
        try:
            fast(doc)
            fast_ok = True
        except fastjsonschema.JsonSchemaException:
            fast_ok = False
        return strict.is_valid(doc), fast_ok

    return accepts


@pytest.fixture(scope="module")
def sample(capture):
    return json.loads(json.dumps(build(Root.of(capture("sriov-nvme")))))


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_capture_snapshot_validates(name, capture, validators):
    doc = json.loads(json.dumps(build(Root.of(capture(name)))))
    assert validators(doc) == (True, True)


def test_live_host_snapshot_validates(validators):
    assert validators(json.loads(json.dumps(build(Root.of("/"))))) == (True, True)


def broken(doc, path, value):
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    if value is KeyError:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@pytest.mark.parametrize("path, value", [
    (("schema",), 1),
    (("schema",), "2"),
    (("devices", 0, "bdf"), "00:02.0"),
    (("devices", 0, "bdf"), "0000:00:02.8"),
    (("devices", 0, "vendor_id"), "0x8086"),
    (("devices", 0, "vendor_id"), "8086 "),
    (("devices", 0, "class"), "0200"),
    (("devices", 0, "iommu_group"), "4"),
    (("devices", 0, "parent"), "host"),
    (("devices", 0, "driver"), 7),
    (("devices", 0, "capabilities", "acs"), {"present": True}),
    (("devices", 0, "capabilities", "pcie"), KeyError),
    (("groups", 0, "id"), 1.5),
    (("groups", 0, "devices", 0), "01:00.0"),
    (("iommu", "enabled"), "yes"),
    (("iommu", "units", 0, "vendor"), "ibm"),
    (("iommu", "units", 0, "features", "pasid"), "false"),
    (("vfio", "nodes", 0, "mode"), "600"),
    (("vfio", "nodes", 0, "mode"), "0800"),
    (("holders", 0, "pid"), "256"),
    (("host", "hostname"), "h" * 254),
    (("host", "cmdline_flags", "pci_noats"), None),
    (("warnings",), "none"),
    (("collected_at",), "yesterday"),
    (("mdevs",), KeyError),
])
def test_a_broken_document_is_rejected_by_both_validators(sample, validators, path, value):
    assert validators(sample) == (True, True)
    assert validators(broken(sample, path, value)) == (False, False)


def test_unknown_extra_fields_are_accepted_for_forward_compatibility(sample, validators):
    doc = broken(sample, ("devices", 0, "future_field"), {"anything": 1})
    assert validators(doc) == (True, True)


def test_too_many_devices_are_rejected(sample, validators):
    doc = broken(sample, ("devices",), [sample["devices"][0]] * 65537)
    assert validators(doc) == (False, False)


def test_a_device_pasid_user_without_a_pid_is_accepted(sample, validators):
    # docs/snapshot.md: config space says PASID is on, but not for whom.
    user = {"device": sample["devices"][0]["bdf"], "pid": None, "source": "device-pasid-enabled"}
    assert validators(broken(sample, ("pasid", "users"), [user])) == (True, True)
    assert validators(broken(sample, ("pasid", "users"), [dict(user, pid="none")])) == (False, False)


def test_a_warning_quoting_a_huge_value_is_cut_to_fit_the_schema(sample, validators):
    from agent.sysfs import Warnings

    w = Warnings()
    w.add("/dev-nodes.tsv", "device " + "x" * 100_000 + " is not a PCI function")
    assert validators(broken(sample, ("warnings",), w.as_list())) == (True, True)
    assert validators(broken(sample, ("warnings",), ["x" * 100_000])) == (False, False)
