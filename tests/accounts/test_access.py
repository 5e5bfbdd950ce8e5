"""Per-role access to every URL the project serves, found by walking the URL resolver.

New pages are covered without touching this file: a page is a read page unless its name says it
changes something (WRITE_WORDS), and every read page must refuse anonymous users and users
without a role, and answer every role.
"""
import pytest
from django.contrib import admin
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from fleet.accounts.roles import ROLES
from tests.accounts.fleet_data import import_capture, sample_objects

pytestmark = pytest.mark.django_db

WRITE_WORDS = ("acknowledge", "waive", "intent", "token", "edit", "delete", "create", "revoke", "bulk", "extend", "accept")
AGENT_ROUTES = {"api-snapshot-create", "api-heartbeat"}  # host tokens only; no user may push
# A user API token with a scope only (no session): the pre-flight of VM-start hooks, tested in tests/decisions/test_api.py.
AGENT_ROUTES |= {"decisions:api-preflight"}
PUBLIC_ROUTES = {"web:login", "web:logout", "metrics:healthz"}
STAFF_ONLY = {"metrics:metrics"}
AUDIT_READERS = {"operator", "security-reviewer", "admin"}
WRITERS = {  # route word -> roles allowed to use it
    "acknowledge": {"security-reviewer", "admin"},
    "waive": {"security-reviewer", "admin"},
    "bulk": {"security-reviewer", "admin"},  # acknowledge or waive, ticked violations at once
    "intent": {"security-reviewer", "admin"},
    "token": {"operator", "admin"},
    "accept": {"operator", "security-reviewer", "admin"},  # a host's groups as its baseline
}


def _routes(resolver=None, namespace=""):
    resolver = resolver or get_resolver()
    for entry in resolver.url_patterns:
        if isinstance(entry, URLResolver):
            if entry.app_name == "admin":
                continue  # the admin is checked model by model below
            ns = entry.namespace or ""
            yield from _routes(entry, f"{namespace}{ns}:" if ns else namespace)
        elif isinstance(entry, URLPattern) and entry.name:
            yield f"{namespace}{entry.name}", entry


def _kwargs(name, pattern, objects):
    wanted = set(pattern.pattern.regex.groupindex)
    if "format" in wanted:
        return None  # DRF's .json/.api suffix twins of routes already covered
    out = {}
    for key in wanted:
        if key == "hostname":
            out[key] = objects["host"].hostname
        elif key in ("pk", "id"):
            kind = next((k for k in ("address-space", "device", "group", "holder", "change", "violation") if k in name), "violation")
            out[key] = objects[kind].pk
        else:
            raise AssertionError(f"route {name} takes {key!r}: teach the access test a sample value for it")
    return out


def _all_urls(objects):
    seen = set()
    for name, pattern in _routes():
        kwargs = _kwargs(name, pattern, objects)
        if kwargs is None or name in seen:
            continue
        seen.add(name)
        yield name, reverse(name, kwargs=kwargs)


def _is_write(name):
    return any(word in name for word in WRITE_WORDS) and name not in AGENT_ROUTES


@pytest.fixture
def fleet(capture, users):
    return sample_objects(import_capture(capture("shared-bridge-group")))


def test_the_resolver_walk_finds_the_pages_of_every_area(fleet):
    names = {name for name, _ in _all_urls(fleet)}
    assert {"api:host-list", "api:device-detail", "api:schema", "accounts:audit", "metrics:metrics"} <= names


def test_anonymous_users_reach_nothing_but_the_login_page(client, fleet):
    for name, url in _all_urls(fleet):
        if name in PUBLIC_ROUTES:
            continue
        response = client.post(url) if _is_write(name) or name in AGENT_ROUTES else client.get(url)
        assert response.status_code in (302, 401, 403), (name, url, response.status_code)
        if response.status_code == 302:
            assert response["Location"].startswith("/accounts/login/"), (name, response["Location"])


def test_a_user_without_a_role_reads_nothing(client, fleet, users):
    client.force_login(users["no-role"])
    for name, url in _all_urls(fleet):
        if name in PUBLIC_ROUTES:
            continue
        response = client.post(url) if _is_write(name) or name in AGENT_ROUTES else client.get(url)
        assert response.status_code in (401, 403), (name, url, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_every_role_reads_every_read_page(client, fleet, users, role):
    client.force_login(users[role])
    for name, url in _all_urls(fleet):
        if _is_write(name) or name in AGENT_ROUTES or name in PUBLIC_ROUTES:
            continue
        response = client.get(url)
        if name == "accounts:audit":
            expected = 200 if role in AUDIT_READERS else 403
        elif name in STAFF_ONLY:
            expected = 200 if users[role].is_staff else 401
        else:
            expected = 200
        assert response.status_code == expected, (role, name, url, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_write_endpoints_refuse_roles_not_allowed_to_write(client, fleet, users, role):
    client.force_login(users[role])
    writes = [(n, u) for n, u in _all_urls(fleet) if _is_write(n)]
    assert writes, "no write endpoint found: the waive/acknowledge pages should be there"
    for name, url in writes:
        allowed = next((roles for word, roles in WRITERS.items() if word in name), {"admin"})
        response = client.post(url, {"justification": "", "expires_at": ""})
        if role in allowed:
            assert response.status_code not in (401, 403) and response.status_code < 500, (role, name, response.status_code)
        else:
            assert response.status_code == 403, (role, name, url, response.status_code)


@pytest.mark.parametrize("role", ROLES)
def test_no_user_may_push_snapshots_with_a_session(client, fleet, users, role):
    client.force_login(users[role])
    for name in AGENT_ROUTES:
        assert client.post(reverse(name), b"{}", content_type="application/json").status_code == 401


@pytest.mark.parametrize("role", [*ROLES, "no-role"])
def test_the_admin_shows_each_model_only_to_roles_holding_its_permissions(client, users, role):
    user = users[role]
    client.force_login(user)
    for model in admin.site._registry:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
        response = client.get(url)
        if not user.is_staff:
            assert response.status_code == 302 and "/admin/login/" in response["Location"], (role, url)
            continue
        label = f"{model._meta.app_label}.%s_{model._meta.model_name}"
        may_see = user.has_perm(label % "view") or user.has_perm(label % "change")
        assert response.status_code == (200 if may_see else 403), (role, url, response.status_code)


def test_operators_cannot_edit_intent_in_the_admin_and_reviewers_cannot_issue_tokens(client, users):
    client.force_login(users["operator"])
    assert client.get(reverse("admin:policy_tenant_add")).status_code == 403
    assert client.get(reverse("admin:ingest_hosttoken_changelist")).status_code == 200
    client.force_login(users["security-reviewer"])
    assert client.get(reverse("admin:ingest_hosttoken_changelist")).status_code == 403
    assert client.get(reverse("admin:policy_tenant_add")).status_code == 200
