from django.contrib.auth import views as auth_views
from django.urls import path

from fleet.web.views import fleet, hosts, search, spaces, violations

app_name = "web"

urlpatterns = [
    path("", fleet.fleet_overview, name="fleet"),
    path("fleet/tiles.json", fleet.fleet_tiles_json, name="fleet-tiles"),
    # Hostnames come from agents: <path:> so an odd one still resolves; suffixed routes first.
    path("hosts/<path:hostname>/topology.json", hosts.host_topology_json, name="host-topology"),
    path("hosts/<path:hostname>/history/", hosts.host_history, name="host-history"),
    path("hosts/<path:hostname>/", hosts.host_detail, name="host-detail"),
    path("violations/", violations.violations_list, name="violations"),
    path("violations/<int:pk>/acknowledge/", violations.violation_acknowledge, name="violation-acknowledge"),
    path("violations/<int:pk>/waive/", violations.violation_waive, name="violation-waive"),
    path("violations/bulk/", violations.violations_bulk, name="violations-bulk"),
    path("violations/export.csv", violations.violations_export_csv, name="violations-export-csv"),
    path("violations/export.json", violations.violations_export_json, name="violations-export-json"),
    path("waivers/<int:pk>/revoke/", violations.waiver_revoke, name="waiver-revoke"),
    path("waivers/<int:pk>/extend/", violations.waiver_extend, name="waiver-extend"),
    path("address-spaces/", spaces.address_spaces, name="address-spaces"),
    path("search/", search.device_search, name="search"),
    path("search/export.csv", search.device_search_export_csv, name="search-export-csv"),
    path("search/export.json", search.device_search_export_json, name="search-export-json"),
    path("accounts/login/", auth_views.LoginView.as_view(), name="login"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
]
