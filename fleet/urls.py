from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("fleet.ingest.urls")),
    path("", include("fleet.policy.urls")),
    path("", include("fleet.web.urls")),
    path("", include("fleet.accounts.urls")),
    path("", include("fleet.api.urls")),
    path("", include("fleet.metrics.urls")),
]

handler400 = "fleet.web.views.errors.bad_request"
handler403 = "fleet.web.views.errors.permission_denied"
handler404 = "fleet.web.views.errors.page_not_found"
handler500 = "fleet.web.views.errors.server_error"
