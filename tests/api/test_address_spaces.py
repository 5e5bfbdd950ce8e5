"""/api/v1/address-spaces/ answers with the address spaces the holders' own logs describe (6.12 iommufd captures)."""
import pytest

from fleet.policy.models import Tenant
from tests.accounts.fleet_data import import_capture
from tests.api.test_api import _all
from tests.iommufd_captures import iommufd_capture, iommufd_contexts, vm_names  # noqa: F401

pytestmark = pytest.mark.django_db
CAPTURE = "iommufd-two-devices-one-ioas"


@pytest.fixture
def api(client, users):
    client.force_login(users["viewer"])
    return client


@pytest.fixture
def root(iommufd_capture):
    return iommufd_capture(CAPTURE)


@pytest.fixture
def host(root, users):
    return import_capture(root)


def test_each_space_maps_the_devices_its_holder_bound_to_that_iommufd(api, host, root):
    rows = _all(api, f"/api/v1/address-spaces/?host={host.hostname}&page_size=1")
    contexts = {c.pid: c for c in iommufd_contexts(root).values()}
    assert {r["pid"] for r in rows} == set(contexts)
    for r in rows:
        assert (r["backend"], r["kind"], r["host"]) == ("iommufd", "iommufd", host.hostname)
        assert {d["device"] for d in r["devices"]} == contexts[r["pid"]].bound
        assert all(d["certainty"] in ("kernel", "argv", "inferred") for d in r["devices"] + r["groups"])
        assert r["vm"] == vm_names(root)[r["pid"]] and r["truncated"] == []
    one = api.get(f"/api/v1/address-spaces/{rows[0]['id']}/").json()
    assert one == rows[0]


def test_backend_shared_and_tenant_filters(api, host, root):
    contexts = iommufd_contexts(root).values()
    assert _all(api, "/api/v1/address-spaces/?backend=legacy") == []
    assert len(_all(api, "/api/v1/address-spaces/?backend=iommufd")) == len(contexts)
    shared = {r["pid"] for r in _all(api, "/api/v1/address-spaces/?shared=true")}
    assert shared == {c.pid for c in contexts if len(c.bound) > 1}
    alone = {r["pid"] for r in _all(api, "/api/v1/address-spaces/?shared=false")}
    assert alone == {c.pid for c in contexts} - shared
    names = vm_names(root)
    Tenant.objects.create(name="n", vm_patterns=["tenant-n-*"])
    assert {r["vm"] for r in _all(api, "/api/v1/address-spaces/?tenant=n")} == {v for v in names.values() if v.startswith("tenant-n-")}
    assert _all(api, "/api/v1/address-spaces/?tenant=nobody") == []


@pytest.mark.parametrize("query", ["backend=evil", "shared=maybe", "pid=x", "tenant=" + "t" * 101, "page=999"])
def test_hostile_parameters_get_a_4xx_naming_them(api, host, query):
    response = api.get(f"/api/v1/address-spaces/?{query}")
    assert 400 <= response.status_code < 500


def test_a_hostile_tenant_name_is_a_value_not_a_pattern(api, host):
    assert _all(api, "/api/v1/address-spaces/?tenant=%25") == []
    assert _all(api, "/api/v1/address-spaces/?tenant=.*") == []
