"""Counts and times agent requests by path, so the ingest views need no metrics code of their own."""
import time

from .instruments import INGEST_LATENCY, INGEST_REQUESTS

INGEST_ENDPOINTS = {"/api/v1/snapshots": "snapshots", "/api/v1/heartbeat": "heartbeat"}


def _endpoint(path: str) -> str | None:
    return INGEST_ENDPOINTS.get(path.rstrip("/"))


class IngestMetricsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        endpoint = _endpoint(request.path)
        if endpoint is None:
            return self.get_response(request)
        started = time.perf_counter()
        response = self.get_response(request)
        INGEST_LATENCY.labels(endpoint=endpoint).observe(time.perf_counter() - started)
        INGEST_REQUESTS.labels(endpoint=endpoint, status=str(response.status_code)).inc()
        return response
