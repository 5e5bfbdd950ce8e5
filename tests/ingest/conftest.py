import gzip
import json

import pytest

from fleet.ingest.services import host_token_create
from tests.inventory.documents import document_of


@pytest.fixture
def enrolled(capture):
    """enrolled(capture_name) -> (host, token, document with seq 1) for a host enrolled under the capture's own hostname."""

    def make(name: str, *, hostname: str | None = None):
        doc = document_of(capture(name), seq=1, hostname=hostname)
        host, token = host_token_create(hostname=doc["host"]["hostname"])
        return host, token, doc

    return make


@pytest.fixture
def push(client, django_capture_on_commit_callbacks):
    """push(token, payload, *, gzipped=False, path="/api/v1/snapshots") -> response; payload is a dict or raw bytes.

    Commit callbacks run as after a real commit (the apply task is queued, and in-process runs).
    """

    def send(token, payload, *, gzipped=False, path="/api/v1/snapshots", encoding=None):
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        headers = {}
        if gzipped:
            body = gzip.compress(body)
            headers["HTTP_CONTENT_ENCODING"] = "gzip"
        if encoding:
            headers["HTTP_CONTENT_ENCODING"] = encoding
        if token is not None:
            headers["HTTP_AUTHORIZATION"] = f"Bearer {token}"
        with django_capture_on_commit_callbacks(execute=True):
            return client.post(path, body, content_type="application/json", **headers)

    return send


@pytest.fixture
def queued(monkeypatch):
    """The snapshot ids handed to the apply task (the task itself is not run)."""
    from fleet.ingest import tasks

    ids: list[int] = []
    monkeypatch.setattr(tasks.snapshot_apply_task, "apply_async", lambda args, **options: ids.append(args[0]))
    return ids


@pytest.fixture(autouse=True)
def tasks_in_process():
    """Run queued tasks in this process even when the environment names a broker (the e2e tests use real workers)."""
    from fleet.celery import app

    before = app.conf.task_always_eager
    app.conf.task_always_eager = True
    yield
    app.conf.task_always_eager = before
