"""/metrics: access control, fleet figures equal to the database, ingest and task counters, queue depth."""
import uuid

import pytest
from django.db.models import Count
from prometheus_client.parser import text_string_to_metric_families

from fleet.inventory.models import Host
from tests.accounts.fleet_data import import_capture

pytestmark = pytest.mark.django_db
TOKEN = "metrics-" + uuid.uuid4().hex


@pytest.fixture
def scrape(client, settings):
    settings.FLEET_METRICS_TOKEN = TOKEN

    def get() -> dict:
        response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
        assert response.status_code == 200
        samples = {}
        for family in text_string_to_metric_families(response.content.decode()):
            for s in family.samples:
                samples[(s.name, tuple(sorted(s.labels.items())))] = s.value
        return samples

    return get


def test_metrics_refuse_anonymous_wrong_token_and_non_staff(client, settings, users):
    settings.FLEET_METRICS_TOKEN = TOKEN
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 401
    client.force_login(users["viewer"])
    assert client.get("/metrics").status_code == 401
    client.force_login(users["operator"])
    assert client.get("/metrics").status_code == 200


def test_without_a_configured_token_no_bearer_gets_in(client, settings):
    settings.FLEET_METRICS_TOKEN = ""
    assert client.get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 401


def test_host_and_violation_figures_equal_the_database(scrape, capture):
    from fleet.policy.models import Violation

    for name in ("shared-bridge-group", "no-iommu"):
        import_capture(capture(name))
    Host.objects.filter(hostname__contains="no-iommu").update(stale=True)
    Host.objects.create(hostname="enrolled-never-reported")
    samples = scrape()
    assert samples[("fleet_hosts", (("state", "stale"),))] == 1
    assert samples[("fleet_hosts", (("state", "fresh"),))] == 1
    assert samples[("fleet_hosts", (("state", "pending"),))] == 1
    expected = {(r["rule"], r["severity"]): r["n"] for r in Violation.objects.filter(status="open", waived_until__isnull=True).values("rule", "severity").annotate(n=Count("id"))}
    got = {(dict(k[1])["rule"], dict(k[1])["severity"]): v for k, v in samples.items() if k[0] == "fleet_violations_open"}
    assert got == expected and expected, "the captures have open violations"


def test_ingest_requests_are_counted_and_timed_by_status(client, scrape):
    before = scrape()
    key = ("fleet_ingest_requests_total", (("endpoint", "snapshots"), ("status", "401")))
    count = ("fleet_ingest_request_seconds_count", (("endpoint", "snapshots"),))
    for _ in range(3):
        assert client.post("/api/v1/snapshots", b"{}", content_type="application/json", HTTP_AUTHORIZATION="Bearer nope").status_code == 401
    after = scrape()
    assert after[key] - before.get(key, 0) == 3
    assert after[count] - before.get(count, 0) == 3


def test_failed_tasks_are_counted(scrape):
    from fleet.celery import app

    @app.task(name=f"tests.boom_{uuid.uuid4().hex[:8]}")
    def boom():
        raise RuntimeError("boom")

    boom.apply()
    samples = scrape()
    assert samples[("fleet_task_failures_total", (("task", boom.name),))] == 1


@pytest.mark.redis
def test_task_failures_of_every_worker_are_counted_in_the_broker(scrape, settings, redis_service):
    import redis

    from fleet.celery import app
    from fleet.metrics.task_failures import REDIS_KEY

    settings.CELERY_BROKER_URL = f"{redis_service}/14"
    name = f"tests.boom_{uuid.uuid4().hex[:8]}"

    @app.task(name=name)
    def boom():
        raise RuntimeError("boom")

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.hincrby(REDIS_KEY, name, 2)  # two failures another worker machine recorded
        boom.apply()
        samples = scrape()
        assert samples[("fleet_task_failures_total", (("task", name),))] == 3
    finally:
        client.hdel(REDIS_KEY, name)


@pytest.mark.redis
def test_queue_depth_is_the_length_of_the_celery_queue(scrape, settings, redis_service):
    import redis

    queue = f"fleet-test-{uuid.uuid4().hex}"
    settings.CELERY_BROKER_URL = f"{redis_service}/15"
    settings.CELERY_TASK_DEFAULT_QUEUE = queue
    client = redis.Redis.from_url(settings.CELERY_BROKER_URL)
    try:
        client.rpush(queue, *[b"m"] * 7)
        samples = scrape()
        assert samples[("fleet_queue_depth", ())] == 7 and samples[("fleet_broker_up", ())] == 1
    finally:
        client.delete(queue)


def test_healthz_answers_anyone_without_revealing_data(client):
    response = client.get("/healthz")
    assert response.status_code == 200 and response.json() == {"database": "ok"}
