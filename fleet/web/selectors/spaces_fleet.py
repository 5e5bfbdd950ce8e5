"""The fleet page "Address spaces & PASIDs": per tenant its VMs, address spaces, devices and PASIDs against
its quota; per host its iommufd readiness and which backend each VM uses (the legacy -> iommufd migration matrix).

Every list is a page: one query for every tenant's PASIDs, four per tenant on a page of TENANT_PAGE, four for a page of HOST_PAGE
hosts, and at most NAMES_SHOWN names per cell (the rest counted), whatever the fleet holds.
"""
from __future__ import annotations

from dataclasses import dataclass

from django.core.paginator import Paginator
from django.db.models import Count, Exists, F, OuterRef, Window
from django.db.models.functions import RowNumber

from fleet.inventory.models import AddressSpace, Device, Holder, Host
from fleet.policy.selectors import tenant_pasids
from fleet.web import params
from fleet.web.selectors.filters import QueryFilters
from fleet.web.selectors.tenants import tenant_holder_q

TENANT_PAGE = 20
HOST_PAGE = 50
NAMES_SHOWN = 8
BACKENDS = tuple(AddressSpace.Backend.values)


@dataclass
class SpacesFilters(QueryFilters):
    tenant: str = ""
    backend: str = ""

    def clean(self) -> None:
        self.backend = params.choice(self.backend, name="backend", choices=BACKENDS)


def tenant_pasid_rows(filters: SpacesFilters) -> list[dict]:
    """Each declared tenant's PASIDs against its quota (the policy's count); only the filter's tenant when one is given."""
    rows = tenant_pasids()
    if not filters.tenant:
        return rows
    return [r for r in rows if r["tenant"] == filters.tenant] or [
        {"tenant": filters.tenant, "used": 0, "hosts": 0, "quota": None, "over": False}]


def _held_by(holders) -> Exists:
    """Address spaces whose holder is one of `holders` (same host, same pid)."""
    return Exists(holders.filter(host_id=OuterRef("host_id"), pid=OuterRef("pid")))


def _tenant_row(pasids: dict, backend: str) -> dict:
    name = pasids["tenant"]
    holders = Holder.objects.filter(tenant_holder_q(name))
    spaces = AddressSpace.objects.filter(_held_by(holders))
    if backend:
        spaces = spaces.filter(backend=backend)
        holders = holders.filter(Exists(spaces.filter(host_id=OuterRef("host_id"), pid=OuterRef("pid"))))
    vms = list(holders.order_by("host__hostname", "pid").values_list("host__hostname", "vm", "workload")[:NAMES_SHOWN])
    by_backend = dict(spaces.order_by().values("backend").annotate(n=Count("id")).values_list("backend", "n"))
    return {
        "name": name, "vm_count": holders.count(),
        "vms": [{"host": h, "name": vm or workload} for h, vm, workload in vms],
        "spaces": [(b, by_backend.get(b, 0)) for b in BACKENDS], "space_count": sum(by_backend.values()),
        # Devices the ownership model gives to one of the tenant's holders.
        "devices": Device.objects.filter(Exists(holders.filter(host_id=OuterRef("host_id"), pid=OuterRef("owner_pid")))).count(),
        "pasids": pasids["used"], "pasid_hosts": pasids["hosts"], "quota": pasids["quota"], "over_quota": pasids["over"],
    }


def tenants_page(filters: SpacesFilters, page_number) -> dict:
    page = Paginator(tenant_pasid_rows(filters), TENANT_PAGE).get_page(params.page_number(page_number))
    return {"page": page, "rows": [_tenant_row(r, filters.backend) for r in page.object_list]}


def _hosts(filters: SpacesFilters):
    qs = Host.objects.all()
    if filters.backend:
        qs = qs.filter(Exists(AddressSpace.objects.filter(host_id=OuterRef("pk"), backend=filters.backend)))
    if filters.tenant:
        qs = qs.filter(Exists(Holder.objects.filter(host_id=OuterRef("pk")).filter(tenant_holder_q(filters.tenant))))
    return qs.order_by("hostname", "pk").only(
        "hostname", "kernel", "stale", "vfio_iommufd", "vfio_cdev_support", "vfio_cdevs", "vfio_modules", "software")


def readiness(host: Host) -> tuple[str, str]:
    """(state, sentence) of what the kernel offers VMs for iommufd, from the agent's facts only."""
    # A listed cdev proves support where an older agent does not report it.
    cdevs = host.vfio_cdev_support or bool(host.vfio_cdevs)
    if host.vfio_iommufd and cdevs:
        return "ready", "/dev/iommu and per-device VFIO cdevs are there: QEMU can open devices through iommufd"
    if host.vfio_iommufd:
        return ("partial", "/dev/iommu is there but no VFIO cdevs (kernel without CONFIG_VFIO_DEVICE_CDEV, or VFIO not "
                "loaded): only the legacy container path for VFIO devices" if host.vfio_cdev_support is False else
                "/dev/iommu is there; whether VFIO offers cdevs is not reported (an older agent, or VFIO not loaded)")
    return "legacy-only", "no /dev/iommu: this kernel offers only the legacy VFIO container path"


def hosts_page(filters: SpacesFilters, page_number) -> dict:
    """One page of the migration matrix: per host its readiness, versions, and its VMs by backend."""
    page = Paginator(_hosts(filters), HOST_PAGE).get_page(params.page_number(page_number))
    hosts = list(page.object_list)
    ids = [h.pk for h in hosts]
    spaces = AddressSpace.objects.filter(host_id__in=ids)
    if filters.tenant:
        spaces = spaces.filter(_held_by(Holder.objects.filter(tenant_holder_q(filters.tenant))))
    counts = {(h, b): n for h, b, n in spaces.order_by().values("host_id", "backend")
              .annotate(n=Count("pid", distinct=True)).values_list("host_id", "backend", "n")}
    # Names: one query reading at most NAMES_SHOWN spaces per (host, backend) cell.
    first = Window(RowNumber(), partition_by=[F("host_id"), F("backend")], order_by=[F("vm").asc(nulls_last=True), F("pid")])
    names: dict[tuple[int, str], list[str]] = {}
    for host_id, backend, vm, pid in (spaces.annotate(n=first).filter(n__lte=NAMES_SHOWN)
                                      .order_by("host_id", "backend", "n").values_list("host_id", "backend", "vm", "pid")):
        label = vm or f"pid {pid}"
        cell = names.setdefault((host_id, backend), [])
        if label not in cell:
            cell.append(label)
    rows = []
    for h in hosts:
        state, why = readiness(h)
        software = h.software if isinstance(h.software, dict) else {}
        modules = h.vfio_modules if isinstance(h.vfio_modules, dict) else {}
        rows.append({
            "host": h, "readiness": state, "readiness_why": why,
            "qemu": software.get("qemu"), "libvirt": software.get("libvirt"),
            "iommufd_module": modules.get("iommufd"),
            "backends": [{"backend": b, "count": counts.get((h.pk, b), 0), "names": names.get((h.pk, b), [])}
                         for b in BACKENDS],
        })
    return {"page": page, "rows": rows}
