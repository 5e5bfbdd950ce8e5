"""The issue's example search, "where are all the ConnectX VFs and who owns them", over a synthetic nfv host."""
import pytest
from django.urls import reverse

from fleet.demo import synth
from fleet.demo.services import host_file
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document

pytestmark = pytest.mark.django_db


def _connectx_nfv_document() -> dict:
    # The showcase's nfv host built on llnl-corona's tree, the hwloc fixture with a ConnectX-6 (15b3:101b).
    index = next(i for i, (machine, role, _, _) in enumerate(synth.SHOWCASE) if machine == synth.CORONA and role == "nfv")
    return synth.host(index)


def _ingest(doc: dict):
    host, _ = host_token_create(hostname=doc["host"]["hostname"])
    result = snapshot_receive_document(host=host, document=doc)
    assert result.http_status == 202, result
    snapshot_apply(snapshot_id=result.body["id"])
    return host_file(hostname=host.hostname, role=doc["synthetic"]["role"], labels=tuple(doc["synthetic"]["labels"]))


def _expected(doc: dict) -> dict[str, tuple[str, str | None]]:
    """VF BDF -> (owner kind, owner) as the document says: a holder's devices are userspace, owned by its VM
    (QEMU) or its workload (a DPDK process's file prefix); the other VFs stay on mlx5_core."""
    holder_of = {b: h for h in doc["holders"] for b in h["devices"]}
    out = {}
    for d in doc["devices"]:
        if d["vendor_id"] == "15b3" and (d["sriov"] or {}).get("physfn"):
            h = holder_of.get(d["bdf"])
            out[d["bdf"]] = ("userspace", h["vm"] or h["workload"]) if h else ("host", None)
    return out


def test_vendor_15b3_vf_yes_finds_every_connectx_vf_of_an_nfv_host_with_its_owner(viewer_client):
    doc = _connectx_nfv_document()
    host = _ingest(doc)
    expected = _expected(doc)
    assert {kind for kind, _ in expected.values()} == {"userspace", "host"}
    kinds = {h["kind"] for h in doc["holders"] for b in h["devices"] if b in expected}
    assert kinds == {"qemu", "dpdk"}, "ConnectX VFs in VNF VMs and in a DPDK data plane"

    for q in ("vendor:15b3 vf:yes", "vendor:15b3 vf:yes role:nfv"):
        data = viewer_client.get(reverse("web:search-export-json"), {"q": q}).json()
        got = {d["bdf"]: (d["owner_kind"], d["vm"]) for d in data["devices"] if d["hostname"] == host.hostname}
        assert got == expected, q
        assert all(d["sriov"] == "vf" and d["vendor_device"].startswith("15b3:") for d in data["devices"])

    html = viewer_client.get(reverse("web:search"), {"q": "vendor:15b3 vf:yes"}).content.decode()
    for bdf, (_, vm) in expected.items():
        assert f'/hosts/{host.hostname}/?focus={bdf.replace(":", "%3A")}' in html
        if vm:
            assert vm in html
