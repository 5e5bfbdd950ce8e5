from django.core.exceptions import BadRequest
from django.shortcuts import render

from fleet.web import params
from fleet.web.access import viewer_required
from fleet.web.device_query import CLASS_ALIASES, QueryTooLarge, parse_device_query
from fleet.web.exports import csv_download
from fleet.web.json_response import SafeJsonResponse
from fleet.web.selectors.search import devices_search_export, devices_search_page
from fleet.web.selectors.search_rows import device_row

PAGE_SIZE = 100
EXPORT_LIMIT = 50_000
EXPORT_FIELDS = ["hostname", "bdf", "vendor_device", "vendor", "class", "class_name", "driver",
                 "driver_override", "group", "owner_kind", "vm", "sriov", "physfn", "role", "link"]


def _query(request):
    """The request's parsed `q`; a query past the language's bounds is a 400 naming the bound."""
    try:
        return parse_device_query(request.GET.get("q", ""))
    except QueryTooLarge as exc:
        raise BadRequest(f"q: {exc}") from exc


@viewer_required
def device_search(request):
    query = _query(request)
    ctx = {"q": request.GET.get("q", ""), "query": query, "aliases": sorted(CLASS_ALIASES.items())}
    if not query.empty:
        result = devices_search_page(query, params.page_number(request.GET.get("page")), per_page=PAGE_SIZE)
        ctx.update({"page": result.page, "rows": [device_row(d) for d in result.devices],
                    "total": result.total, "exact": result.exact})
    return render(request, "web/search.html", ctx)


def _export_rows(request):
    query = _query(request)
    if query.empty:
        return query, []
    return query, (device_row(d) for d in devices_search_export(query, limit=EXPORT_LIMIT))


@viewer_required
def device_search_export_csv(request):
    _, rows = _export_rows(request)
    return csv_download("devices.csv", EXPORT_FIELDS, rows)


@viewer_required
def device_search_export_json(request):
    query, rows = _export_rows(request)
    return SafeJsonResponse({"query": request.GET.get("q", ""), "errors": query.errors,
                         "devices": [{f: r.get(f) for f in EXPORT_FIELDS} for r in rows]})
