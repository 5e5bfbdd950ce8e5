"""Pages and JSON endpoints over the imported captures, checked against the captures' ground truth."""
import csv
import io
import json

import pytest
from django.urls import reverse
from django.utils import timezone

from fleet.inventory.models import Device, Host
from fleet.policy.models import Violation
from tests.agent.groundtruth import find_groups, lspci_drivers
from tests.conftest import CAPTURE_NAMES

pytestmark = pytest.mark.django_db


def _urls(host):
    return [
        reverse("web:fleet"), reverse("web:fleet-tiles"), reverse("web:violations"), reverse("web:search") + "?q=nic",
        reverse("web:host-detail", args=[host.hostname]), reverse("web:host-topology", args=[host.hostname]),
        reverse("web:host-history", args=[host.hostname]), reverse("web:search-export-csv") + "?q=nic",
    ]


def test_every_page_and_endpoint_needs_a_login(client, fleet):
    for url in _urls(fleet["isolated-nics"]):
        response = client.get(url)
        assert response.status_code == 302, url
        assert response["Location"].startswith("/accounts/login/"), url


def test_login_page_renders_and_logs_in(client, viewer):
    assert client.get("/accounts/login/").status_code == 200
    response = client.post("/accounts/login/", {"username": "viewer-web", "password": "pw"})
    assert response.status_code == 302 and response["Location"] == "/"


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_host_pages_render_for_every_capture(viewer_client, fleet, name):
    host = fleet[name]
    for url in _urls(host):
        response = viewer_client.get(url)
        assert response.status_code == 200, url
    assert host.hostname in viewer_client.get(reverse("web:host-detail", args=[host.hostname])).content.decode()


@pytest.mark.parametrize("name", CAPTURE_NAMES)
def test_topology_json_has_lspci_devices_drivers_and_find_groups(viewer_client, fleet, capture, name):
    root = capture(name)
    data = viewer_client.get(reverse("web:host-topology", args=[fleet[name].hostname])).json()
    devices = {n["bdf"]: n for n in data["nodes"] if n["kind"] == "device"}
    truth = lspci_drivers(root)
    assert set(devices) == set(truth)
    assert {b: d["driver"] for b, d in devices.items()} == {b: t["driver"] for b, t in truth.items()}
    members = {(g["id"], b) for g in data["groups"] for b in g["members"]}
    assert members == find_groups(root)
    # Every row hangs off a drawn parent, so d3.stratify gets exactly one root.
    ids = {n["id"] for n in data["nodes"]}
    assert [n for n in data["nodes"] if n["parentId"] is None] == [data["nodes"][0]]
    assert all(n["parentId"] in ids for n in data["nodes"][1:])


def test_shared_bridge_group_marks_its_mixed_group_for_the_drawing(viewer_client, fleet, capture):
    host = fleet["shared-bridge-group"]
    # The non-viable group is the one holding both NICs behind the bridge (find-iommu-groups ground truth).
    group = {g for g, b in find_groups(capture("shared-bridge-group")) if b == "0000:02:01.0"}.pop()
    data = viewer_client.get(reverse("web:host-topology", args=[host.hostname])).json()
    g = next(g for g in data["groups"] if g["id"] == group)
    assert "group-mixed-ownership" in g["violations"]


def test_fleet_page_filters_by_severity(viewer_client, fleet):
    critical_hosts = set(Violation.objects.filter(severity="critical", status="open").values_list("host__hostname", flat=True))
    assert critical_hosts, "the captures have critical violations (mixed group, no IOMMU)"
    html = viewer_client.get(reverse("web:fleet") + "?severity=critical").content.decode()
    shown = {h.hostname for h in fleet.values() if f'data-host="{h.hostname}"' in html}
    assert shown == critical_hosts & {h.hostname for h in fleet.values()}


def test_fleet_page_counts_come_from_ground_truth(viewer_client, fleet, capture):
    html = viewer_client.get(reverse("web:fleet")).content.decode()
    for name, host in fleet.items():
        row = html.split(f'data-host="{host.hostname}"', 1)[1].split("</tr>", 1)[0]
        cells = [c.split(">", 1)[1].split("<", 1)[0] for c in row.split('<td class="num"')[1:4]]
        groups = len({g for g, _ in find_groups(capture(name))})
        assert cells[:2] == [str(groups), str(len(lspci_drivers(capture(name))))], name


def test_fleet_page_paginates_on_the_server(viewer_client, fleet):
    Host.objects.bulk_create([Host(hostname=f"zz-page-{i:03d}") for i in range(120)])
    response = viewer_client.get(reverse("web:fleet") + "?q=zz-page-&page=3")
    html = response.content.decode()
    assert response.context["total"] == 120
    assert html.count('data-host="zz-page-') == 20
    assert 'data-host="zz-page-100"' in html and 'data-host="zz-page-099"' not in html


def _truth_drivers(capture):
    return {(name, bdf): t["driver"] for name in CAPTURE_NAMES for bdf, t in lspci_drivers(capture(name)).items()}


def test_search_by_driver_finds_exactly_the_lspci_vfio_devices(viewer_client, fleet, capture):
    expected = {(fleet[n].hostname, b) for (n, b), drv in _truth_drivers(capture).items() if drv == "vfio-pci"}
    data = viewer_client.get(reverse("web:search-export-json") + "?q=driver:vfio-pci").json()
    got = {(d["hostname"], d["bdf"]) for d in data["devices"] if d["hostname"] in {h.hostname for h in fleet.values()}}
    assert got == expected and expected


def test_search_negated_driver_with_class_and_csv_export(viewer_client, fleet, capture):
    hostnames = {h.hostname for h in fleet.values()}
    expected = set()
    for name in CAPTURE_NAMES:
        for bdf, t in lspci_drivers(capture(name)).items():
            if t["driver"] != "vfio-pci" and (capture(name) / "sys/bus/pci/devices" / bdf / "class").read_text().startswith("0x0200"):
                expected.add((fleet[name].hostname, bdf))
    response = viewer_client.get(reverse("web:search-export-csv") + "?q=class:ethernet+driver:!vfio-pci")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert {(r["hostname"], r["bdf"]) for r in rows if r["hostname"] in hostnames} == expected


def test_search_page_links_results_to_the_device_on_its_drawing(viewer_client, fleet):
    host = fleet["sriov-nvme"]
    html = viewer_client.get(reverse("web:search") + "?q=vf:yes+host:" + host.hostname).content.decode()
    vfs = Device.objects.filter(host=host, physfn_bdf__isnull=False).values_list("bdf", flat=True)
    assert vfs
    for bdf in vfs:
        assert f'/hosts/{host.hostname}/?focus={bdf.replace(":", "%3A")}' in html


def test_a_search_that_matches_nothing_says_so(viewer_client, fleet):
    assert not Host.objects.filter(hostname="no-such-host").exists()
    html = viewer_client.get(reverse("web:search") + "?q=host:no-such-host").content.decode()
    assert "0 devices" in html and "No device matches." in html


def test_search_reports_bad_terms(viewer_client, fleet):
    html = viewer_client.get(reverse("web:search") + "?q=vendor:nothex").content.decode()
    assert "needs 4 hex digits" in html


def test_history_lists_changes_and_diffs_two_snapshots(viewer_client, fleet, capture):
    from agent.paths import Root
    from agent.snapshot import build
    from fleet.ingest.models import Snapshot
    from fleet.ingest.services import snapshot_apply, snapshot_receive_document

    host = Host.objects.create(hostname="history-web")
    first = build(Root.of(capture("isolated-nics")), seq=1)
    second = json.loads(json.dumps(first))
    second["seq"] = 2
    rebound = next(d for d in second["devices"] if d["driver"] == "vfio-pci")
    rebound["driver"] = "e1000e"
    for doc in (first, second):
        doc["host"]["hostname"] = host.hostname
        snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
    old, new = Snapshot.objects.filter(host=host).order_by("id").values_list("id", flat=True)
    html = viewer_client.get(reverse("web:host-history", args=[host.hostname]) + f"?from={old}&to={new}").content.decode()
    assert 'data-kind="driver_changed"' in html
    assert rebound["bdf"] in html.split('class="grid diff"', 1)[1]
    assert "driver changed" in html.split('class="timeline"', 1)[1]


def test_fleet_page_filters_by_role_label_stale_and_tenant(viewer_client, fleet):
    from fleet.inventory.models import Label

    gpu, web, quiet = (Host.objects.create(hostname=n) for n in ("flt-gpu", "flt-web", "flt-quiet"))
    Host.objects.filter(pk=gpu.pk).update(role="gpu-passthrough")
    web.labels.add(Label.objects.create(name="rack-12"))
    Host.objects.filter(pk=quiet.pk).update(stale=True)
    tenant_host = fleet["isolated-nics"]  # its VFIO NIC is held by -name guest=tenant-a-vm1 (ground-truth/ps.txt)

    def shown(query):
        html = viewer_client.get(reverse("web:fleet") + query).content.decode()
        return {h for h in ("flt-gpu", "flt-web", "flt-quiet", tenant_host.hostname) if f'data-host="{h}"' in html}

    assert shown("?role=gpu-passthrough") == {"flt-gpu"}
    assert shown("?label=rack-12") == {"flt-web"}
    assert shown("?stale=yes&q=flt-") == {"flt-quiet"}
    assert shown("?tenant=tenant-a") == {tenant_host.hostname}


def test_a_host_whose_latest_report_failed_is_not_in_the_fresh_filter(viewer_client, db):
    from fleet.ingest.models import Snapshot

    # Issue 10 item 2: it heartbeats (not stale), but what is shown is not its latest report.
    behind = Host.objects.create(hostname="flt-behind", last_seen=timezone.now(), stale=False)
    Snapshot.objects.create(host=behind, raw=Snapshot.compress(b"{}"), size=2, content_hash="0" * 64, seq=1,
                            received_at=timezone.now(), status=Snapshot.Status.FAILED, error="RecursionError: …")
    fresh = Host.objects.create(hostname="flt-fresh", last_seen=timezone.now(), stale=False)
    listed = lambda q: {h for h in (behind.hostname, fresh.hostname)  # noqa: E731
                        if f'data-host="{h}"' in viewer_client.get(reverse("web:fleet") + q).content.decode()}
    assert listed("?stale=no&q=flt-") == {fresh.hostname}
    assert listed("?stale=yes&q=flt-") == {behind.hostname}


def test_a_logged_in_user_without_a_role_gets_403(client, fleet, django_user_model):
    client.force_login(django_user_model.objects.create_user("no-role-web", password="pw"))
    for url in _urls(fleet["isolated-nics"]):
        assert client.get(url).status_code == 403, url


def test_drawing_data_is_gzipped_when_the_browser_accepts_it(viewer_client, fleet):
    import gzip

    url = reverse("web:host-topology", args=[fleet["sriov-nvme"].hostname])
    response = viewer_client.get(url, HTTP_ACCEPT_ENCODING="gzip")
    assert response["Content-Encoding"] == "gzip"
    assert json.loads(gzip.decompress(response.content)) == viewer_client.get(url).json()
