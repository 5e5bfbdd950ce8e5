"""Login throttling: after `FLEET_LOGIN_MAX_FAILURES` failed logins for one user name from one address
within `FLEET_LOGIN_LOCKOUT_SECONDS`, further attempts from there are refused (429) without checking
the password, until the oldest of those failures leaves the window.

Keyed on name and address together, so a guesser elsewhere does not lock a user out everywhere. The
start of a lockout is audited once (`login_locked`); attempts refused while locked are not, so a
password-guessing loop cannot grow the audit log. Counts live in the database (`LoginFailure`), shared
by every web worker process.
"""
from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

from .context import client_addr
from .models import LoginFailure
from .services import audit_record


def _window() -> timedelta:
    return timedelta(seconds=settings.FLEET_LOGIN_LOCKOUT_SECONDS)


def _key(username: str) -> str:
    return str(username or "").strip().casefold()[:150]


def login_locked_until(*, username: str, remote_addr: str | None, now: datetime | None = None) -> datetime | None:
    """When the lockout of `username` from `remote_addr` ends, or None when it may try now."""
    now = now or timezone.now()
    limit = settings.FLEET_LOGIN_MAX_FAILURES
    recent = list(LoginFailure.objects.filter(username=_key(username), remote_addr=remote_addr, at__gt=now - _window())
                  .order_by("-at").values_list("at", flat=True)[:limit])
    if len(recent) < limit:
        return None
    return recent[-1] + _window()


def login_failure_record(*, username: str, remote_addr: str | None, now: datetime | None = None) -> None:
    """Count one failed login; audit the lockout it starts, if it starts one."""
    now = now or timezone.now()
    LoginFailure.objects.filter(at__lte=now - _window()).delete()  # expired everywhere: the table stays small
    was_locked = login_locked_until(username=username, remote_addr=remote_addr, now=now) is not None
    LoginFailure.objects.create(username=_key(username), remote_addr=remote_addr, at=now)
    until = login_locked_until(username=username, remote_addr=remote_addr, now=now)
    if until is not None and not was_locked:
        audit_record(actor="anonymous", action="login_locked", subject=f"user {_key(username)}", remote_addr=remote_addr,
                     after={"failures": settings.FLEET_LOGIN_MAX_FAILURES, "window_seconds": settings.FLEET_LOGIN_LOCKOUT_SECONDS,
                            "until": until.isoformat()})


def login_failures_clear(*, username: str, remote_addr: str | None) -> None:
    """A successful login from there starts the count again."""
    LoginFailure.objects.filter(username=_key(username), remote_addr=remote_addr).delete()


class LoginThrottleMiddleware:
    """Answers a login POST (the site's and the admin's) with 429 while its name and address are locked out."""

    def __init__(self, get_response):
        self.get_response = get_response
        self._paths: frozenset[str] | None = None

    def _login_paths(self) -> frozenset[str]:
        if self._paths is None:
            self._paths = frozenset({settings.LOGIN_URL, reverse("admin:login")})
        return self._paths

    def __call__(self, request):
        if request.method == "POST" and request.path_info in self._login_paths():
            username = request.POST.get(get_user_model().USERNAME_FIELD, "")
            until = login_locked_until(username=username, remote_addr=client_addr(request))
            if until is not None:
                return self._refused(request, username, until)
        return self.get_response(request)

    def _refused(self, request, username: str, until: datetime):
        seconds = max(1, int((until - timezone.now()).total_seconds()) + 1)
        response = render(request, "accounts/login_locked.html",
                          {"username": username[:150], "minutes": -(-seconds // 60),
                           "failures": settings.FLEET_LOGIN_MAX_FAILURES}, status=429)
        response["Retry-After"] = str(seconds)
        return response
