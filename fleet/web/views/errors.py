"""The error pages (fleet/urls.py's handler400/403/404/500): the dashboard's look and navigation for a
person, JSON for a program (the APIs, /metrics, or a client that asks only for JSON)."""
from django.http import HttpResponse, JsonResponse
from django.template import loader

TEMPLATE = "web/refused.html"  # one page for every refusal, the middleware's too
_MESSAGES = {
    400: "The request could not be understood.",
    403: "Your account's role does not allow this. An administrator can give you the role it needs.",
    404: "Nothing is stored at this address: the host may have been renamed or retired, or the link is mistyped.",
    500: "The error has been logged for the administrators. Try again in a moment, or start again from the fleet overview.",
}
_JSON_PREFIXES = ("/api/", "/metrics")


def wants_json(request) -> bool:
    if request.path.startswith(_JSON_PREFIXES):
        return True
    accept = request.headers.get("Accept", "")
    return "application/json" in accept and "text/html" not in accept


def _answer(request, status: int, *, with_request: bool = True) -> HttpResponse:
    message = _MESSAGES[status]
    if wants_json(request):
        return JsonResponse({"detail": message, "status": status}, status=status)
    # A 500 renders without the request's context processors: they may need the database that just failed.
    context = {"status": status, "message": message, "path": request.path}
    html = loader.render_to_string(TEMPLATE, context, request=request if with_request else None)
    return HttpResponse(html, status=status)


def bad_request(request, exception=None):
    return _answer(request, 400)


def permission_denied(request, exception=None):
    return _answer(request, 403)


def page_not_found(request, exception=None):
    return _answer(request, 404)


def server_error(request):
    return _answer(request, 500, with_request=False)
