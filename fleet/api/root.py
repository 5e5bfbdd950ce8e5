"""GET /api/v1/: what this API offers, as absolute links, so a client (or a person with curl) can start here."""
from django.urls import NoReverseMatch, reverse
from rest_framework.authentication import SessionAuthentication
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from .authentication import ApiTokenAuthentication
from .permissions import FleetReader

# Not under the router but part of the same API: the agents' endpoints and the documentation.
_ELSEWHERE = {
    "snapshots": ("api-snapshot-create", "POST: an agent's snapshot (host token)"),
    "heartbeat": ("api-heartbeat", "POST: an agent's unchanged report (host token)"),
    "schema": ("api:schema", "the OpenAPI schema of this API"),
    "docs": ("api:docs", "the schema, browsable"),
}


class ApiRoot(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [FleetReader]
    renderer_classes = [JSONRenderer]
    registry: tuple = ()  # (prefix, viewset, basename) of the router, given by the URLconf
    schema = None  # a directory, not a resource: left out of the OpenAPI schema

    def get(self, request):
        resources = {prefix: request.build_absolute_uri(reverse(f"api:{basename}-list"))
                     for prefix, _viewset, basename in self.registry}
        other = {}
        for key, (name, what) in _ELSEWHERE.items():
            try:
                other[key] = {"url": request.build_absolute_uri(reverse(name)), "what": what}
            except NoReverseMatch:
                continue
        return Response({"resources": resources, "other": other})
