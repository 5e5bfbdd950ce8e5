from django.shortcuts import render
from django.views.decorators.gzip import gzip_page

from fleet.web.access import viewer_required
from fleet.web.json_response import SafeJsonResponse
from fleet.web.selectors.fleet import FleetFilters, fleet_columns, fleet_facets, fleet_page, fleet_tiles, hosts_filtered
from fleet.web.selectors.fleet_summary import fleet_summary
from fleet.web.selectors.violations import violation_rules


@viewer_required
def fleet_overview(request):
    filters = FleetFilters.from_querydict(request.GET)
    data = fleet_page(filters, request.GET.get("page"))
    params = request.GET.copy()
    params.pop("page", None)
    sort_params = request.GET.copy()
    sort_params.pop("sort", None)
    sort_params.pop("page", None)
    return render(request, "web/fleet.html", {
        **data, "filters": filters, "facets": fleet_facets(), "rules": violation_rules(),
        "query_string": params.urlencode(), "sort_query": sort_params.urlencode(),
        "columns": fleet_columns(filters.sort), "summary": fleet_summary(hosts_filtered(filters)),
    })


@gzip_page  # 230 kB -> 25 kB at 10,000 hosts
@viewer_required
def fleet_tiles_json(request):
    return SafeJsonResponse(fleet_tiles(FleetFilters.from_querydict(request.GET)))
