"""Why devices share a group: every multi-device group of every capture is explained by what lspci
(parsed independently) shows about the members' bridges and ACS."""
import pytest

from agent.bdf import short_bdf as short
from agent.explain import group_reasons
from agent.paths import Root
from agent.snapshot import build
from tests.agent import groundtruth as gt
from tests.agent.captures import CAPTURE_NAMES


def grouped(root):
    groups: dict[int, set[str]] = {}
    for gid, bdf in gt.find_groups(root):
        groups.setdefault(gid, set()).add(bdf)
    return groups


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_each_multi_device_group_is_explained_by_the_bridges_and_acs_lspci_shows(name, capture):
    root = capture(name)
    doc = build(Root.of(root))
    by_bdf = {d["bdf"]: d for d in doc["devices"]}
    lspci, parents = gt.lspci_vvv(root), gt.lspci_tree_parents(root)
    for gid, members in grouped(root).items():
        reasons = group_reasons(sorted(members), by_bdf)
        if len(members) == 1:
            assert reasons == []
            continue
        text = " ".join(reasons)
        legacy = {parents[b] for b in members if parents.get(b)
                  and lspci[parents[b]].express == "PCI-Express to PCI/PCI-X Bridge" and lspci[b].express is None}
        for bridge in legacy:
            assert f"behind PCIe-to-PCI bridge {short(bridge)}" in text, (gid, reasons)
        slots = {b.rsplit(".", 1)[0] for b in members if b not in legacy and parents.get(b) not in legacy}
        for slot in slots:
            functions = [b for b in members if b.startswith(slot + ".")]
            if len(functions) > 1 and all(lspci[b].acs_cap is None for b in functions):
                assert f"multi-function device {short(slot)} with no ACS" in text, (gid, reasons)
        assert legacy or slots, (gid, members)
        assert "config space does not show why" not in text, (gid, reasons)


# Hand-made device lists below stand for what no capture shows: a switch whose downstream port does
# not enable ACS (common on consumer boards), and the same host read as non-root.

def _port(bdf, parent, port_type, acs):
    return {"bdf": bdf, "parent": parent, "is_bridge": True,
            "capabilities": {"pcie": {"present": True, "port_type": port_type}, "acs": acs}}


def _endpoint(bdf, parent, acs=None):
    return {"bdf": bdf, "parent": parent, "is_bridge": False,
            "capabilities": {"pcie": {"present": True, "port_type": "endpoint"}, "acs": acs}}


ACS_ON = {"present": True, "ctl": {"sv": True, "rr": True, "cr": True, "uf": True}}
ACS_NO_RR = {"present": True, "ctl": {"sv": True, "rr": False, "cr": True, "uf": False}}


def test_a_downstream_port_without_the_required_acs_bits_is_named_with_the_missing_bits():
    devices = [_port("0000:00:1c.0", None, "root_port", ACS_ON),
               _port("0000:01:00.0", "0000:00:1c.0", "upstream_port", {"present": False}),
               _port("0000:02:01.0", "0000:01:00.0", "downstream_port", ACS_NO_RR),
               _endpoint("0000:03:00.0", "0000:02:01.0", {"present": False}),
               _endpoint("0000:03:00.1", "0000:02:01.0", {"present": False})]
    by_bdf = {d["bdf"]: d for d in devices}
    reasons = group_reasons(["0000:03:00.0", "0000:04:00.0"], {**by_bdf, "0000:04:00.0": _endpoint("0000:04:00.0", "0000:02:01.0")})
    assert reasons[0].startswith("switch downstream port 02:01.0 has ACS without RR/UF enabled")


def test_unknown_acs_as_non_root_is_said_not_guessed():
    devices = [_endpoint("0000:05:00.0", None), _endpoint("0000:06:00.0", None)]
    by_bdf = {d["bdf"]: d for d in devices}
    (reason,) = group_reasons(["0000:05:00.0", "0000:06:00.0"], by_bdf)
    assert "some ACS state unknown: run as root" in reason
