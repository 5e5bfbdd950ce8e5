from django.urls import path

from . import api, views

app_name = "decisions"

urlpatterns = [
    path("capacity/", views.capacity, name="capacity"),
    path("capacity/export.csv", views.capacity_export_csv, name="capacity-export-csv"),
    path("capacity/export.json", views.capacity_export_json, name="capacity-export-json"),
    path("api/v1/capacity", api.CapacityView.as_view(), name="api-capacity"),
    path("api/v1/preflight", api.PreflightView.as_view(), name="api-preflight"),
]
