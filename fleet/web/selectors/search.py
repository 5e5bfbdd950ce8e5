"""Fleet-wide device search: DeviceQuery terms -> matching devices, paged and exported."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

from django.core.paginator import Page, Paginator
from django.db import connection
from django.db.models import Exists, OuterRef, Q, QuerySet

from fleet.inventory.models import Device, Host
from fleet.web.device_query import DeviceQuery, Term
from fleet.web.selectors.tenants import tenant_vm_q

MAX_COUNT = 5_000  # beyond this the page says "more than" instead of counting every match
RESULT_FIELDS = (
    "bdf", "vendor_id", "device_id", "class_code", "driver", "driver_override", "group_number",
    "owner_kind", "owner_vm", "sriov", "physfn_bdf", "host__hostname", "host__role",
)


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
        # EXISTS rather than a join: a join would repeat devices of hosts with several matching labels.
        return Q(Exists(Host.labels.through.objects.filter(host_id=OuterRef("host_id"), label__name=value)))
    if name == "role":
        return Q(host__role=value)
    if name == "tenant":
        return tenant_vm_q(value, field="owner_vm")
    raise ValueError(f"unknown field {name}")


def known_drivers() -> list[str]:
    """Every distinct driver name, by a loose index scan (one index probe per name, not a table scan)."""
    table = connection.ops.quote_name(Device._meta.db_table)
    with connection.cursor() as cur:
        cur.execute(
            f"WITH RECURSIVE t(d) AS (SELECT min(driver) FROM {table} "
            f"UNION ALL SELECT (SELECT min(driver) FROM {table} WHERE driver > t.d) FROM t WHERE t.d IS NOT NULL) "
            "SELECT d FROM t WHERE d IS NOT NULL"
        )
        return [row[0] for row in cur.fetchall()]


def _class_without_drivers(class_term: Term, excluded: set[str]) -> Q:
    """class in C and driver not in X, as (driver = d AND class range) arms over the drivers that exist.

    The negation alone cannot use an index; spelled out per remaining driver (and NULL = unbound),
    each arm is one probe of the (driver, class_code) index.
    """
    arms = Q(pk__in=[])
    drivers = [d for d in known_drivers() if d not in excluded]
    for prefix in class_term.values:
        in_class = _hex_prefix(prefix)
        for driver in drivers:
            arms |= Q(driver=driver) & in_class
        if not excluded & {"none", "-"}:
            arms |= Q(driver__isnull=True) & in_class
    return arms


def devices_matching(query: DeviceQuery) -> QuerySet:
    """Devices matching every term, unordered (the planner picks the most selective index)."""
    qs = Device.objects.all()
    terms = list(query.terms)
    class_term = next((t for t in terms if t.field == "class" and not t.negate), None)
    not_drivers = [t for t in terms if t.field == "driver" and t.negate]
    if class_term and not_drivers:
        qs = qs.filter(_class_without_drivers(class_term, {v for t in not_drivers for v in t.values}))
        terms = [t for t in terms if t is not class_term and t not in not_drivers]
    for term in terms:
        q = _term_q(term)
        qs = qs.exclude(q) if term.negate else qs.filter(q)
    return qs


def _ordered_ids(query: DeviceQuery, limit: int) -> tuple[list[int], bool]:
    """Ids of up to `limit` matches in (host, BDF) order, and whether that is all of them.

    Asking the database for `ORDER BY host, bdf LIMIT n` lets it walk the (host, bdf) index and
    filter as it goes, which is fast for broad queries and a full scan for rare ones (a GPU class
    with a driver nobody uses). Taking the matching keys unordered and sorting at most `limit`
    of them here costs the same either way.
    """
    keys = list(devices_matching(query).order_by().values_list("host_id", "bdf", "id")[: limit + 1])
    exact = len(keys) <= limit
    keys.sort()
    return [k[2] for k in keys[:limit]], exact


def _rows(ids: list[int]) -> list[Device]:
    found = Device.objects.select_related("host").only(*RESULT_FIELDS).in_bulk(ids)
    return [found[i] for i in ids if i in found]


@dataclass
class SearchPage:
    page: Page
    devices: list
    total: int
    exact: bool


def devices_search_page(query: DeviceQuery, page_number, *, per_page: int) -> SearchPage:
    ids, exact = _ordered_ids(query, MAX_COUNT)
    page = Paginator(ids, per_page).get_page(page_number)
    return SearchPage(page=page, devices=_rows(list(page.object_list)), total=len(ids), exact=exact)


def devices_search_export(query: DeviceQuery, *, limit: int, chunk: int = 2000) -> Iterator[Device]:
    ids, _ = _ordered_ids(query, limit)
    for start in range(0, len(ids), chunk):
        yield from _rows(ids[start:start + chunk])
