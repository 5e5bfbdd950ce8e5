"""Fleet-wide device search: DeviceQuery terms -> matching devices, paged and exported."""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import reduce
from operator import or_

from django.core.paginator import Page, Paginator
from django.db.models import Exists, OuterRef, Q, QuerySet

from fleet.inventory.models import AddressSpace, Attachment, Device, Host
from fleet.inventory.selectors import shared_spaces
from fleet.web.device_query import DeviceQuery, Term
from fleet.web.selectors.driver_skip_scan import class_without_drivers
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


# Fields whose values compare for equality: all of a term's values go in one IN list (one array parameter).
_IN_COLUMNS = {"vendor": "vendor_id", "device": "device_id", "owner": "owner_kind", "role": "host__role",
               "group": "group_number", "bdf": "bdf"}
_UNBOUND = {"none", "-"}


def _any(qs: list[Q]) -> Q:
    return reduce(or_, qs) if qs else Q(pk__in=[])


def _term_q(term: Term) -> Q:
    """One term's values ORed, as IN lists where they compare for equality.

    Its size grows with the values the user typed (at most MAX_VALUES), never with what hosts sent:
    a negated term goes to exclude() as NOT (...), so driver:!vfio-pci is one NOT IN, whatever the fleet's drivers.
    """
    values = term.values
    if term.field in _IN_COLUMNS:
        if term.field == "group":
            values = [int(v) for v in values]
        return Q(**{f"{_IN_COLUMNS[term.field]}__in": list(values)})
    if term.field == "driver":
        named = [v for v in values if v not in _UNBOUND]
        return _any(([Q(driver__in=named)] if named else []) + ([Q(driver__isnull=True)] if len(named) < len(values) else []))
    if term.field == "vm":
        named = [v for v in values if v != "*" and v.lower() != "none"]
        special = [_value_q("vm", v) for v in values if v not in named]
        return _any(special + ([Q(owner_vm__in=named)] if named else []))
    if term.field == "backend":
        return Q(Exists(_attached(AddressSpace.objects.filter(backend__in=list(values)))))
    if term.field == "as":
        return _any([_value_q("as", v) for v in values])
    if term.field == "host":
        exact = [v for v in values if "*" not in v]
        prefixes = [Q(host__hostname__startswith=v.rstrip("*")) for v in values if "*" in v]
        return _any(prefixes + ([Q(host__hostname__in=exact)] if exact else []))
    return _any([_value_q(term.field, v) for v in values])


def _attached(spaces: QuerySet | None = None) -> QuerySet:
    """The device's attachments (one EXISTS per term, whatever the fleet holds), to `spaces` of its host when given."""
    found = Attachment.objects.filter(host_id=OuterRef("host_id"), device_bdf=OuterRef("bdf"))
    if spaces is None:
        return found
    return found.filter(space__in=spaces.filter(host_id=OuterRef("host_id")).values("key"))


def _value_q(name: str, value: str) -> Q:
    if name == "id":
        vendor, device = value.split(":")
        q = Q(pk__isnull=False)  # *:* is every device (an empty Q() would vanish from an OR)
        if vendor != "*":
            q &= Q(vendor_id=vendor)
        if device != "*":
            q &= Q(device_id=device)
        return q
    if name == "class":
        return _hex_prefix(value)
    if name == "vm":
        return Q(owner_vm__isnull=False) if value == "*" else Q(owner_vm__isnull=True)
    if name == "vf":
        return Q(physfn_bdf__isnull=(value == "no"))
    if name == "pf":
        is_pf = Q(sriov__isnull=False, physfn_bdf__isnull=True)
        return is_pf if value == "yes" else ~is_pf
    if name == "label":
        # EXISTS rather than a join: a join would repeat devices of hosts with several matching labels.
        return Q(Exists(Host.labels.through.objects.filter(host_id=OuterRef("host_id"), label__name=value)))
    if name == "tenant":
        return tenant_vm_q(value, field="owner_vm")
    if name == "as":
        if value == "shared":
            return Q(Exists(_attached(shared_spaces())))
        return Q(Exists(_attached())) if value == "*" else ~Q(Exists(_attached()))
    raise ValueError(f"unknown field {name}")


def _class_without_drivers(terms: list[Term]) -> tuple[Q | None, list[Term]]:
    """'class:C driver:!X' as per-driver index probes (driver_skip_scan) when it applies, and the terms it leaves."""
    classes = [t for t in terms if t.field == "class" and not t.negate]
    not_drivers = [t for t in terms if t.field == "driver" and t.negate]
    if not (classes and not_drivers):
        return None, terms
    [class_term], [driver_term] = classes, not_drivers  # the parser merges a field's terms
    named = [v for v in driver_term.values if v not in _UNBOUND]
    q = class_without_drivers([_hex_prefix(p) for p in class_term.values], named,
                              unbound=len(named) == len(driver_term.values))
    if q is None:
        return None, terms
    return q, [t for t in terms if t is not class_term and t is not driver_term]


def devices_matching(query: DeviceQuery) -> QuerySet:
    """Devices matching every term, unordered (the planner picks the most selective index)."""
    qs = Device.objects.all()
    skip_scan, terms = _class_without_drivers(query.terms)
    if skip_scan is not None:
        qs = qs.filter(skip_scan)
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


def _rows(ids: list[int]) -> list[dict]:
    # values(), not instances: an export of 50,000 hits spent half its time building deferred Device and Host objects.
    found = {r["id"]: r for r in Device.objects.filter(id__in=ids).values("id", *RESULT_FIELDS)}
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


def devices_search_export(query: DeviceQuery, *, limit: int, chunk: int = 2000) -> Iterator[dict]:
    ids, _ = _ordered_ids(query, limit)
    for start in range(0, len(ids), chunk):
        yield from _rows(ids[start:start + chunk])
