"""The capacity finder page and its exports: parse, call the finder, render. No logic here."""
from django.core.exceptions import BadRequest
from django.shortcuts import render

from fleet.web.access import viewer_required
from fleet.web.device_query import QueryTooLarge, parse_device_query
from fleet.web.exports import csv_download, json_download

from .finder import MAX_PICKS, WINDOW, capacity_find

DEFAULT_QUERY = "class:gpu"
EXPORT_FIELDS = ["rank", "host", "role", "device", "vendor_device", "class", "driver", "numa_node", "group", "companions", "bridges"]


def _form(request):
    """(q, count, query); a query past the language's bounds or a bad count is a 400 naming it."""
    q = request.GET.get("q", DEFAULT_QUERY)
    raw = request.GET.get("count", "4")
    if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PICKS:
        raise BadRequest(f"count: a whole number from 1 to {MAX_PICKS}")
    try:
        return q, int(raw), parse_device_query(q)
    except QueryTooLarge as exc:
        raise BadRequest(f"q: {exc}") from exc


@viewer_required
def capacity(request):
    q, count, query = _form(request)
    found = None if query.errors else capacity_find(query, count=count)
    pick_requests = [{"pick": {"host": p["host"], "devices": p["devices"]}, "owner": {"vm": "", "tenant": ""}}
                     for p in (found.picks if found else [])]
    return render(request, "decisions/capacity.html", {"q": q, "count": count, "query": query, "found": found,
                                                       "pick_requests": pick_requests, "max_picks": MAX_PICKS,
                                                       "window": WINDOW})


def _export(request):
    q, count, query = _form(request)
    if query.errors:
        raise BadRequest("q: " + "; ".join(query.errors))
    return q, capacity_find(query, count=count)


@viewer_required
def capacity_export_csv(request):
    _, found = _export(request)
    rows = ({**p, "companions": " ".join(p["companions"]), "bridges": " ".join(p["bridges"])} for p in found.picks)
    return csv_download("capacity.csv", EXPORT_FIELDS, rows)


@viewer_required
def capacity_export_json(request):
    q, found = _export(request)
    return json_download("capacity.json", {"query": q, "free_groups": found.free_groups, "exact": found.exact, "picks": found.picks,
                             "per_host": found.per_host, "per_label": found.per_label})
