"""The read API answers with the capture's real facts, filtered and paginated, to readers only."""
import pytest
import yaml

from fleet.accounts.services import api_token_issue, api_token_revoke
from tests.accounts.fleet_data import a_violation, import_capture
from tests.agent.groundtruth import find_groups, lspci_dnn, lspci_drivers

pytestmark = pytest.mark.django_db
CAPTURE = "shared-bridge-group"


@pytest.fixture
def host(capture, users):
    return import_capture(capture(CAPTURE))


@pytest.fixture
def api(client, users):
    client.force_login(users["viewer"])
    return client


def lspci_devices(root) -> dict[str, dict]:
    """BDF -> {vendor, device, driver} as lspci printed them in the capture's boot."""
    drivers = lspci_drivers(root)
    return {bdf: {**ids, "driver": drivers[bdf]["driver"]} for bdf, ids in lspci_dnn(root).items()}


def _all(api, url):
    """Follow `next` links to the end; returns every result."""
    results = []
    while url:
        body = api.get(url).json()
        results += body["results"]
        url = body["next"]
    return results


def test_devices_of_a_host_are_exactly_the_ones_lspci_listed(api, host, capture):
    truth = lspci_devices(capture(CAPTURE))
    rows = _all(api, f"/api/v1/devices/?host={host.hostname}&page_size=3")
    assert {r["bdf"] for r in rows} == set(truth)
    for r in rows:
        assert (r["vendor_id"], r["device_id"]) == (truth[r["bdf"]]["vendor"], truth[r["bdf"]]["device"])
        assert r["driver"] == truth[r["bdf"]]["driver"], r["bdf"]


def test_groups_have_the_members_the_kernel_listed(api, host, capture):
    truth = find_groups(capture(CAPTURE))
    rows = _all(api, f"/api/v1/groups/?host={host.hostname}")
    assert {(r["number"], bdf) for r in rows for bdf in r["member_bdfs"]} == truth


def test_device_filters_match_lspci(api, host, capture):
    truth = lspci_devices(capture(CAPTURE))
    vendor, device = next((v["vendor"], v["device"]) for v in truth.values() if v["driver"] == "vfio-pci")
    got = {r["bdf"] for r in _all(api, f"/api/v1/devices/?vendor_device={vendor}:{device}")}
    assert got == {b for b, v in truth.items() if (v["vendor"], v["device"]) == (vendor, device)}
    got = {r["bdf"] for r in _all(api, "/api/v1/devices/?driver=vfio-pci")}
    assert got == {b for b, v in truth.items() if v["driver"] == "vfio-pci"}


def test_pagination_reports_the_total_and_bounds_the_page(api, host, capture):
    body = api.get("/api/v1/devices/?page_size=2").json()
    assert body["count"] == len(lspci_devices(capture(CAPTURE))) and len(body["results"]) == 2 and body["next"]


def test_hosts_are_addressed_by_hostname(api, host):
    body = api.get(f"/api/v1/hosts/{host.hostname}/").json()
    assert body["hostname"] == host.hostname and body["device_count"] == host.devices.count()
    assert api.get("/api/v1/hosts/no-such-host/").status_code == 404


def test_violations_filter_by_severity_and_rule(api, host):
    from fleet.policy.models import Violation

    a_violation(host, rule="pasid-quota", severity="medium", subject_kind="host", subject_id=host.hostname)
    for severity in ("critical", "medium"):
        got = {v["id"] for v in _all(api, f"/api/v1/violations/?severity={severity}")}
        assert got == set(Violation.objects.filter(severity=severity).values_list("id", flat=True)), severity
    assert [v["subject_id"] for v in _all(api, "/api/v1/violations/?rule=pasid-quota")] == [host.hostname]
    assert api.get("/api/v1/violations/?severity=bogus").status_code == 400


def test_a_read_only_token_reads_but_never_writes(client, host, users):
    _, secret = api_token_issue(user=users["admin"], name="script")
    auth = {"HTTP_AUTHORIZATION": f"Bearer {secret}"}
    assert client.get("/api/v1/hosts/", **auth).status_code == 200
    assert client.post("/api/v1/hosts/", {}, **auth).status_code == 403
    assert client.delete(f"/api/v1/hosts/{host.hostname}/", **auth).status_code == 403


def test_revoked_unknown_and_host_tokens_are_refused(client, host, users):
    token, secret = api_token_issue(user=users["viewer"])
    api_token_revoke(token=token)
    assert client.get("/api/v1/hosts/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 401
    assert client.get("/api/v1/hosts/", HTTP_AUTHORIZATION="Bearer fleet_nope").status_code == 401
    from fleet.ingest.services import host_token_rotate

    host_secret = host_token_rotate(hostname=host.hostname)
    assert client.get("/api/v1/hosts/", HTTP_AUTHORIZATION=f"Bearer {host_secret}").status_code == 401


def test_a_token_of_a_user_without_a_role_reads_nothing(client, host, users):
    _, secret = api_token_issue(user=users["no-role"])
    assert client.get("/api/v1/devices/", HTTP_AUTHORIZATION=f"Bearer {secret}").status_code == 403


def test_the_schema_documents_every_list_endpoint(api):
    response = api.get("/api/schema/")
    assert response.status_code == 200
    schema = yaml.safe_load(response.content)
    for name in ("hosts", "devices", "groups", "holders", "violations", "changes"):
        assert f"/api/v1/{name}/" in schema["paths"], name
    assert "apiToken" in schema["components"]["securitySchemes"]


def test_the_docs_page_is_served_from_our_static_files_without_inline_script(api):
    html = api.get("/api/docs/").content.decode()
    assert "swagger-ui" in html and "cdn" not in html.lower()
    assert "<script>" not in html.replace(" ", "")
