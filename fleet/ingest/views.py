"""The agent-facing API: thin adapters from HTTP to `services`; accepted snapshots go to the apply task.

The token is checked from the headers before the body is read (issue 10 item 6): a snapshot's token is
looked up first, so a client without one never gets to send megabytes; a heartbeat's token must at
least be well-formed (its one-statement fast path authenticates and records together, and its body is
at most 4 KiB). Bodies are read within FLEET_INGEST_BODY_DEADLINE seconds.
"""
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from . import services
from .bodies import BodyTimeout, BodyTooLarge, BodyUnreadable, body_abandon, body_read
from .tasks import snapshot_queue_apply
from .tokens import bearer_token


def _respond(result: services.ReceiveResult) -> JsonResponse:
    return JsonResponse(result.body, status=result.http_status)


def _refuse_unread(request: HttpRequest, refusal: services.ReceiveResult) -> JsonResponse:
    """A refusal before the body was read: the connection reads no more of it."""
    body_abandon(request)
    return _respond(refusal)


def _body(request: HttpRequest, limit: int) -> tuple[bytes, services.ReceiveResult | None]:
    try:
        return body_read(request, limit, deadline=settings.FLEET_INGEST_BODY_DEADLINE), None
    except BodyTooLarge as exc:
        return b"", services.ReceiveResult.problem(413, str(exc))
    except BodyTimeout as exc:
        return b"", services.ReceiveResult.problem(408, str(exc))
    except BodyUnreadable as exc:
        return b"", services.ReceiveResult.problem(exc.http_status, str(exc))


def _receive(request: HttpRequest, limit: int, receive, **options) -> JsonResponse:
    """Read the body (the caller checked the token), then hand it to `receive`."""
    body, refusal = _body(request, limit)
    if refusal:
        return _respond(refusal)
    return _respond(receive(body=body, content_encoding=request.headers.get("Content-Encoding"),
                            remote_addr=request.META.get("REMOTE_ADDR"), **options))


@csrf_exempt
@require_POST
def snapshot_create(request: HttpRequest) -> JsonResponse:
    host, refusal = services.host_authenticate(bearer_token(request.headers.get("Authorization")))
    if refusal:
        return _refuse_unread(request, refusal)
    return _receive(request, settings.FLEET_MAX_BODY_BYTES, services.snapshot_receive, host=host, queue=snapshot_queue_apply)


@csrf_exempt
@require_POST
def heartbeat_create(request: HttpRequest) -> JsonResponse:
    token = bearer_token(request.headers.get("Authorization"))
    refusal = services.token_malformed(token)
    if refusal:
        return _refuse_unread(request, refusal)
    return _receive(request, services.HEARTBEAT_MAX_BYTES, services.heartbeat_receive, token=token)
