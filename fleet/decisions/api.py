"""The decisions API: `GET /api/v1/capacity` (the finder) and `POST /api/v1/preflight`. Thin views:
validate, call the selector or the service, answer."""
from __future__ import annotations

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from agent.bdf import parse_bdf
from fleet.api.authentication import ApiTokenAuthentication
from fleet.api.bounds import PICK, bounded
from fleet.api.permissions import BaselineAcceptor, FleetReader, PreflightCaller
from fleet.inventory import limits
from fleet.inventory.models import Host
from fleet.policy import services as policy_services
from fleet.web.device_query import QueryTooLarge, parse_device_query

from .finder import MAX_PICKS, capacity_find
from .services import preflight_run

MAX_DEVICES = 64  # a VM's hostdevs; more is not a VM start
MAX_BODY = 64 * 1024
_REQUEST_KEYS = {"host", "devices", "pick", "owner"}


class BdfField(serializers.CharField):
    def __init__(self, **kwargs):
        super().__init__(max_length=16, **kwargs)

    def to_internal_value(self, data):
        bdf = parse_bdf(super().to_internal_value(data))
        if bdf is None:
            raise serializers.ValidationError("not a PCI address (dddd:bb:dd.f or bb:dd.f)")
        return bdf


class PickSerializer(serializers.Serializer):
    """A capacity finder pick as the finder returned it: only `host` and `devices` are read."""

    host = serializers.CharField(max_length=limits.HOSTNAME)
    devices = serializers.ListField(child=BdfField(), min_length=1, max_length=MAX_DEVICES)


class OwnerSerializer(serializers.Serializer):
    vm = serializers.CharField(max_length=limits.VM_NAME)
    tenant = serializers.CharField(max_length=limits.VM_NAME, required=False, allow_blank=True, allow_null=True)


class PreflightRequestSerializer(serializers.Serializer):
    host = serializers.CharField(max_length=limits.HOSTNAME, required=False)
    devices = serializers.ListField(child=BdfField(), min_length=1, max_length=MAX_DEVICES, required=False)
    pick = PickSerializer(required=False)
    owner = OwnerSerializer()

    def validate(self, attrs):
        unknown = sorted(set(self.initial_data) - _REQUEST_KEYS) if isinstance(self.initial_data, dict) else []
        if unknown:
            raise serializers.ValidationError({k: ["unknown field"] for k in unknown[:16]})
        if "pick" in attrs:
            if "host" in attrs or "devices" in attrs:
                raise serializers.ValidationError({"pick": ["give either pick or host and devices, not both"]})
            attrs["host"], attrs["devices"] = attrs["pick"]["host"], attrs["pick"]["devices"]
        missing = [k for k in ("host", "devices") if k not in attrs]
        if missing:
            raise serializers.ValidationError({k: ["this field is required (or give a finder pick)"] for k in missing})
        attrs["devices"] = list(dict.fromkeys(attrs["devices"]))
        return attrs


class _DecisionsView(APIView):
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    renderer_classes = [JSONRenderer]


class PreflightView(_DecisionsView):
    authentication_classes = [ApiTokenAuthentication]  # tokens only: hooks call it, and no session cookie means no CSRF to forge
    permission_classes = [PreflightCaller]

    @extend_schema(request=PreflightRequestSerializer, responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT,
                                                                   401: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                                                                   404: OpenApiTypes.OBJECT},
                   description="A dry run: may these devices of one host go to this VM? (docs/endpoints.md)")
    def post(self, request):
        if int(request.META.get("CONTENT_LENGTH") or 0) > MAX_BODY:
            return Response({"body": [f"at most {MAX_BODY} bytes"]}, status=status.HTTP_400_BAD_REQUEST)
        form = PreflightRequestSerializer(data=request.data)
        if not form.is_valid():
            return Response(form.errors, status=status.HTTP_400_BAD_REQUEST)
        data = form.validated_data
        answer = preflight_run(hostname=data["host"], devices=data["devices"], vm=data["owner"]["vm"],
                               tenant=data["owner"].get("tenant") or None, actor=request.user, token_prefix=request.auth.prefix)
        return Response(answer.body, status=answer.status)


class CapacityView(_DecisionsView):
    permission_classes = [FleetReader]

    @extend_schema(parameters=[OpenApiParameter("q", str, description="a device query (the search language)"),
                               OpenApiParameter("count", int, description=f"how many picks, 1 to {MAX_PICKS} (default 4)")],
                   responses={200: OpenApiTypes.OBJECT, 400: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT},
                   description="Free whole IOMMU groups for devices matching q, fewest companions first.")
    def get(self, request):
        try:
            query = parse_device_query(request.query_params.get("q", ""))
        except QueryTooLarge as exc:
            return Response({"q": [str(exc)]}, status=status.HTTP_400_BAD_REQUEST)
        if query.errors:
            return Response({"q": query.errors}, status=status.HTTP_400_BAD_REQUEST)
        raw = request.query_params.get("count", "4")
        if not (raw.isascii() and raw.isdigit()) or not 1 <= int(raw) <= MAX_PICKS:
            return Response({"count": [f"a whole number from 1 to {MAX_PICKS}"]}, status=status.HTTP_400_BAD_REQUEST)
        found = capacity_find(query, count=int(raw))
        picks = []
        for pick in found.picks:
            cut_pick, cut = bounded(pick, PICK)
            picks.append({**cut_pick, "truncated": cut})
        return Response({"query": request.query_params.get("q", ""), "count": int(raw), "free_groups": found.free_groups,
                         "exact": found.exact, "picks": picks, "per_host": found.per_host, "per_label": found.per_label})


class BaselineRequestSerializer(serializers.Serializer):
    """No fields: the host is in the path and its current state is what is accepted."""


class BaselineView(_DecisionsView):
    permission_classes = [BaselineAcceptor]
    parser_classes = [JSONParser]

    @extend_schema(request=BaselineRequestSerializer, responses={200: OpenApiTypes.OBJECT, 401: OpenApiTypes.OBJECT, 403: OpenApiTypes.OBJECT,
                                            404: OpenApiTypes.OBJECT},
                   description="Accept the host's current IOMMU groups (and their members' stable identities) as its baseline; audited.")
    def post(self, request, hostname):
        host = Host.objects.filter(hostname=hostname[:limits.HOSTNAME]).first()
        if host is None:
            return Response({"host": [f"no host {hostname[:100]!r}"]}, status=status.HTTP_404_NOT_FOUND)
        baseline = policy_services.baseline_accept(host=host, user=request.user)
        return Response({"host": host.hostname, "accepted_at": baseline.accepted_at.isoformat(), "accepted_by": baseline.accepted_by,
                         "groups": baseline.groups, "identities": baseline.identities})
