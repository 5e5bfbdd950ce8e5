"""Re-accepting a baseline (button, API: audited, permission-checked) and the before-you-upgrade report, from DB state."""
import copy

import pytest

from agent.paths import Root
from agent.snapshot import build
from fleet.accounts.models import AuditEntry
from fleet.accounts.services import api_token_issue
from fleet.ingest.services import snapshot_apply, snapshot_receive_document
from fleet.policy import services as policy_services
from fleet.policy.intent import DeviceExpectation, Intent
from fleet.policy.models import GroupBaseline, Violation
from fleet.policy.selectors import intent_current
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import lspci_dnn, lspci_drivers
from tests.policy.truth import parse

pytestmark = pytest.mark.django_db
CAPTURE = "shared-group-all-vfio"  # both NICs behind the PCI bridge on vfio-pci, the group held by tenant-b-vm2 (README)
VM = "tenant-b-vm2"


def _bridge_group(capture):
    truth = parse(capture(CAPTURE))
    return next(sorted(m) for m in truth.groups.values() if len(m) > 1 and any(b[5:7] != "00" for b in m))


def _nics(capture):
    drivers = lspci_drivers(capture(CAPTURE))
    return sorted(b for b in _bridge_group(capture) if drivers[b]["driver"] == "vfio-pci")


def _split(capture, seq=2):
    """The bridge group with its last NIC in a group of its own (what the isolated-nics host has: one group per NIC)."""
    doc = copy.deepcopy(build(Root.of(capture(CAPTURE)), seq=seq))
    moved = _nics(capture)[-1]
    group = next(g for g in doc["groups"] if moved in g["devices"])
    group["devices"] = [b for b in group["devices"] if b != moved]
    doc["groups"].append({**group, "id": 99, "devices": [moved]})
    next(d for d in doc["devices"] if d["bdf"] == moved)["iommu_group"] = 99
    return doc


@pytest.fixture
def split_host(capture, users):
    host = import_capture(capture(CAPTURE))
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=_split(capture)).body["id"])
    assert Violation.objects.filter(host=host, rule="group-changed", status="open").count() == 1
    return host


def test_the_button_re_accepts_for_operators_only_audited_and_the_finding_resolves(client, users, split_host,
                                                                                    django_capture_on_commit_callbacks):
    client.force_login(users["viewer"])
    assert client.post("/baseline/accept/", {"host": split_host.hostname}).status_code == 403
    assert GroupBaseline.objects.get(hostname=split_host.hostname).accepted_by == "policy"
    client.force_login(users["operator"])
    page = client.get(f"/hosts/{split_host.hostname}/").content.decode()
    assert "Accept current IOMMU groups as baseline" in page and "/baseline/accept/" in page
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post("/baseline/accept/", {"host": split_host.hostname})
    assert response.status_code == 302 and response["Location"] == f"/hosts/{split_host.hostname}/"
    baseline = GroupBaseline.objects.get(hostname=split_host.hostname)
    assert baseline.accepted_by == "user-operator"
    assert sorted(b for g in baseline.groups for b in g) == sorted(baseline.identities)
    entry = AuditEntry.objects.filter(action="intent.change").latest("pk")
    assert entry.actor_name == "user-operator" and split_host.hostname in entry.subject
    assert not Violation.objects.filter(host=split_host, rule="group-changed", status="open").exists()


def test_the_violation_card_offers_the_button_to_reviewers_not_viewers(client, users, split_host):
    client.force_login(users["security-reviewer"])
    assert "/baseline/accept/" in client.get(f"/violations/?host={split_host.hostname}").content.decode()
    client.force_login(users["viewer"])
    assert "/baseline/accept/" not in client.get(f"/violations/?host={split_host.hostname}").content.decode()


def test_the_api_re_accepts_with_a_write_token_of_an_operator_and_audits_it(client, users, split_host):
    url = f"/api/v1/hosts/{split_host.hostname}/baseline"
    auth = lambda token: {"HTTP_AUTHORIZATION": f"Bearer {token}"}  # noqa: E731
    assert client.post(url).status_code == 401
    assert client.post(url, **auth(api_token_issue(user=users["operator"])[1])).status_code == 403  # read-only token
    assert client.post(url, **auth(api_token_issue(user=users["viewer"], write=True)[1])).status_code == 403
    write = api_token_issue(user=users["operator"], write=True)[1]
    assert client.post("/api/v1/hosts/no-such-host/baseline", **auth(write)).status_code == 404
    response = client.post(url, **auth(write))
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["accepted_by"] == "user-operator" and sorted(body["identities"]) == sorted(b for g in body["groups"] for b in g)
    assert AuditEntry.objects.filter(action="intent.change", actor_name="user-operator").exists()
    assert GroupBaseline.objects.get(hostname=split_host.hostname).accepted_by == "user-operator"


def _report(client, hostname):
    r = client.get(f"/upgrade-report/export.json?host={hostname}")
    assert r.status_code == 200
    (entry,) = r.json()["hosts"]
    return {(m["bdf"], m["kind"], m["name"]): m["risks"] for m in entry["mappings"]}


def test_the_report_lists_exactly_the_vm_and_intent_mappings_in_shared_or_changed_groups(client, users, capture):
    host = import_capture(capture(CAPTURE))
    # A whole-intent import replaces the baselines too: keep the one the first snapshot got.
    expectation = DeviceExpectation(name="nics-to-b", class_prefix="0200", owner="b")
    policy_services.intent_replace(intent=Intent(devices=(expectation,), baselines=intent_current().baselines), user="erin")
    client.force_login(users["viewer"])
    nics = _nics(capture)
    assert len(nics) == 2
    # Both NICs share the bridge group (each can reach the other): every mapping of them is at risk, nothing else.
    ethernet = {b for b, d in lspci_dnn(capture(CAPTURE)).items() if d["class4"] == "0200"}
    listed = _report(client, host.hostname)
    assert set(listed) == {(b, "vm", VM) for b in nics} | {(b, "intent", "nics-to-b") for b in nics if b in ethernet}
    assert all(any("not in a group of its own" in r for r in risks) for risks in listed.values())
    # After the split each NIC has its group's endpoints to itself: listed only because the groups changed.
    snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=_split(capture)).body["id"])
    listed = _report(client, host.hostname)
    assert {k[0] for k in listed} == set(nics)
    assert all(risks == [r for r in risks if "since the accepted baseline" in r] for risks in listed.values())
    page = client.get(f"/upgrade-report/?host={host.hostname}").content.decode()
    assert all(b in page for b in nics) and VM in page
