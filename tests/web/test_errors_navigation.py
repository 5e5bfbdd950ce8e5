"""Error pages with the dashboard's navigation, JSON errors where a program asks, the API's own index,
and the top bar naming the user's role and the tools it opens."""
import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.test import Client, override_settings
from django.urls import path

from fleet.accounts.roles import ADMIN, VIEWER, roles_sync
from fleet.urls import urlpatterns as fleet_urlpatterns

pytestmark = pytest.mark.django_db


def _broken(request):
    raise RuntimeError("a bug")


urlpatterns = [path("broken/", _broken), path("api/v1/broken/", _broken), *fleet_urlpatterns]
handler500 = "fleet.web.views.errors.server_error"
handler404 = "fleet.web.views.errors.page_not_found"


def _user(role: str, **extra):
    roles_sync()
    user = get_user_model().objects.create_user(username=f"u-{role}", password="pw-long-enough-1", **extra)
    user.groups.add(Group.objects.get(name=role))
    return user


@pytest.fixture
def viewer(client):
    client.force_login(_user(VIEWER))
    return client


def test_an_unknown_page_is_the_dashboards_404_with_its_navigation(viewer):
    response = viewer.get("/no/such/<page>/")
    html = response.content.decode()
    assert response.status_code == 404 and response["Content-Type"].startswith("text/html")
    assert 'aria-label="Main"' in html and "Fleet overview" in html
    assert "<page>" not in html and "&lt;page&gt;" in html  # the path is shown, escaped


def test_an_unknown_host_page_is_the_same_404(viewer):
    response = viewer.get("/hosts/no-such-host/")
    assert response.status_code == 404 and "Fleet overview" in response.content.decode()


def test_an_unknown_api_address_answers_json(viewer):
    for url in ("/api/v1/nothing-here/", "/api/unknown", "/api/v1/hosts/no-such-host/"):
        response = viewer.get(url)
        assert response.status_code == 404 and response["Content-Type"].startswith("application/json"), url
        assert "detail" in response.json()


def test_a_program_asking_for_json_gets_json_anywhere(viewer):
    response = viewer.get("/no/such/page/", HTTP_ACCEPT="application/json")
    assert response.status_code == 404 and response.json()["status"] == 404


@override_settings(ROOT_URLCONF=__name__, DEBUG=False)
def test_a_server_error_is_a_branded_page_or_json_and_says_nothing_of_the_bug(db):
    client = Client(raise_request_exception=False)
    page = client.get("/broken/")
    assert page.status_code == 500 and "Something went wrong" in page.content.decode()
    assert "a bug" not in page.content.decode() and "Fleet overview" in page.content.decode()
    api = client.get("/api/v1/broken/")
    assert api.status_code == 500 and api.json()["status"] == 500 and "a bug" not in api.content.decode()


def test_the_api_index_lists_every_resource_with_absolute_links(viewer):
    from fleet.api.urls import router

    response = viewer.get("/api/v1/")
    assert response.status_code == 200
    body = response.json()
    assert set(body["resources"]) == {prefix for prefix, _, _ in router.registry}
    for url in body["resources"].values():
        assert url.startswith("http://testserver/api/v1/")
        assert viewer.get(url).status_code == 200, url
    assert body["other"]["docs"]["url"] == "http://testserver/api/docs/"
    assert body["other"]["snapshots"]["url"] == "http://testserver/api/v1/snapshots"


def test_the_api_index_needs_a_login(client):
    assert client.get("/api/v1/").status_code in (401, 403)


def test_the_top_bar_names_the_role_and_only_the_tools_it_opens(client):
    client.force_login(_user(VIEWER))
    html = client.get("/").content.decode()
    assert "(viewer)" in html
    assert 'href="/admin/"' not in html and 'href="/audit/"' not in html and 'href="/api/docs/"' in html
    client.force_login(_user(ADMIN, is_staff=True))
    html = client.get("/").content.decode()
    assert "(admin)" in html and 'href="/admin/"' in html and 'href="/audit/"' in html
