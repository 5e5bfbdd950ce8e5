"""GET /metrics in the Prometheus text format, for a bearer token (FLEET_METRICS_TOKEN) or a staff session."""
import hmac
import os

from django.conf import settings
from django.http import HttpResponse
from django.views.decorators.http import require_GET
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client import multiprocess

from .collectors import FleetCollector
from .instruments import REGISTRY as INSTRUMENTS


class _Instruments:
    """Re-exposes this process's instruments in a per-scrape registry."""

    def collect(self):
        # With a broker, task failures come from the broker (collectors.py), not from this process.
        broker = bool(getattr(settings, "CELERY_BROKER_URL", ""))
        return [f for f in INSTRUMENTS.collect() if not (broker and f.name == "fleet_task_failures")]


def _allowed(request) -> bool:
    expected = getattr(settings, "FLEET_METRICS_TOKEN", "")
    header = request.headers.get("Authorization", "")
    if expected and header.startswith("Bearer "):
        return hmac.compare_digest(header[len("Bearer "):].encode(), expected.encode())
    user = request.user
    return user.is_authenticated and user.is_active and user.is_staff


@require_GET
def metrics(request):
    if not _allowed(request):
        response = HttpResponse("metrics need a bearer token (FLEET_METRICS_TOKEN) or a staff session\n", status=401, content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Instruments())
    registry.register(FleetCollector())
    return HttpResponse(generate_latest(registry), content_type=CONTENT_TYPE_LATEST)


@require_GET
def healthz(request):
    """Liveness and database reachability for load balancers and container health checks; no data, no auth."""
    from django.db import DatabaseError, connection

    try:
        connection.ensure_connection()
    except DatabaseError:
        return HttpResponse('{"database": "unreachable"}\n', status=503, content_type="application/json")
    return HttpResponse('{"database": "ok"}\n', content_type="application/json")
