"""The read API's answers stay bounded whatever a host sent (issue 10 item 10: one host's holders
came to 30 MiB): every list is paginated, every nested value of a listed object is cut to
fleet.api.bounds.LISTED and named in `truncated`; one object by its own address is whole.

Hand-made holders stand for a compromised host reporting 40 QEMU processes, each with a 130 KiB
command line of 2,048 arguments (half the agent's read cap) and a thousand device nodes: 5 MiB unbounded.
"""
import pytest

from fleet.api.bounds import LISTED
from fleet.api.pagination import FleetPagination
from fleet.inventory.models import Holder, Host

pytestmark = pytest.mark.django_db

ARGV = [f"-device=vfio-pci,host=0000:{i % 256:02x}:00.0,id=hostdev{i}," + "x" * 40 for i in range(2048)]


@pytest.fixture
def hostile_holders():
    host = Host.objects.create(hostname="holder-flood")
    Holder.objects.bulk_create([
        Holder(host=host, pid=1000 + i, name="qemu-system-x86", vm=f"vm{i}", cmdline=ARGV,
               nodes=[f"/dev/vfio/{n}" for n in range(1000)], groups=list(range(1000)), devices=[])
        for i in range(40)
    ], batch_size=20)
    return host


@pytest.fixture
def api(client, users):
    client.force_login(users["viewer"])
    return client


def test_every_list_endpoint_of_the_read_api_is_paginated():
    from fleet.api import views

    for viewset in (views.HostViewSet, views.DeviceViewSet, views.GroupViewSet, views.HolderViewSet,
                    views.ChangeViewSet, views.ViolationViewSet):
        assert viewset.pagination_class is FleetPagination, viewset
    assert FleetPagination.max_page_size <= 500


def test_a_page_of_hostile_holders_is_bounded_and_says_what_was_cut(api, hostile_holders):
    response = api.get(f"/api/v1/holders/?host={hostile_holders.hostname}&page_size=10000")
    body = response.json()
    assert body["count"] == len(body["results"]) == 40  # page_size past the maximum is the maximum (500)
    assert len(response.content) < 40 * 8 * 1024, len(response.content)  # ~3 bounded fields of 2 KiB each a holder
    for row in body["results"]:
        assert set(row["truncated"]) == {"cmdline", "nodes", "groups"}
        assert sum(map(len, row["cmdline"])) <= LISTED.chars and len(row["cmdline"]) <= LISTED.items
        assert row["cmdline"][0] == ARGV[0]  # cut at the end, never rewritten
        assert row["nodes"] == [f"/dev/vfio/{n}" for n in range(len(row["nodes"]))]
        assert len(row["groups"]) == LISTED.items


def test_one_holder_by_its_id_is_whole(api, hostile_holders):
    holder = Holder.objects.filter(host=hostile_holders).first()
    row = api.get(f"/api/v1/holders/{holder.pk}/").json()
    assert row["truncated"] == [] and row["cmdline"] == ARGV and len(row["nodes"]) == 1000


def test_an_unremarkable_object_is_not_cut(api, capture, users):
    from tests.accounts.fleet_data import import_capture

    host = import_capture(capture("shared-bridge-group"))
    for url in ("/api/v1/devices/", "/api/v1/groups/", f"/api/v1/hosts/{host.hostname}/"):
        body = api.get(url).json()
        rows = body.get("results", [body])
        assert rows and all(r["truncated"] == [] for r in rows), url
