from django.urls import path

from . import api, views

app_name = "decisions"

urlpatterns = [
    path("capacity/", views.capacity, name="capacity"),
    path("capacity/export.csv", views.capacity_export_csv, name="capacity-export-csv"),
    path("capacity/export.json", views.capacity_export_json, name="capacity-export-json"),
    path("upgrade-report/", views.upgrade_report_page, name="upgrade-report"),
    path("upgrade-report/export.json", views.upgrade_report_json, name="upgrade-report-json"),
    path("baseline/accept/", views.baseline_accept, name="baseline-accept"),
    path("api/v1/hosts/<path:hostname>/baseline", api.BaselineView.as_view(), name="api-baseline-accept"),
    path("api/v1/capacity", api.CapacityView.as_view(), name="api-capacity"),
    path("api/v1/preflight", api.PreflightView.as_view(), name="api-preflight"),
]
