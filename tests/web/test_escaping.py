"""Strings from agents are hostile: pages escape them and JSON never carries a raw < > &.

A hand-made host (no capture has a hostile hostname); it stands for an agent whose hostname,
QEMU `-name guest=` and driver name were chosen by an attacker.
"""
import pytest
from django.urls import reverse

from fleet.inventory.models import Device, Group, Holder, Host

pytestmark = pytest.mark.django_db

HOSTNAME = "<script>alert(1)</script>"
VM = "<img src=x onerror=alert(1)>"
DRIVER = '"><svg onload=alert(2)>'


@pytest.fixture
def hostile(db):
    host = Host.objects.create(hostname=HOSTNAME, kernel="<b>6.1</b>", role="<i>r</i>", device_count=1, group_count=1)
    group = Group.objects.create(host=host, number=3, type="DMA")
    Device.objects.create(host=host, bdf="0000:02:00.0", vendor_id="8086", device_id="10d3", class_code="020000",
                          driver=DRIVER, group=group, group_number=3, owner_kind="userspace", owner_vm=VM, path="pci0000:00/0000:02:00.0")
    Holder.objects.create(host=host, pid=77, name=VM, vm=VM, devices=["0000:02:00.0"], groups=[3])
    return host


def test_html_pages_escape_hostile_strings(viewer_client, hostile):
    pages = [reverse("web:fleet"), reverse("web:host-detail", args=[HOSTNAME]),
             reverse("web:search") + "?q=vm:*", reverse("web:host-history", args=[HOSTNAME])]
    for url in pages:
        html = viewer_client.get(url).content.decode()
        for raw in (HOSTNAME, VM, DRIVER, "<b>6.1</b>"):
            assert raw not in html, (url, raw)
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html, url


def test_json_endpoints_carry_no_raw_angle_brackets(viewer_client, hostile):
    for url in [reverse("web:host-topology", args=[HOSTNAME]), reverse("web:fleet-tiles"),
                reverse("web:search-export-json") + "?q=vm:*"]:
        response = viewer_client.get(url)
        assert response["Content-Type"].startswith("application/json")
        assert b"<" not in response.content and b">" not in response.content, url
        assert HOSTNAME in response.content.decode("unicode_escape") or HOSTNAME in str(response.json())


def test_topology_json_round_trips_the_hostile_strings(viewer_client, hostile):
    data = viewer_client.get(reverse("web:host-topology", args=[HOSTNAME])).json()
    device = next(n for n in data["nodes"] if n.get("bdf") == "0000:02:00.0")
    assert (data["host"]["hostname"], device["vm"], device["driver"]) == (HOSTNAME, VM, DRIVER)


def test_csv_export_defuses_formulas(viewer_client, db):
    host = Host.objects.create(hostname="=cmd|'/c calc'!A1")
    Device.objects.create(host=host, bdf="0000:01:00.0", driver="@SUM(1)", path="pci0000:00/0000:01:00.0")
    body = viewer_client.get(reverse("web:search-export-csv") + "?q=bdf:01:00.0").content.decode()
    assert "\n'=cmd" in body and ",'@SUM(1)," in body
