"""The capacity finder page, the before-you-upgrade report, a baseline's re-acceptance, and exports: parse, call, render."""
from django.contrib import messages
from django.core.exceptions import BadRequest
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from fleet.inventory.models import Host
from fleet.policy import services as policy_services
from fleet.web import params
from fleet.web.access import baseline_required, can_accept_baseline, viewer_required
from fleet.web.device_query import QueryTooLarge, parse_device_query
from fleet.web.exports import csv_download, json_download

from .drift import HOSTS_PER_PAGE, upgrade_report
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


def _report(request):
    raw = request.GET.get("offset", "0")
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 9:
        raise BadRequest("offset: a whole number of hosts to skip")
    hostname = params.text(request.GET.get("host"), name="host", max_length=253) or None
    return upgrade_report(offset=int(raw), hostname=hostname)


def report_as_dict(report) -> dict:
    return {"hosts": report.hosts, "scanned": report.scanned, "total": report.total, "offset": report.offset,
            "hosts_per_page": HOSTS_PER_PAGE}


@viewer_required
def upgrade_report_page(request):
    report = _report(request)
    following = report.offset + HOSTS_PER_PAGE if report.offset + HOSTS_PER_PAGE < report.total else None
    return render(request, "decisions/upgrade.html", {"report": report, "following": following,
                                                      "can_accept": can_accept_baseline(request.user)})


@viewer_required
def upgrade_report_json(request):
    return json_download("upgrade-report.json", report_as_dict(_report(request)))


@require_POST
@baseline_required
def baseline_accept(request):
    host = get_object_or_404(Host, hostname=request.POST.get("host", "")[:253])
    policy_services.baseline_accept(host=host, user=request.user)
    messages.success(request, f"accepted the current IOMMU groups of {host.hostname} as its baseline")
    if request.POST.get("back") == "report":
        return redirect(reverse("decisions:upgrade-report"))
    return redirect(reverse("web:host-detail", args=[host.hostname]))
