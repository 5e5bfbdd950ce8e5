"""Who is acting right now, for audit entries written far from the request (services called by views).

Set by `AuditContextMiddleware` for web requests; management commands run with no request,
so entries they cause are attributed to the operating-system user.
"""
import contextvars
import getpass
from dataclasses import dataclass


@dataclass(frozen=True)
class Actor:
    user: object | None
    name: str
    remote_addr: str | None


_current: contextvars.ContextVar[Actor | None] = contextvars.ContextVar("fleet_audit_actor", default=None)


def current_actor() -> Actor:
    actor = _current.get()
    if actor is not None:
        return actor
    try:
        who = getpass.getuser()
    except (KeyError, OSError):
        who = "unknown"
    return Actor(user=None, name=f"system:{who}", remote_addr=None)


def client_addr(request) -> str | None:
    # REMOTE_ADDR is the proxy in production; Django's SECURE_PROXY_SSL_HEADER setup does not rewrite it,
    # and a forwarded-for header is spoofable, so only the socket peer is recorded.
    return request.META.get("REMOTE_ADDR") or None


class AuditContextMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        token = _current.set(_request_actor(request))
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)


def _request_actor(request) -> Actor:
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return Actor(user=user, name=user.get_username(), remote_addr=client_addr(request))
    return Actor(user=None, name="anonymous", remote_addr=client_addr(request))
