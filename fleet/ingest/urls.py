from django.urls import path

from . import views

urlpatterns = [
    path("api/v1/snapshots", views.snapshot_create, name="api-snapshot-create"),
    path("api/v1/heartbeat", views.heartbeat_create, name="api-heartbeat"),
]
