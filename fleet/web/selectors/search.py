"""Fleet-wide device search: DeviceQuery terms -> an indexed Device queryset."""
from __future__ import annotations

from django.db.models import Q, QuerySet

from fleet.inventory.models import Device
from fleet.web.device_query import DeviceQuery, Term
from fleet.web.selectors.tenants import tenant_vm_q

MAX_COUNT = 10_000  # beyond this the page says "more than" instead of counting every row


def _hex_prefix(prefix: str) -> Q:
    """class_code starting with `prefix`, as a range so a plain btree index serves it (LIKE would not)."""
    if len(prefix) == 6:
        return Q(class_code=prefix)
    last = prefix[-1]
    upper = prefix[:-1] + ("a" if last == "9" else chr(ord(last) + 1)) if last != "f" else prefix[:-1] + "g"
    return Q(class_code__gte=prefix, class_code__lt=upper)


def _term_q(term: Term) -> Q:
    q = Q()
    for value in term.values:
        q |= _value_q(term.field, value)
    return q


def _value_q(name: str, value: str) -> Q:
    if name == "id":
        vendor, device = value.split(":")
        q = Q()
        if vendor != "*":
            q &= Q(vendor_id=vendor)
        if device != "*":
            q &= Q(device_id=device)
        return q
    if name == "vendor":
        return Q(vendor_id=value)
    if name == "device":
        return Q(device_id=value)
    if name == "class":
        return _hex_prefix(value)
    if name == "driver":
        return Q(driver__isnull=True) if value in {"none", "-"} else Q(driver=value)
    if name == "bdf":
        return Q(bdf=value) if len(value) > 7 else Q(bdf=f"0000:{value}")
    if name == "group":
        return Q(group_number=int(value))
    if name == "vm":
        if value == "*":
            return Q(owner_vm__isnull=False)
        if value.lower() == "none":
            return Q(owner_vm__isnull=True)
        return Q(owner_vm=value)
    if name == "owner":
        return Q(owner_kind=value)
    if name == "vf":
        return Q(physfn_bdf__isnull=(value == "no"))
    if name == "pf":
        is_pf = Q(sriov__isnull=False, physfn_bdf__isnull=True)
        return is_pf if value == "yes" else ~is_pf
    if name == "host":
        return Q(host__hostname=value) if "*" not in value else Q(host__hostname__startswith=value.rstrip("*"))
    if name == "label":
        return Q(host__labels__name=value)
    if name == "role":
        return Q(host__role=value)
    if name == "tenant":
        return tenant_vm_q(value, field="owner_vm")
    raise ValueError(f"unknown field {name}")


def devices_search(query: DeviceQuery) -> QuerySet:
    """Devices matching every term, with their host, ordered by host then BDF."""
    qs = Device.objects.select_related("host")
    for term in query.terms:
        q = _term_q(term)
        qs = qs.exclude(q) if term.negate else qs.filter(q)
    if any(t.field == "label" for t in query.terms):
        qs = qs.distinct()
    return qs.order_by("host__hostname", "bdf")


def devices_search_count(qs: QuerySet) -> tuple[int, bool]:
    """(count, exact): counts up to MAX_COUNT rows, so a broad query costs a bounded scan."""
    n = qs.order_by()[: MAX_COUNT + 1].count()
    return min(n, MAX_COUNT), n <= MAX_COUNT
