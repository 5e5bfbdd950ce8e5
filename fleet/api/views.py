"""Read-only viewsets: a queryset, a serializer and a filterset each, nothing else."""
from django.http import JsonResponse
from django_filters.rest_framework import DjangoFilterBackend
from rest_framework import viewsets
from rest_framework.authentication import SessionAuthentication
from rest_framework.filters import OrderingFilter
from rest_framework.renderers import JSONRenderer

from fleet.ingest.freshness import with_report_state
from fleet.inventory.models import AddressSpace, Change, Device, Group, Holder, Host
from fleet.policy.models import Violation

from . import filtersets, serializers
from .authentication import ApiTokenAuthentication
from .pagination import FleetPagination
from .permissions import FleetReader


class _FleetReadViewSet(viewsets.ReadOnlyModelViewSet):
    # Token first: its WWW-Authenticate header makes DRF answer 401 (not 403) to a bad token.
    authentication_classes = [ApiTokenAuthentication, SessionAuthentication]
    permission_classes = [FleetReader]
    pagination_class = FleetPagination
    filter_backends = [DjangoFilterBackend, OrderingFilter]
    # JSON only: DRF's browsable HTML pages use inline styles and handlers our CSP blocks; /api/docs/ is the browsable view.
    renderer_classes = [JSONRenderer]
    # Any id text reaches the view (and gets a JSON 404), not Django's HTML 404 for an unmatched URL.
    lookup_value_regex = r"[^/]+"


class HostViewSet(_FleetReadViewSet):
    queryset = with_report_state(Host.objects.prefetch_related("labels")).order_by("hostname")
    serializer_class = serializers.HostSerializer
    filterset_class = filtersets.HostFilter
    lookup_field = "hostname"
    ordering_fields = ["hostname", "last_seen", "device_count", "assigned_count"]


class DeviceViewSet(_FleetReadViewSet):
    queryset = Device.objects.select_related("host").order_by("host__hostname", "bdf")
    serializer_class = serializers.DeviceSerializer
    filterset_class = filtersets.DeviceFilter
    ordering_fields = ["bdf", "vendor_id", "driver"]


class GroupViewSet(_FleetReadViewSet):
    queryset = Group.objects.select_related("host").order_by("host__hostname", "number")
    serializer_class = serializers.GroupSerializer
    filterset_class = filtersets.GroupFilter
    ordering_fields = ["number"]


class HolderViewSet(_FleetReadViewSet):
    queryset = Holder.objects.select_related("host").order_by("host__hostname", "pid")
    serializer_class = serializers.HolderSerializer
    filterset_class = filtersets.HolderFilter
    ordering_fields = ["pid", "vm"]


class AddressSpaceViewSet(_FleetReadViewSet):
    queryset = AddressSpace.objects.select_related("host").order_by("host__hostname", "pid", "key")
    serializer_class = serializers.AddressSpaceSerializer
    filterset_class = filtersets.AddressSpaceFilter
    ordering_fields = ["pid", "vm", "backend", "pinned_kb"]


class ChangeViewSet(_FleetReadViewSet):
    queryset = Change.objects.select_related("host").order_by("-at", "-id")
    serializer_class = serializers.ChangeSerializer
    filterset_class = filtersets.ChangeFilter
    ordering_fields = ["at"]


class ViolationViewSet(_FleetReadViewSet):
    queryset = Violation.objects.select_related("host").order_by("host__hostname", "rule", "subject_kind", "subject_id")
    serializer_class = serializers.ViolationSerializer
    filterset_class = filtersets.ViolationFilter
    ordering_fields = ["opened_at", "severity", "rule"]


def not_found(request, *args, **kwargs):
    """Anything else under /api/v1/: a JSON 404, so API clients never have to parse an HTML page."""
    return JsonResponse({"detail": "Not found."}, status=404)
