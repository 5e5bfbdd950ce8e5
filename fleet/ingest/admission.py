"""Admission control for the agent endpoints: answer 503 + Retry-After instead of queueing without bound.

Two gates, both cheap enough to run before the request body is read:
- in-flight: at most FLEET_INGEST_MAX_INFLIGHT agent requests are being handled at once in
  this process (gthread workers: the other threads answer "retry" at once, so the listen
  backlog drains and the database sees a bounded number of writers);
- backlog: when the Celery queue holds more than FLEET_INGEST_MAX_QUEUE messages, new
  snapshots wait on the agents' disks (their spool) rather than in Redis. The depth is read
  at most once a second per process.
Retry-After carries jitter so a refused burst does not come back as the same burst; the agent
honours it and keeps the snapshot in its spool meanwhile, so a refusal loses nothing.
"""
import json
import random
import threading
import time

from django.conf import settings
from django.http import HttpResponse

from fleet.metrics.queue import queue_depth

from .bodies import body_abandon

GUARDED_PATHS = ("/api/v1/snapshots", "/api/v1/heartbeat")


class _Gate:
    def __init__(self, limit: int):
        self.limit = limit
        self._slots = threading.BoundedSemaphore(limit) if limit > 0 else None

    def try_enter(self) -> bool:
        return self._slots is None or self._slots.acquire(blocking=False)

    def leave(self) -> None:
        if self._slots is not None:
            self._slots.release()


class _QueueDepth:
    def __init__(self, ttl: float = 1.0):
        self.ttl = ttl
        self._value: int | None = None
        self._at = 0.0
        self._lock = threading.Lock()

    def get(self) -> int | None:
        now = time.monotonic()
        with self._lock:
            if now - self._at < self.ttl:
                return self._value
            self._at = now
        value = queue_depth()
        self._value = value
        return value


def _busy(reason: str) -> HttpResponse:
    ceiling = max(1, getattr(settings, "FLEET_INGEST_RETRY_AFTER", 5))
    delay = random.randint(1, ceiling)
    response = HttpResponse(json.dumps({"error": "busy", "reason": reason, "retry_after": delay}), status=503, content_type="application/json")
    response["Retry-After"] = str(delay)
    return response


class IngestAdmissionMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response
        self.gate = _Gate(getattr(settings, "FLEET_INGEST_MAX_INFLIGHT", 16))
        self.max_queue = getattr(settings, "FLEET_INGEST_MAX_QUEUE", 0)
        self.depth = _QueueDepth()

    def __call__(self, request):
        if request.method != "POST" or request.path.rstrip("/") not in GUARDED_PATHS:
            return self.get_response(request)
        if self.max_queue > 0 and request.path.rstrip("/") == GUARDED_PATHS[0]:
            depth = self.depth.get()
            if depth is not None and depth > self.max_queue:
                body_abandon(request)
                return _busy("task backlog")
        if not self.gate.try_enter():
            body_abandon(request)  # unread: a slow client must not hold a thread while gunicorn drains it
            return _busy("too many agent requests in flight")
        try:
            return self.get_response(request)
        finally:
            self.gate.leave()
