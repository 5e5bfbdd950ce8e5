"""The ingest admission gates on their own: in-flight bound, task backlog bound, Retry-After with jitter."""
import threading
import uuid

import pytest
from django.http import HttpResponse
from django.test import RequestFactory

from fleet.ingest.admission import IngestAdmissionMiddleware

rf = RequestFactory()


def _snapshot_post():
    return rf.post("/api/v1/snapshots", b"{}", content_type="application/json")


def test_requests_beyond_the_in_flight_bound_are_told_to_retry(settings):
    settings.FLEET_INGEST_MAX_INFLIGHT = 2
    settings.FLEET_INGEST_RETRY_AFTER = 7
    inside, release = threading.Semaphore(0), threading.Event()

    def slow_view(request):
        inside.release()
        release.wait(10)
        return HttpResponse(status=202)

    middleware = IngestAdmissionMiddleware(slow_view)
    results = []
    threads = [threading.Thread(target=lambda: results.append(middleware(_snapshot_post()))) for _ in range(2)]
    for t in threads:
        t.start()
    for _ in threads:
        assert inside.acquire(timeout=10)
    refused = [middleware(_snapshot_post()) for _ in range(30)]
    release.set()
    for t in threads:
        t.join(10)
    assert [r.status_code for r in results] == [202, 202]
    assert {r.status_code for r in refused} == {503}
    delays = {int(r["Retry-After"]) for r in refused}
    assert delays <= set(range(1, 8)) and len(delays) > 1, "Retry-After must spread the retries"
    assert middleware(_snapshot_post()).status_code == 202, "slots are given back"


def test_other_paths_and_methods_are_never_gated(settings):
    settings.FLEET_INGEST_MAX_INFLIGHT = 1
    middleware = IngestAdmissionMiddleware(lambda request: HttpResponse(status=200))
    middleware.gate.try_enter()  # the only slot is taken
    assert middleware(rf.get("/api/v1/snapshots")).status_code == 200
    assert middleware(rf.post("/violations/1/waive/")).status_code == 200
    assert middleware(_snapshot_post()).status_code == 503


@pytest.mark.redis
def test_snapshots_wait_while_the_task_backlog_is_over_its_bound_and_heartbeats_do_not(settings, redis_service):
    import redis

    queue = f"fleet-test-{uuid.uuid4().hex}"
    settings.CELERY_BROKER_URL = f"{redis_service}/15"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    settings.FLEET_INGEST_MAX_QUEUE = 5
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.rpush(queue, *[b"m"] * 6)
        middleware = IngestAdmissionMiddleware(lambda request: HttpResponse(status=202))
        refused = middleware(_snapshot_post())
        assert refused.status_code == 503 and b"task backlog" in refused.content and refused["Retry-After"]
        assert middleware(rf.post("/api/v1/heartbeat", b"{}", content_type="application/json")).status_code == 202
        client.delete(queue)
        middleware.depth._at = 0.0  # the cached depth is a second old
        assert middleware(_snapshot_post()).status_code == 202
    finally:
        client.delete(queue)
