from django.shortcuts import render

from fleet.web.access import viewer_required
from fleet.web.selectors.spaces_fleet import BACKENDS, SpacesFilters, hosts_page, tenants_page


@viewer_required
def address_spaces(request):
    filters = SpacesFilters.from_querydict(request.GET)
    tenants = tenants_page(filters, request.GET.get("tpage"))
    hosts = hosts_page(filters, request.GET.get("page"))
    keep = request.GET.copy()
    for name in ("page", "tpage"):
        keep.pop(name, None)
    return render(request, "web/address_spaces.html", {
        "filters": filters, "backends": BACKENDS, "tenants": tenants, "hosts": hosts,
        "page": hosts["page"], "query_string": keep.urlencode(),
    })
