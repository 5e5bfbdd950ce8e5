"""Every page and JSON endpoint of the dashboard and the read API, with hostile values in every query
parameter and every path argument: never a 5xx.

The URLs come from the URLconf itself (a new page is covered without touching this file); only the
admin (its own suite) and the agent endpoints (tests/ingest/test_fuzz.py) are left out. The values
stand for what a browser, a script or a pasted link can send: a NUL (PostgreSQL refuses it in any
text), undecodable UTF-8, a lone surrogate's bytes, non-ASCII digits, numbers past 64 bits, SQL and
LIKE metacharacters, a 10 kB string, control and bidi characters.
"""
from __future__ import annotations

import re
import sys
from urllib.parse import quote

import pytest
from django.utils.datastructures import MultiValueDict
from django.contrib.auth import get_user_model
from django.http import QueryDict
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from tests.accounts.fleet_data import a_violation, import_capture, sample_objects

pytestmark = pytest.mark.django_db

SKIP_NAMESPACES = {"admin"}
AGENT_ROUTES = {"api-snapshot-create", "api-heartbeat"}
# Raw, already percent-encoded: they go into the query string and the path as they are.
HOSTILE = ["%00", "%FF%FE", "%ED%A0%80", "%C2%B2", "-1", "99999999999999999999999", "%27%22%3B--%25_%5C",
           "x" * 10_000, "%1B%5B2J%E2%80%AE"]
HOSTILE_PATHS = [*HOSTILE, "a%00b", "1e308", "..%2F..%2F", "%20"]
# A real value for every query parameter the pages document, so the discovery request walks their code paths.
KNOWN = {"q": "class:gpu driver:!vfio-pci", "status": "all", "from": "1", "to": "2", "format": "json",
         "severity": "critical", "sort": "-devices", "view": "groups", "page": "1"}


_OWN_FILES = ("django/utils/datastructures.py", "django/http/request.py")


class _Recorder:
    """The query parameters a view reads, recorded from QueryDict while one request runs."""

    def __init__(self, monkeypatch):
        self.keys: set[str] = set()
        for method in ("get", "getlist", "__getitem__"):
            original = getattr(MultiValueDict, method)
            monkeypatch.setattr(MultiValueDict, method, self._wrap(original))

    def _wrap(self, original):
        def recording(mdict, key, *args, **kwargs):
            # Reads by the dicts' own methods (items(), copy(), urlencode()) touch every key: not the view's.
            caller = sys._getframe(1).f_code.co_filename
            if isinstance(mdict, QueryDict) and isinstance(key, str) and not caller.endswith(_OWN_FILES):
                self.keys.add(key)
            return original(mdict, key, *args, **kwargs)
        return recording


def routes(patterns=None, namespace=""):
    """(reverse name, path argument names) of every named URL outside the admin and the agent endpoints."""
    for p in get_resolver().url_patterns if patterns is None else patterns:
        if isinstance(p, URLResolver):
            ns = p.namespace or ""
            if ns in SKIP_NAMESPACES:
                continue
            yield from routes(p.url_patterns, f"{namespace}{ns}:" if ns else namespace)
        elif isinstance(p, URLPattern) and p.name and p.name not in AGENT_ROUTES:
            yield f"{namespace}{p.name}", tuple(p.pattern.regex.groupindex)


@pytest.fixture
def site(client, capture):
    host = import_capture(capture("shared-bridge-group"))
    objects = sample_objects(host)
    a_violation(host, rule="pasid-quota", severity="medium", subject_kind="host", subject_id=host.hostname)
    user = get_user_model().objects.create_superuser("fuzz-admin", password="pw")
    client.force_login(user)
    client.raise_request_exception = False  # collect every 5xx instead of stopping at the first
    return client, host, objects


def _sample_kwargs(name: str, args: tuple[str, ...], host, objects) -> dict:
    kind = name.split(":")[-1].split("-")[0]
    out = {}
    for arg in args:
        if arg == "hostname":
            out[arg] = host.hostname
        elif arg == "format":
            out[arg] = "json"
        elif arg == "pk":
            out[arg] = (objects.get(kind) or objects["violation"]).pk
        else:
            raise AssertionError(f"{name}: no sample value for path argument {arg!r}; add one here")
    return out


def _urls(host, objects):
    """(name, url with real arguments, [url with one path argument replaced by each hostile value])."""
    seen = set()
    # DRF registers each route twice, with and without a format suffix (".json"): the plain one, once.
    for name, args in sorted(set(routes()), key=lambda r: (r[0], len(r[1]))):
        if name in seen:
            continue
        seen.add(name)
        kwargs = _sample_kwargs(name, args, host, objects)
        url = reverse(name, kwargs=kwargs)
        broken = []
        for arg in args:
            real = quote(str(kwargs[arg]), safe="")
            for value in HOSTILE_PATHS:
                broken.append(url.replace(real, value, 1))
        yield name, url, broken


def test_the_url_walk_finds_the_dashboard_and_the_read_api():
    names = {name for name, _ in routes()}
    assert {"web:fleet", "web:host-detail", "web:search", "web:violations", "api:host-list", "api:host-detail",
            "api:holder-list", "accounts:audit"} <= names
    assert not names & {"api-snapshot-create", "api-heartbeat"}


def _parameters_read(client, method, url, monkeypatch) -> set[str]:
    with monkeypatch.context() as m:
        recorder = _Recorder(m)
        method(url, KNOWN)
    return recorder.keys - {"csrfmiddlewaretoken"}


def test_no_page_or_endpoint_answers_5xx_to_hostile_parameters(site, monkeypatch):
    client, host, objects = site
    failures, covered = [], {}
    user = get_user_model().objects.get(username="fuzz-admin")
    for name, url, broken in _urls(host, objects):
        client.force_login(user)  # logout is one of the routes
        method = client.post if re.search(r"acknowledge|waive|logout", name) else client.get
        for u in broken:
            status = method(u).status_code
            if status >= 500:
                failures.append((status, u[:120]))
        params = _parameters_read(client, method, url, monkeypatch)
        covered[name] = params
        for param in sorted(params):
            for value in HOSTILE:
                if method is client.post:  # a form's fields as the body, the way a browser sends them
                    status = method(url, f"{param}={value}", content_type="application/x-www-form-urlencoded").status_code
                else:
                    status = method(f"{url}?{param}={value}").status_code
                if status >= 500:
                    failures.append((status, f"{url} {param}={value[:60]}"))
    assert not failures, "\n".join(f"{s} {u}" for s, u in failures)
    # The discovery saw the parameters docs/endpoints.md lists (a view that stops reading them would fuzz nothing).
    assert {"q", "page", "sort", "severity", "label"} <= covered["web:fleet"]
    assert {"q", "page"} <= covered["web:search"]
    assert {"host", "status", "page"} <= covered["web:violations"]
    assert {"host", "page", "page_size", "ordering", "driver", "vendor_device"} <= covered["api:device-list"]


@pytest.mark.parametrize("path", ["/%00", "/%00/", "/nowhere%00/", "/hosts/a%00b/history/", "/admin/%00/", "/admin/inventory/host/%00/change/",
                                  "/admin/?q=%00", "/admin/inventory/host/?q=%00", "/admin/inventory/host/?o=%00", "/static/%00",
                                  "/login/?next=%00", "/metrics?x=%00", "/healthz%00"])
def test_a_nul_anywhere_else_in_the_address_is_never_a_5xx(site, path):
    """Outside the URLconf walk above: addresses matching no pattern, the admin, static files, the login's redirect.
    A NUL in the path is a 4xx; one in a parameter the page does not read may be ignored (200)."""
    client, _host, _objects = site
    status = client.get(path).status_code
    assert status < 500, f"{path}: {status}"
    if "?" not in path:
        assert 400 <= status < 500 or status in (301, 302), f"{path}: {status}"
