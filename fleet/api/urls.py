from django.urls import include, path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import DefaultRouter

from . import views
from .root import ApiRoot

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("hosts", views.HostViewSet, basename="host")
router.register("devices", views.DeviceViewSet, basename="device")
router.register("groups", views.GroupViewSet, basename="group")
router.register("holders", views.HolderViewSet, basename="holder")
router.register("address-spaces", views.AddressSpaceViewSet, basename="address-space")
router.register("changes", views.ChangeViewSet, basename="change")
router.register("violations", views.ViolationViewSet, basename="violation")

app_name = "api"
urlpatterns = [
    path("api/v1/", ApiRoot.as_view(registry=tuple(router.registry)), name="root"),
    path("api/v1/", include(router.urls)),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    # The split view serves its start-up code as a separate script, so the page works under our CSP.
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="api:schema", template_name="api/swagger_ui.html"), name="docs"),
    re_path(r"^api/v1/", views.not_found),  # after the ingest app's /api/v1/snapshots and /heartbeat (fleet/urls.py order)
]
