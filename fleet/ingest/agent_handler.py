"""A WSGI handler for the two agent endpoints with a short middleware list.

Agents send a heartbeat a minute per host; with the dashboard's whole stack (sessions, auth,
CSRF, messages, audit context, whitenoise…) each one paid ~2 ms of middleware for nothing it
uses. `fleet.wsgi` routes the agent paths here; everything else keeps settings.MIDDLEWARE.
The Django test client uses the full stack, so behaviour must not depend on which one ran:
the views authenticate by token themselves and the kept middleware are the ones that answer
or annotate agent requests (TLS redirect/HSTS, CSP header, request metrics, admission 503).
"""
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, MiddlewareNotUsed
from django.core.handlers.exception import convert_exception_to_response
from django.core.handlers.wsgi import WSGIHandler
from django.utils.module_loading import import_string

from .admission import GUARDED_PATHS

AGENT_PATHS = frozenset(GUARDED_PATHS)

# Same relative order as in settings.MIDDLEWARE; `AGENT_MIDDLEWARE` in settings overrides it.
DEFAULT_AGENT_MIDDLEWARE = (
    "django.middleware.security.SecurityMiddleware",
    "fleet.security.csp.ContentSecurityPolicyMiddleware",
    "fleet.metrics.middleware.IngestMetricsMiddleware",
    "fleet.ingest.admission.IngestAdmissionMiddleware",
)


def is_agent_path(path_info: str) -> bool:
    return path_info.rstrip("/") in AGENT_PATHS


class AgentWSGIHandler(WSGIHandler):
    """WSGIHandler whose chain is built from AGENT_MIDDLEWARE (sync only: gunicorn's gthread workers)."""

    def load_middleware(self, is_async=False):
        if is_async:
            raise ImproperlyConfigured("AgentWSGIHandler is for WSGI (sync) only")
        self._view_middleware = []
        self._template_response_middleware = []
        self._exception_middleware = []
        handler = convert_exception_to_response(self._get_response)
        for middleware_path in reversed(getattr(settings, "AGENT_MIDDLEWARE", DEFAULT_AGENT_MIDDLEWARE)):
            factory = import_string(middleware_path)
            try:
                instance = factory(handler)
            except MiddlewareNotUsed:
                continue
            if instance is None:
                raise ImproperlyConfigured(f"Middleware factory {middleware_path} returned None.")
            if hasattr(instance, "process_view"):
                self._view_middleware.insert(0, instance.process_view)
            if hasattr(instance, "process_template_response"):
                self._template_response_middleware.append(instance.process_template_response)
            if hasattr(instance, "process_exception"):
                self._exception_middleware.append(instance.process_exception)
            handler = convert_exception_to_response(instance)
        self._middleware_chain = handler
