"""Limits on every dashboard and read-API request: no NUL reaches a query, statements are time-bounded,
and a refused or timed-out request gets a clear 400/404/503 instead of a 500.

Only views of the dashboard and the read API (URL namespaces in SCOPED_NAMESPACES) are touched:
the agent endpoints, /metrics and the workers keep the server's own statement timeout.
"""
from __future__ import annotations

from django.conf import settings
from django.core.exceptions import BadRequest
from django.db import OperationalError, connection
from django.http import JsonResponse
from django.shortcuts import render

SCOPED_NAMESPACES = {"web", "api", "accounts", "decisions"}
QUERY_CANCELED = "57014"  # PostgreSQL's SQLSTATE for a statement cancelled by statement_timeout


def _scoped(request) -> bool:
    match = getattr(request, "resolver_match", None)
    return bool(match and SCOPED_NAMESPACES & set(match.namespaces))


def _refusal(request, status: int, message: str):
    if request.path.startswith("/api/"):
        return JsonResponse({"detail": message}, status=status)
    return render(request, "web/refused.html", {"status": status, "message": message}, status=status)


def _timed_out(exc: BaseException) -> bool:
    return isinstance(exc, OperationalError) and getattr(exc.__cause__, "sqlstate", None) == QUERY_CANCELED


class DashboardLimitsMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if getattr(request, "_fleet_statement_timeout", False) and connection.connection is not None:
            with connection.cursor() as cursor:
                cursor.execute("RESET statement_timeout")  # the connection goes on to serve agents and workers
        return response

    def process_view(self, request, view_func, view_args, view_kwargs):
        if not _scoped(request):
            return None
        if any("\x00" in str(v) for v in view_kwargs.values()):
            return _refusal(request, 404, "Not found: no stored name or id contains a NUL character.")
        for data in (request.GET, request.POST):
            for key, values in data.lists():
                if "\x00" in key or any("\x00" in v for v in values):
                    return _refusal(request, 400, f"{key.replace(chr(0), '')!r}: a NUL character, which no stored value contains")
        timeout = settings.FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS
        if timeout and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT set_config('statement_timeout', %s, false)", [f"{int(timeout)}ms"])
            request._fleet_statement_timeout = True
        return None

    def process_exception(self, request, exception):
        if not _scoped(request):
            return None
        if isinstance(exception, BadRequest):
            return _refusal(request, 400, str(exception))
        if _timed_out(exception):
            seconds = settings.FLEET_DASHBOARD_STATEMENT_TIMEOUT_MS / 1000
            return _refusal(request, 503, f"This took the database longer than {seconds:g} s and was stopped. "
                                          "Narrow the query (a host, a vendor, a class) and try again.")
        return None
