"""JSON responses safe to embed or sniff: host strings never carry a literal < > or & to the browser."""
import json

from django.core.serializers.json import DjangoJSONEncoder
from django.http import HttpResponse

_ESCAPES = {ord("<"): "\\u003c", ord(">"): "\\u003e", ord("&"): "\\u0026"}


def safe_json_dumps(data) -> str:
    return json.dumps(data, cls=DjangoJSONEncoder, separators=(",", ":")).translate(_ESCAPES)


class SafeJsonResponse(HttpResponse):
    def __init__(self, data, **kwargs):
        kwargs.setdefault("content_type", "application/json")
        super().__init__(content=safe_json_dumps(data), **kwargs)
        self["X-Content-Type-Options"] = "nosniff"
