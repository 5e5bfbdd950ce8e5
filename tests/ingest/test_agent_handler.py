"""fleet.wsgi routes the agent endpoints through the lean AgentWSGIHandler: same answers, fewer middleware."""
import json

import pytest
from django.core.signals import request_finished, request_started
from django.db import close_old_connections
from django.test import RequestFactory

from agent.snapshot import content_hash
from fleet import wsgi
from fleet.metrics.instruments import REGISTRY

pytestmark = pytest.mark.django_db
ISOLATED = "isolated-nics"


def call(path: str, body: bytes = b"", *, token: str | None = None, method: str = "POST") -> tuple[int, dict, bytes]:
    """The WSGI application as gunicorn calls it: (status code, headers, body)."""
    extra = {"HTTP_AUTHORIZATION": f"Bearer {token}"} if token else {}
    environ = RequestFactory().generic(method, path, body, content_type="application/json", **extra).environ
    seen = {}

    def start_response(status, headers, exc_info=None):
        seen["status"], seen["headers"] = int(status.split()[0]), dict(headers)

    # As django.test.Client does: the handler's signals would close the connection the test transaction holds.
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    try:
        response = wsgi.application(environ, start_response)
        try:
            content = b"".join(response)
        finally:
            getattr(response, "close", lambda: None)()
    finally:
        request_started.connect(close_old_connections)
        request_finished.connect(close_old_connections)
    return seen["status"], seen["headers"], content


def counted(endpoint: str, status: str) -> float:
    return REGISTRY.get_sample_value("fleet_ingest_requests_total", {"endpoint": endpoint, "status": status}) or 0.0


def test_a_heartbeat_through_the_wsgi_entry_point_takes_the_agent_handler_and_is_answered(enrolled, push):
    _, token, doc = enrolled(ISOLATED)
    assert push(token, doc).status_code == 202
    before = counted("heartbeat", "200")
    status, headers, body = call("/api/v1/heartbeat", json.dumps({"content_hash": content_hash(doc), "seq": 2}).encode(), token=token)
    assert status == 200 and json.loads(body)["status"] == "unchanged"
    assert counted("heartbeat", "200") - before == 1, "the metrics middleware still counts agent requests"
    assert "Content-Security-Policy" in headers
    # The dashboard's stack (clickjacking, sessions, CSRF…) is not run for agents.
    assert "X-Frame-Options" not in headers and "Set-Cookie" not in headers


def test_the_agent_handler_refuses_bad_tokens_and_wrong_methods(enrolled):
    _, _, doc = enrolled(ISOLATED)
    for token in (None, "iof_not-a-token"):
        status, _, body = call("/api/v1/snapshots", json.dumps(doc).encode(), token=token)
        assert status == 401 and json.loads(body)["errors"]
    assert call("/api/v1/heartbeat", method="GET")[0] == 405


def test_the_agent_handler_answers_503_with_retry_after_when_no_slot_is_free(enrolled, settings):
    _, token, doc = enrolled(ISOLATED)
    from fleet.ingest.admission import IngestAdmissionMiddleware

    gates = []
    chain = wsgi.agent._middleware_chain
    while chain is not None and not gates:  # find the admission middleware instance in the built chain
        target = getattr(chain, "__wrapped__", chain)
        if isinstance(target, IngestAdmissionMiddleware):
            gates.append(target.gate)
        chain = getattr(target, "get_response", None)
    assert gates, "admission control is in the agent chain"
    gate = gates[0]
    taken = 0
    while gate.try_enter():
        taken += 1
    try:
        status, headers, body = call("/api/v1/snapshots", json.dumps(doc).encode(), token=token)
    finally:
        for _ in range(taken):
            gate.leave()
    assert status == 503 and int(headers["Retry-After"]) >= 1 and json.loads(body)["error"] == "busy"


def test_other_paths_keep_the_dashboards_middleware():
    status, headers, _ = call("/", method="GET")
    assert status in (200, 302) and headers.get("X-Frame-Options")
