"""The host page's ownership facts: group viability (against what the kernel answered the captures' holders),
holders' tenants, mdevs and their VMs, and what the header's counts are made of."""
import re

import pytest
from django.urls import reverse

from fleet.demo.synth import host as demo_host
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import AddressSpace, Attachment, Device, Group, Mdev
from fleet.policy.intent import parse_toml
from fleet.policy.services.intent import intent_replace
from tests.agent.groundtruth import find_groups, gt, lspci_drivers
from tests.conftest import CAPTURE_NAMES

pytestmark = pytest.mark.django_db

VDI_HOST = 12  # the demo fleet's vdi host with mdevs of one GPU given to two tenants (fleet.demo.synth.SHOWCASE)
STATUS = re.compile(r"group (\d+) status flags=0x[0-9a-f]+ viable=([01])")


def kernel_viability(root) -> dict[int, bool]:
    """group -> what VFIO_GROUP_GET_STATUS answered the capture's holders (their ground-truth logs)."""
    out = {}
    for log in (root / "ground-truth").glob("*.log"):
        for gid, viable in STATUS.findall(log.read_text(errors="replace")):
            out[int(gid)] = viable == "1"
    return out


def topology(client, host):
    return client.get(reverse("web:host-topology", args=[host.hostname])).json()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_every_group_says_viable_as_the_kernel_answered_the_holder(viewer_client, fleet, capture, name):
    root = capture(name)
    groups = {g["id"]: g for g in topology(viewer_client, fleet[name])["groups"]}
    truth = kernel_viability(root)
    for gid, viable in truth.items():
        assert groups[gid]["viable"] is viable, (gid, groups[gid]["viability"])
    drivers = lspci_drivers(root)
    for gid, g in groups.items():
        assert g["viability"], gid  # every group says something, violation or not
        members = sorted(b for i, b in find_groups(root) if i == gid)
        if g["viable"] is False:
            # The blockers are the members lspci shows on a host driver that is not a bridge's or a stub's.
            assert g["blockers"] == {b: drivers[b]["driver"] for b in members
                                     if drivers[b]["driver"] not in (None, "vfio-pci", "pcieport", "pci-stub")}
            assert g["blockers"]
        if len(members) > 1:
            assert g["why_shared"], gid


def test_the_non_viable_bridge_group_names_its_e1000_blocker_and_the_bridge(viewer_client, fleet, capture):
    root = capture("shared-bridge-group")
    assert kernel_viability(root)  # the attempt log is there: the kernel refused this group
    (gid,) = {g for g, b in find_groups(root) if b == "0000:02:02.0"}
    g = next(x for x in topology(viewer_client, fleet["shared-bridge-group"])["groups"] if x["id"] == gid)
    assert g["viable"] is False
    assert list(g["blockers"]) == ["0000:02:02.0"] and lspci_drivers(root)["0000:02:02.0"]["driver"] == g["blockers"]["0000:02:02.0"]
    assert "0000:02:02.0 on e1000" in g["viability"]
    assert any("PCIe-to-PCI bridge 01:00.0" in r for r in g["why_shared"]), g["why_shared"]
    # Claimed: 02:01.0 is on vfio-pci (lspci -k); the groups whose members all stay on host drivers are not.
    drivers = lspci_drivers(root)
    for other in topology(viewer_client, fleet["shared-bridge-group"])["groups"]:
        members = [b for i, b in find_groups(root) if i == other["id"]]
        assert other["claimed"] is any(drivers[b]["driver"] == "vfio-pci" for b in members), other["id"]


def test_holders_show_the_tenant_the_intent_gives_their_vm(viewer_client, fleet, capture):
    host = fleet["isolated-nics"]
    # The capture's QEMU runs `-name guest=tenant-a-vm1` (ground-truth/ps.txt).
    assert "guest=tenant-a-vm1" in gt(capture("isolated-nics"), "ps.txt").read_text()
    assert [h["tenant"] for h in topology(viewer_client, host)["holders"]] == [None]
    intent_replace(intent=parse_toml('[[tenants]]\nname = "acme"\nvm_patterns = ["tenant-a-*"]\n'))
    assert [h["tenant"] for h in topology(viewer_client, host)["holders"]] == ["acme"]



def _vdi_host():
    doc = demo_host(VDI_HOST)
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    return doc, host


def test_mdevs_are_in_the_drawing_data_with_the_vm_that_holds_their_group(viewer_client):
    doc, host = _vdi_host()
    assert doc["mdevs"]
    data = topology(viewer_client, host)
    stored = set(Mdev.objects.filter(host=host).values_list("uuid", "parent", "group_number"))
    assert {(m["uuid"], m["parent"], m["group"]) for m in data["mdevs"]} == stored
    assert {m["uuid"] for m in doc["mdevs"]} == {u for u, _, _ in stored}
    # Expected holders from the document the agent sent: whoever holds the mdev's group node.
    for m in data["mdevs"]:
        expected = sorted(h["pid"] for h in doc["holders"] if m["group"] in h["groups"])
        assert m["holders"] == expected and expected, m
        assert m["parentId"] == f"dev:{m['parent']}"
        assert all({"source": m["id"], "target": f"holder:{pid}"} in data["edges"] for pid in expected)
    groups = {g["id"]: g for g in data["groups"]}
    for m in data["mdevs"]:
        assert groups[m["group"]]["kind"] == "mdev" and groups[m["group"]]["mdevs"] == [m["uuid"]]
        assert groups[m["group"]]["viable"] is None  # no PCI member: IOMMU viability does not apply


def test_the_header_explains_its_counts_and_links_them(viewer_client):
    doc, host = _vdi_host()
    html = viewer_client.get(reverse("web:host-detail", args=[host.hostname])).content.decode()
    groups = doc["groups"]
    with_pci = sum(1 for g in groups if g["devices"])
    mdev_groups = {m["iommu_group"] for m in doc["mdevs"]}
    assert Group.objects.filter(host=host).count() == len(groups) == with_pci + len(mdev_groups)
    assert f"{len(doc['devices'])} / {len(groups)} / " in html
    assert f"{len(groups)} groups</a>: every IOMMU group" in html
    assert f"{with_pci} with PCI functions, {len(mdev_groups)} that VFIO made for mdevs" in html
    assert f"the {len(doc['mdevs'])} mediated devices (mdevs)" in html
    assert f"?q=host%3A{host.hostname}%20owner%3Auserspace" in html


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_topology_json_carries_exactly_the_stored_address_spaces(viewer_client, fleet, name):
    host = fleet[name]
    data = topology(viewer_client, host)
    assert sorted((s["key"], s["backend"], s["attachment_known"]) for s in data["address_spaces"]) == sorted(
        AddressSpace.objects.filter(host=host).values_list("key", "backend", "attachment_known"))
    drawn = sorted((s["key"], f"device {a['device']}", a["certainty"]) for s in data["address_spaces"] for a in s["devices"])
    drawn += sorted((s["key"], f"group {a['group']}", a["certainty"]) for s in data["address_spaces"] for a in s["groups"])
    stored = [(sp, f"device {b}" if b else f"group {g}", c) for sp, b, g, c in
              Attachment.objects.filter(host=host).values_list("space", "device_bdf", "group_number", "certainty")]
    assert sorted(drawn) == sorted(stored)
    assert {n["bdf"]: n["cdev"] for n in data["nodes"] if n["kind"] == "device"} == dict(
        Device.objects.filter(host=host).values_list("bdf", "cdev"))
