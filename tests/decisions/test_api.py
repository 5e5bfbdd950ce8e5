"""POST /api/v1/preflight and GET /api/v1/capacity: scoped tokens, audit, hostile input answered 4xx with paths."""
import json

import pytest
from django.core.management import call_command

from fleet.accounts.models import ApiToken, AuditEntry
from fleet.accounts.services import api_token_issue
from tests.accounts.fleet_data import import_capture
from tests.agent.groundtruth import lspci_drivers

pytestmark = pytest.mark.django_db
CAPTURE = "shared-bridge-group"


@pytest.fixture
def host(capture, users):
    return import_capture(capture(CAPTURE))


def post(client, body, token=None):
    headers = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/api/v1/preflight", data=data, content_type="application/json", **headers)


@pytest.fixture
def scoped(users):
    return api_token_issue(user=users["viewer"], name="hook", scopes=("preflight",))[1]


def test_a_denied_preflight_names_its_reasons_and_is_audited(client, host, capture, scoped):
    drivers = lspci_drivers(capture(CAPTURE))
    assigned = next(b for b, d in drivers.items() if d["driver"] == "vfio-pci")
    r = post(client, {"host": host.hostname, "devices": [assigned[5:]], "owner": {"vm": "acme-vm1", "tenant": "acme"}}, scoped)
    assert r.status_code == 200, r.content
    body = r.json()
    assert body["decision"] == "deny" and body["plan"]
    entry = AuditEntry.objects.get(action="preflight")
    assert entry.actor_name == "user-viewer" and entry.after["decision"] == "deny" and entry.after["devices"] == [assigned]


def test_a_finder_pick_can_be_posted_as_it_is(client, host, capture, scoped):
    nics = sorted(b for b, d in lspci_drivers(capture(CAPTURE)).items() if d["driver"] in ("vfio-pci", "e1000"))
    pick = {"host": host.hostname, "devices": nics, "rank": 1, "companions": nics[1:], "group": 5}
    r = post(client, {"pick": pick, "owner": {"vm": "acme-vm1"}}, scoped)
    assert r.status_code == 200 and r.json()["decision"] == "allow", r.content


def test_tokens_without_the_preflight_scope_and_sessions_are_refused(client, host, users):
    body = {"host": host.hostname, "devices": ["0000:02:01.0"], "owner": {"vm": "v"}}
    assert post(client, body).status_code == 401
    read = api_token_issue(user=users["viewer"])[1]
    write = api_token_issue(user=users["admin"], write=True)[1]
    assert post(client, body, read).status_code == 403
    assert post(client, body, write).status_code == 403
    no_role = api_token_issue(user=users["no-role"], scopes=("preflight",))[1]
    assert post(client, body, no_role).status_code == 403
    client.force_login(users["admin"])
    assert post(client, body).status_code in (401, 403)
    assert not AuditEntry.objects.filter(action="preflight").exists()


@pytest.mark.parametrize("body, path", [
    ({"devices": ["0000:02:01.0"], "owner": {"vm": "v"}}, "host"),
    ({"host": "h", "devices": "0000:02:01.0", "owner": {"vm": "v"}}, "devices"),
    ({"host": "h", "devices": ["0000:02:01.0", 7, "zz"], "owner": {"vm": "v"}}, "devices"),
    ({"host": "h", "devices": [f"0000:02:{i:02x}.0" for i in range(65)], "owner": {"vm": "v"}}, "devices"),
    ({"host": "h", "devices": ["0000:02:01.0"], "owner": {}}, "owner"),
    ({"host": "h", "devices": ["0000:02:01.0"], "owner": {"vm": "x" * 201}}, "owner"),
    ({"host": "h\x00", "devices": ["0000:02:01.0"], "owner": {"vm": "v"}}, "host"),
    ({"host": "h", "devices": ["0000:02:01.0"], "owner": {"vm": "v"}, "extra": 1}, "extra"),
    ([1, 2], "non_field_errors"),
    ("{not json", "detail"),
])
def test_hostile_bodies_get_400_naming_the_field(client, host, scoped, body, path):
    r = post(client, body, scoped)
    assert r.status_code == 400, r.content
    assert path in r.json(), r.json()


def test_bad_device_index_is_in_the_error(client, host, scoped):
    r = post(client, {"host": "h", "devices": ["0000:02:01.0", "0000:02:02.0", "nope"], "owner": {"vm": "v"}}, scoped)
    assert r.status_code == 400 and "2" in r.json()["devices"]


def test_unknown_host_is_404_and_unknown_device_400_both_audited(client, host, scoped):
    assert post(client, {"host": "nowhere", "devices": ["0000:02:01.0"], "owner": {"vm": "v"}}, scoped).status_code == 404
    r = post(client, {"host": host.hostname, "devices": ["0000:02:01.0", "0000:7f:00.0"], "owner": {"vm": "v"}}, scoped)
    assert r.status_code == 400 and r.json() == {"devices[1]": ["host has no device 0000:7f:00.0"]}
    assert AuditEntry.objects.filter(action="preflight", after__decision="invalid").count() == 2


def test_body_too_large_is_refused(client, host, scoped):
    r = post(client, json.dumps({"host": "h", "devices": [], "owner": {"vm": "v" * 70_000}}), scoped)
    assert r.status_code == 400 and "body" in r.json()


def test_api_token_command_issues_a_scoped_token(users, capsys):
    call_command("api_token", "create", "user-viewer", "--scope", "preflight")
    assert capsys.readouterr().out.startswith("fleet_")
    assert ApiToken.objects.get(user=users["viewer"]).scopes == ["preflight"]


def test_capacity_api_answers_picks_and_refuses_bad_input(client, host, users):
    client.force_login(users["viewer"])
    ok = client.get("/api/v1/capacity", {"q": f"host:{host.hostname} class:nic", "count": "2"})
    assert ok.status_code == 200 and {"picks", "per_host", "per_label", "free_groups"} <= set(ok.json())
    for params, field in (({"q": "class:nonsense"}, "q"), ({"count": "0"}, "count"), ({"count": "101"}, "count"),
                          ({"count": "²"}, "count"), ({"q": "x " * 40}, "q")):
        r = client.get("/api/v1/capacity", params)
        assert r.status_code == 400 and field in r.json(), (params, r.content)


def test_a_new_snapshot_is_what_the_next_preflight_sees(users):
    # The state cache is keyed on the applied snapshot: the host fixed its group, the next VM start sees it.
    from fleet.decisions.services import preflight_run
    from tests.decisions.states import AT, gpu
    from tests.policy.dbhosts import apply_and_sync, host_named
    from tests.policy.states import device, state
    host = host_named("gpu-c")
    audio = device("0000:03:00.1", driver="snd_hda_intel", group=12, cls="040300")
    apply_and_sync(host, state(hostname="gpu-c", devices=[gpu("0000:03:00.0", 12), audio]), AT)
    ask = lambda: preflight_run(hostname="gpu-c", devices=["0000:03:00.0"], vm="v", tenant=None, actor=users["viewer"])  # noqa: E731
    assert ask().body["decision"] == "deny"
    host.refresh_from_db()
    apply_and_sync(host, state(hostname="gpu-c", devices=[gpu("0000:03:00.0", 12), {**audio, "driver": "vfio-pci"}]), AT)
    assert ask().body["decision"] == "allow"
