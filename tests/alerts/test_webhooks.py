"""Outbound webhooks against a local receiver: sent after commit only, signed, payload fields, retries, giving up."""
import hashlib
import hmac
from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from fleet.accounts.models import AuditEntry
from fleet.alerts import delivery
from fleet.alerts.models import Delivery, Endpoint
from fleet.alerts.tasks import alert_deliver_task, alert_requeue_task
from fleet.inventory.models import Host
from fleet.policy.models import Violation
from fleet.policy.services import violation_waive, waivers_expire
from fleet.policy.services.sync import SyncPlan
from tests.accounts.fleet_data import a_violation, import_capture

from .conftest import SECRET

pytestmark = pytest.mark.django_db


def signed_correctly(request) -> bool:
    """The receiver's check, written from docs/deploy.md: HMAC-SHA256 over "<timestamp>." + body."""
    timestamp = request.headers["x-fleet-timestamp"]
    expected = "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + request.body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, request.headers["x-fleet-signature"])


def test_violations_opened_by_an_ingest_are_posted_after_commit_only(receiver, endpoint, capture, django_capture_on_commit_callbacks):
    endpoint("generic")
    with django_capture_on_commit_callbacks(execute=False) as callbacks:
        host = import_capture(capture("shared-bridge-group"))
    opened = Violation.objects.filter(host=host, status="open")
    assert opened.exists(), "the capture has open violations"
    assert receiver.requests == [], "nothing leaves inside the ingest transaction"
    assert Delivery.objects.get().status == "pending"
    for callback in callbacks:
        callback()
    [request] = receiver.requests
    assert signed_correctly(request)
    assert request.headers["x-fleet-event"] == "violation.opened"
    assert request.headers["content-type"] == "application/json"
    body = request.json
    assert body["event"] == "violation.opened"
    got = {(v["host"], v["rule"], v["severity"], v["subject_kind"], v["subject_id"], v["message"], v["status"]) for v in body["violations"]}
    assert got == {(host.hostname, v.rule, v.severity, v.subject_kind, v.subject_id, v.message, "open") for v in opened}
    assert all(v["url"] == f"/hosts/{host.hostname}/" for v in body["violations"])
    d = Delivery.objects.get()
    assert (d.status, d.attempts, d.response_status, d.violation_count) == ("delivered", 1, 200, opened.count())


def test_alertmanager_payload_fires_then_resolves_the_same_alert(receiver, endpoint, settings, django_capture_on_commit_callbacks):
    settings.FLEET_PUBLIC_URL = "https://fleet.example.net/"
    endpoint("alertmanager")
    host = Host.objects.create(hostname="gpu-07", last_seen=timezone.now())
    now = timezone.now()
    v = a_violation(host, rule="group-mixed-ownership", severity="critical", subject_kind="group", subject_id="5")
    with django_capture_on_commit_callbacks(execute=True):
        SyncPlan.between({}, [], now).write()  # nothing changed: nothing is sent
        assert receiver.requests == []
        SyncPlan.between({v.fingerprint: v}, [], now).write()  # the rule no longer fires: resolved
    [request] = receiver.requests
    assert signed_correctly(request) and request.path == "/api/v2/alerts"
    [alert] = request.json
    assert alert["labels"] == {"alertname": "IommuFleetViolation", "host": "gpu-07", "rule": "group-mixed-ownership",
                               "severity": "critical", "subject_kind": "group", "subject_id": "5"}
    assert alert["annotations"]["summary"] == v.message and alert["annotations"]["event"] == "violation.resolved"
    assert alert["endsAt"] == now.isoformat().replace("+00:00", "Z"), "a resolution ends the alert now"
    assert alert["generatorURL"] == "https://fleet.example.net/hosts/gpu-07/"
    assert Violation.objects.get(pk=v.pk).status == "resolved"


def test_an_expired_waiver_posts_the_violation_again_unless_another_waiver_covers_it(receiver, endpoint, django_capture_on_commit_callbacks):
    endpoint("alertmanager")
    host = Host.objects.create(hostname="edge-1")
    start = timezone.now()
    lone = a_violation(host, subject_id="1")
    covered = a_violation(host, subject_id="2")
    violation_waive(violation=lone, justification="maintenance", expires_at=start + timedelta(hours=1), by="rev", now=start)
    violation_waive(violation=covered, justification="short", expires_at=start + timedelta(hours=1), by="rev", now=start)
    violation_waive(violation=covered, justification="long", expires_at=start + timedelta(days=3), by="rev", now=start)
    later = start + timedelta(hours=2)
    with django_capture_on_commit_callbacks(execute=True):
        assert waivers_expire(now=later) == 2
    [request] = receiver.requests
    [alert] = request.json
    assert alert["labels"]["subject_id"] == "1" and alert["annotations"]["event"] == "violation.waiver_expired"
    assert alert["endsAt"] > later.isoformat(), "visible again: the alert fires"


def _queued(endpoint_obj, now=None) -> Delivery:
    return Delivery.objects.create(endpoint=endpoint_obj, event="violation.opened", violation_count=1,
                                   payload={"event": "violation.opened", "violations": [{"id": 1}]}, created_at=now or timezone.now())


def test_a_500_is_retried_until_the_receiver_accepts(receiver, endpoint):
    receiver.statuses = [500, 500]
    d = _queued(endpoint())
    alert_deliver_task.apply(args=[d.pk])
    assert len(receiver.requests) == 3
    assert len({r.body for r in receiver.requests}) == 1, "every attempt posts the same bytes"
    assert all(signed_correctly(r) and r.headers["x-fleet-delivery"] == str(d.pk) for r in receiver.requests)
    d.refresh_from_db()
    assert (d.status, d.attempts, d.response_status, d.error, d.next_attempt_at) == ("delivered", 3, 200, "", None)


def test_delivery_gives_up_after_the_configured_attempts(receiver, endpoint, settings):
    settings.FLEET_ALERT_MAX_ATTEMPTS = 4
    receiver.then = 500
    d = _queued(endpoint())
    alert_deliver_task.apply(args=[d.pk])
    assert len(receiver.requests) == 4
    d.refresh_from_db()
    assert (d.status, d.attempts, d.response_status) == ("failed", 4, 500) and d.error.startswith("HTTP 500")
    alert_deliver_task.apply(args=[d.pk])
    assert len(receiver.requests) == 4, "a delivery given up is not sent again"


def test_the_backoff_doubles_and_is_capped(receiver, endpoint, settings):
    settings.FLEET_ALERT_RETRY_BASE, settings.FLEET_ALERT_RETRY_MAX, settings.FLEET_ALERT_MAX_ATTEMPTS = 30, 100, 10
    receiver.then = 503
    d = _queued(endpoint())
    now = timezone.now()
    waits = []
    for _ in range(4):
        attempt = delivery.delivery_attempt(delivery_id=d.pk, now=now)
        d.refresh_from_db()
        assert d.next_attempt_at == now + timedelta(seconds=attempt.retry_in)
        waits.append(attempt.retry_in)
    assert waits == [30, 60, 100, 100]


def test_redirects_and_unreachable_receivers_are_failures_not_followed(receiver, endpoint):
    receiver.statuses = [302]
    d = _queued(endpoint())
    assert delivery.delivery_attempt(delivery_id=d.pk).retry_in
    d.refresh_from_db()
    assert d.response_status == 302 and d.status == "pending" and len(receiver.requests) == 1
    gone = _queued(endpoint(url="http://127.0.0.1:9/nothing-listens"))
    assert delivery.delivery_attempt(delivery_id=gone.pk).retry_in
    gone.refresh_from_db()
    assert gone.response_status is None and gone.error


def test_disabled_endpoints_get_nothing(receiver, endpoint, django_capture_on_commit_callbacks):
    endpoint(enabled=False)
    v = a_violation(Host.objects.create(hostname="h"))
    with django_capture_on_commit_callbacks(execute=True):
        SyncPlan.between({v.fingerprint: v}, [], timezone.now()).write()
    assert receiver.requests == [] and not Delivery.objects.exists()


def test_the_delivery_log_is_for_staff_and_escapes_what_receivers_answer(client, users, endpoint):
    d = _queued(endpoint())
    Delivery.objects.filter(pk=d.pk).update(error="HTTP 500: <script>alert(1)</script>", status="failed")
    client.force_login(users["operator"])
    page = client.get(reverse("admin:alerts_delivery_changelist"))
    assert page.status_code == 200 and b"violation.opened" in page.content
    assert b"<script>alert(1)" not in page.content and b"&lt;script&gt;" in page.content
    client.force_login(users["viewer"])
    assert client.get(reverse("admin:alerts_delivery_changelist")).status_code == 302


def test_an_endpoint_added_in_the_admin_keeps_its_secret_out_of_pages_and_audit(client, users, receiver):
    client.force_login(users["operator"])
    secret = "a-long-enough-secret-" + "x" * 8
    form = {"name": "am", "url": receiver.url, "kind": "alertmanager", "secret": secret, "enabled": "on"}
    assert client.post(reverse("admin:alerts_endpoint_add"), form).status_code == 302
    am = Endpoint.objects.get(name="am")
    assert am.secret == secret
    page = client.get(reverse("admin:alerts_endpoint_change", args=[am.pk]))
    assert secret.encode() not in page.content
    assert client.post(reverse("admin:alerts_endpoint_change", args=[am.pk]), {**form, "secret": "", "enabled": ""}).status_code == 302
    am.refresh_from_db()
    assert am.secret == secret and not am.enabled, "an empty secret field keeps the secret"
    assert not any(secret in str(e.before) + str(e.after) for e in AuditEntry.objects.all())
    short = client.post(reverse("admin:alerts_endpoint_add"), {**form, "name": "b", "secret": "short"})
    assert short.status_code == 200 and b"at least 16 characters" in short.content


def test_the_requeue_tick_sends_deliveries_whose_task_was_lost_and_only_those(receiver, endpoint, settings):
    settings.FLEET_ALERT_REQUEUE_AFTER = 600
    now = timezone.now()
    target = endpoint()
    lost = _queued(target, now=now - timedelta(minutes=20))  # never attempted: its task never ran
    fresh = _queued(target, now=now)  # its task is surely still on its way
    waiting = _queued(target, now=now - timedelta(hours=1))
    Delivery.objects.filter(pk=waiting.pk).update(attempts=2, next_attempt_at=now + timedelta(minutes=5))  # a retry scheduled
    alert_requeue_task.apply()
    assert [r.headers["x-fleet-delivery"] for r in receiver.requests] == [str(lost.pk)]
    assert Delivery.objects.get(pk=lost.pk).status == "delivered"
    assert {Delivery.objects.get(pk=d.pk).status for d in (fresh, waiting)} == {"pending"}


def test_a_broker_that_refuses_the_task_fails_nothing_already_committed(endpoint, monkeypatch, django_capture_on_commit_callbacks):
    def broker_down(*args, **options):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(alert_deliver_task, "apply_async", broker_down)
    endpoint()
    endpoint()
    v = a_violation(Host.objects.create(hostname="h"))
    with django_capture_on_commit_callbacks(execute=True):
        SyncPlan.between({v.fingerprint: v}, [], timezone.now()).write()
    assert Violation.objects.get(pk=v.pk).status == "resolved"
    assert list(Delivery.objects.values_list("status", flat=True)) == ["pending", "pending"], "left for the requeue tick"
