"""The "Address spaces & PASIDs" page: what it lists per tenant and per host, against the documents the hosts
sent and the demo intent (matched here with the intent's own Python matching, not the page's SQL)."""
import re
from dataclasses import replace
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from agent.upgrade import upgrade
from fleet.demo.services import demo_intent_load
from fleet.demo.synth import host as demo_host
from fleet.ingest.services import host_token_create, snapshot_apply, snapshot_receive_document
from fleet.inventory.models import AddressSpace, Holder, Host
from fleet.policy.models import TenantPasidUsage
from fleet.policy.selectors import intent_current
from fleet.policy.services.intent import intent_replace

pytestmark = pytest.mark.django_db

# The demo's showcase hosts: 0 DGX on 6.5 (containers only), 2 G4dn on 6.8 (iommufd), 10 nfv on 6.8 (both).
HOSTS = (0, 2, 10)
URL = "/address-spaces/"


@pytest.fixture
def docs():
    demo_intent_load()
    out = {}
    for i in HOSTS:
        doc = demo_host(i)
        host, _ = host_token_create(hostname=doc["host"]["hostname"])
        snapshot_apply(snapshot_id=snapshot_receive_document(host=host, document=doc).body["id"])
        out[doc["host"]["hostname"]] = doc
    return out


def _cells(html: str, attr: str, value: str) -> str:
    m = re.search(rf'<tr {attr}="{re.escape(value)}"[^>]*>(.*?)</tr>', html, re.S)
    assert m, value
    return m[1]


def _holder_backends(hostname) -> dict[str, set[int]]:
    """backend -> pids holding an address space of it, as the database holds them."""
    out: dict[str, set[int]] = {}
    for backend, pid in AddressSpace.objects.filter(host__hostname=hostname).values_list("backend", "pid"):
        out.setdefault(backend, set()).add(pid)
    return out


def _expected_readiness(doc) -> str:
    vfio = upgrade(doc)["vfio"]
    if not any(n["path"] == "/dev/iommu" for n in vfio["nodes"]):
        return "legacy-only"
    return "ready" if vfio.get("cdev_support") or vfio.get("cdevs") else "partial"


def test_the_host_matrix_lists_each_hosts_backends_and_readiness(viewer_client, docs):
    html = viewer_client.get(URL).content.decode()
    assert 'aria-current="page">Address spaces &amp; PASIDs</a>' in html
    seen = set()
    for hostname, doc in docs.items():
        row = _cells(html, "data-host", hostname)
        backends = _holder_backends(hostname)
        for backend in ("legacy", "iommufd"):
            count = re.search(rf'data-backend="{backend}" data-count="(\d+)"', row)
            assert int(count[1]) == len(backends.get(backend, ())), (hostname, backend)
            if backends.get(backend):
                seen.add(backend)
        state = re.search(rf'<tr data-host="{re.escape(hostname)}" data-readiness="([a-z-]+)"', html)[1]
        assert state == _expected_readiness(doc), hostname
        assert doc["host"]["kernel"] in row
    assert seen == {"legacy", "iommufd"}, "the chosen hosts show both backends"


def test_the_backend_filter_keeps_the_hosts_using_it(viewer_client, docs):
    html = viewer_client.get(URL + "?backend=iommufd").content.decode()
    using = {h for h in docs if _holder_backends(h).get("iommufd")}
    listed = set(re.findall(r'<tr data-host="([^"]+)"', html))
    assert listed == using and using != set(docs)
    assert viewer_client.get(URL + "?backend=vfio").status_code == 400


def test_each_tenant_row_counts_its_vms_spaces_and_pasids_against_quota(viewer_client, docs):
    demo = intent_current()  # it declares no quota for acme: give it one, through the intent service
    intent_replace(intent=replace(demo, tenants=tuple(replace(t, pasid_quota=2) if t.name == "acme" else t
                                                      for t in demo.tenants)))
    intent = intent_current()
    TenantPasidUsage.objects.create(host=Host.objects.first(), tenant="acme", count=2, updated_at=timezone.now())
    TenantPasidUsage.objects.create(host=Host.objects.last(), tenant="acme", count=3, updated_at=timezone.now())
    html = viewer_client.get(URL).content.decode()
    for tenant in intent.tenants:
        holders = [h for h in Holder.objects.select_related("host")
                   if intent.tenant_for_holder({"vm": h.vm, "cgroup": h.cgroup, "workload": h.workload}) == tenant]
        pids = {(h.host_id, h.pid) for h in holders}
        spaces = {b: 0 for b in ("legacy", "iommufd")}
        for host_id, pid, backend in AddressSpace.objects.values_list("host_id", "pid", "backend"):
            if (host_id, pid) in pids:
                spaces[backend] += 1
        row = _cells(html, "data-tenant", tenant.name)
        assert re.search(r'<span class="count">(\d+)</span>', row)[1] == str(len(holders)), tenant.name
        for backend, n in spaces.items():
            assert f'<td class="num" data-backend="{backend}">{n}</td>' in row, (tenant.name, backend)
    row = _cells(html, "data-tenant", "acme")
    used = sum(TenantPasidUsage.objects.filter(tenant="acme").values_list("count", flat=True))  # fleet-wide: every host's
    hosts = TenantPasidUsage.objects.filter(tenant="acme").values("host").distinct().count()
    assert used >= 5 and hosts >= 2 and "over quota" in row
    assert f'<td class="num pasids">{used} <span class="muted">on {hosts} hosts</span> / 2' in row
    assert sum(1 for t in intent.tenants if f'data-tenant="{t.name}"' in html) == len(intent.tenants)


def test_the_tenant_filter_keeps_one_tenant_and_its_hosts(viewer_client, docs):
    intent = intent_current()
    html = viewer_client.get(URL + "?tenant=acme").content.decode()
    assert re.findall(r'<tr data-tenant="([^"]+)"', html) == ["acme"]
    acme = next(t for t in intent.tenants if t.name == "acme")
    hosts = {h.host.hostname for h in Holder.objects.select_related("host")
             if acme.matches_holder({"vm": h.vm, "cgroup": h.cgroup, "workload": h.workload})}
    assert set(re.findall(r'<tr data-host="([^"]+)"', html)) == hosts


def test_hostile_names_are_escaped(viewer_client, db):
    evil_host, evil_vm = "<script>alert(1)</script>", "<img src=x onerror=alert(2)>"
    host = Host.objects.create(hostname=evil_host, kernel="6.12.0", vfio_iommufd=True, vfio_cdev_support=True)
    AddressSpace.objects.create(host=host, key="5:9", pid=5, fd=9, kind="iommufd", backend="iommufd", vm=evil_vm)
    html = viewer_client.get(URL).content.decode()
    assert evil_host not in html and evil_vm not in html
    assert unescape(evil_host) in unescape(html) and "&lt;img src=x onerror=alert(2)&gt;" in html


def test_pages_are_bounded_and_bad_pages_refused(viewer_client, db):
    Host.objects.bulk_create(Host(hostname=f"h{i:03d}") for i in range(120))
    html = viewer_client.get(URL).content.decode()
    assert len(re.findall(r'<tr data-host="', html)) == 50
    assert "page 1 of 3" in html
    assert viewer_client.get(URL + "?page=x").status_code == 400
    assert len(re.findall(r'<tr data-host="', viewer_client.get(URL + "?page=3").content.decode())) == 20
