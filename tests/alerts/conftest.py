"""A local HTTP receiver for webhook tests: a thread answering each POST with the next scripted status."""
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet.alerts.models import Endpoint
from tests.accounts.people import users  # noqa: F401  (one user per role)

SECRET = "s3cret-for-the-receiver-only"


@dataclass
class Received:
    path: str
    headers: dict
    body: bytes

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    url: str
    statuses: list = field(default_factory=list)  # answered in order; once used up, `then`
    then: int = 200
    requests: list = field(default_factory=list)


@pytest.fixture
def receiver():
    state = Receiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            state.requests.append(Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            status = state.statuses.pop(0) if state.statuses else state.then
            self.send_response(status)
            if status in (301, 302, 307):
                self.send_header("Location", "http://127.0.0.1:9/elsewhere")
            self.send_header("Content-Length", "2")
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/api/v2/alerts"
    yield state
    server.shutdown()
    server.server_close()
    thread.join(5)


@pytest.fixture
def endpoint(receiver, db):
    def make(kind: str = "generic", **extra) -> Endpoint:
        fields = {"name": f"{kind}-{Endpoint.objects.count()}", "url": receiver.url, "kind": kind, "secret": SECRET, **extra}
        return Endpoint.objects.create(**fields)

    return make
