"""Bad values in a dashboard or read-API URL are refused with a message naming what is wrong (400/404),
and the dashboard's statements are time-bounded on PostgreSQL without touching the agents' requests."""
import pytest
from django.db import connection
from django.test import override_settings
from django.urls import reverse

from fleet.inventory.models import Host
from fleet.web.device_query import MAX_QUERY_LENGTH, MAX_TERMS, MAX_VALUES
from tests.accounts.fleet_data import a_violation

pytestmark = pytest.mark.django_db


@pytest.fixture
def host(db):
    host = Host.objects.create(hostname="refusals-01")
    a_violation(host)
    return host


@pytest.mark.parametrize("url, status, message", [
    ("/?q=%00", 400, "NUL"),
    ("/search/?q=%00", 400, "NUL"),
    ("/violations/?host=%00", 400, "NUL"),
    ("/hosts/%00/", 404, "NUL"),
    ("/?page=%C2%B2", 400, "page: a whole number"),
    ("/violations/?page=-1", 400, "page: a whole number"),
    ("/search/?q=nic&page=99999999999999999999", 400, "page: a whole number"),
    ("/?severity=urgent", 400, "severity: one of critical"),
    ("/violations/?status=closed", 400, "status: one of open"),
    ("/?rule=" + "r" * 300, 400, "rule: at most 253 characters"),
    ("/hosts/refusals-01/?focus=gpu0", 400, "focus: a PCI address"),
    ("/hosts/refusals-01/?view=3d", 400, "view: one of tree, groups"),
    ("/hosts/refusals-01/history/?from=%C2%B2&to=1", 400, "from: an id is a whole number"),
    ("/hosts/refusals-01/history/?from=1&to=123456789012345678901", 400, "to: an id is a whole number"),
    ("/search/?q=" + "+".join(["nic"] * (MAX_TERMS + 1)), 400, f"at most {MAX_TERMS} terms"),
    ("/search/?q=" + "x" * (MAX_QUERY_LENGTH + 1), 400, f"at most {MAX_QUERY_LENGTH} characters"),
    # 32 terms, but gpu and nic stand for 3 class codes each: 36 values
    ("/search/export.csv?q=class:gpu+class:nic+" + "+".join(f"driver:d{i}" for i in range(MAX_TERMS - 2)), 400,
     f"at most {MAX_VALUES} values"),
])
def test_a_bad_value_is_refused_with_a_message(viewer_client, host, url, status, message):
    response = viewer_client.get(url)
    assert response.status_code == status, url
    assert message in response.content.decode()


@pytest.mark.parametrize("url", ["/api/v1/hosts/%00/", "/api/v1/hosts/a%00b.json", "/api/v1/devices/?host=%00",
                                 "/api/v1/violations/?rule=%00"])
def test_the_read_api_refuses_a_nul_as_json(viewer_client, host, url):
    response = viewer_client.get(url)
    assert response.status_code in (400, 404)
    assert response["Content-Type"].startswith("application/json") and "NUL" in response.json()["detail"]


def test_a_query_within_the_bounds_still_runs(viewer_client, host):
    ok = "class:gpu+" + "+".join(f"driver:d{i}" for i in range(MAX_VALUES - 3))  # exactly MAX_VALUES values
    assert viewer_client.get(f"/search/?q={ok}").status_code == 200
    assert viewer_client.get("/search/?q=" + "+".join(["nic"] * MAX_TERMS)).status_code == 200


def _statement_timeout() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        return cursor.fetchone()[0]


@pytest.fixture
def postgres():
    if connection.vendor != "postgresql":
        pytest.skip("statement_timeout is PostgreSQL's")


@override_settings(FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS=1234)
def test_dashboard_and_api_statements_run_under_the_timeout_and_the_connection_is_reset_after(
        postgres, viewer_client, host, monkeypatch):
    seen = []
    from fleet.web.views import search
    real = search.devices_search_page
    monkeypatch.setattr(search, "devices_search_page", lambda *a, **k: seen.append(_statement_timeout()) or real(*a, **k))
    from fleet.api import views as api_views
    real_list = api_views.HostViewSet.list
    monkeypatch.setattr(api_views.HostViewSet, "list", lambda self, *a, **k: seen.append(_statement_timeout()) or real_list(self, *a, **k))
    before = _statement_timeout()
    assert viewer_client.get("/search/?q=nic").status_code == 200
    assert viewer_client.get("/api/v1/hosts/").status_code == 200
    assert seen == ["1234ms", "1234ms"]
    assert _statement_timeout() == before  # the same connection next serves agents and workers


@override_settings(FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS=1234)
def test_the_agent_endpoints_keep_the_servers_timeout(postgres, client, host, monkeypatch):
    from fleet.ingest import services
    seen = []
    real = services.heartbeat_receive
    monkeypatch.setattr(services, "heartbeat_receive", lambda **kw: seen.append(_statement_timeout()) or real(**kw))
    before = _statement_timeout()
    response = client.post("/api/v1/heartbeat", b'{"content_hash": "0", "seq": 1}', content_type="application/json",
                           HTTP_AUTHORIZATION="Bearer fleet-host-nope")
    assert response.status_code == 401
    assert seen == [before] and before != "1234ms"


@pytest.mark.django_db(transaction=True)
@override_settings(FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS=50)
def test_a_statement_past_the_timeout_answers_503_with_a_message_not_500(postgres, client, monkeypatch):
    from django.contrib.auth.models import Group, User

    from fleet.accounts.roles import VIEWER
    from fleet.web.views import search

    user = User.objects.create_user("timeout-viewer", password="pw")
    user.groups.add(Group.objects.get(name=VIEWER))
    client.force_login(user)
    client.raise_request_exception = False

    def slow(*args, **kwargs):  # stands for a search the bounds let through but the database is slow to answer
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_sleep(2)")

    monkeypatch.setattr(search, "devices_search_page", slow)
    response = client.get("/search/?q=nic")
    assert response.status_code == 503
    assert "longer than 0.05 s" in response.content.decode()
    with connection.cursor() as cursor:  # the connection is usable and back to the server's timeout
        cursor.execute("SHOW statement_timeout")
        assert cursor.fetchone()[0] != "50ms"
