"""The agent-facing API: thin adapters from HTTP to `services`; accepted snapshots go to the apply task."""
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .tasks import snapshot_queue_apply
from .tokens import bearer_token


def _body(request: HttpRequest, limit: int) -> bytes | None:
    """The body, read at most limit + 1 bytes far; None when the declared length is already over."""
    try:
        declared = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        declared = 0
    if declared > limit:
        return None
    return request.read(limit + 1)


def _respond(result: services.ReceiveResult) -> JsonResponse:
    return JsonResponse(result.body, status=result.http_status)


def _receive(request: HttpRequest, receive, limit: int, **options) -> JsonResponse:
    token = bearer_token(request.headers.get("Authorization"))
    body = _body(request, limit)
    if body is None:
        # Authenticate first so an anonymous client learns nothing but 401.
        _host, refusal = services.host_authenticate(token)
        if refusal:
            return _respond(refusal)
        return _respond(services.ReceiveResult.problem(413, f"body over {limit} bytes"))
    return _respond(receive(token=token, body=body, content_encoding=request.headers.get("Content-Encoding"),
                            remote_addr=request.META.get("REMOTE_ADDR"), **options))


@csrf_exempt
@require_POST
def snapshot_create(request: HttpRequest) -> JsonResponse:
    return _receive(request, services.snapshot_receive, settings.FLEET_MAX_BODY_BYTES, queue=snapshot_queue_apply)


@csrf_exempt
@require_POST
def heartbeat_create(request: HttpRequest) -> JsonResponse:
    return _receive(request, services.heartbeat_receive, services.HEARTBEAT_MAX_BYTES)
