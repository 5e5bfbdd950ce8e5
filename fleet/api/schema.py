"""OpenAPI post-processing: document the error answers every read operation can give.

drf-spectacular documents only the success body; a client (and schemathesis) must also know that
bad filters are a 400, a missing/bad token a 401, a role without read rights a 403 and an unknown
id or page a 404, all as DRF's error objects.
"""

_ERROR = {
    "type": "object",
    "description": "DRF error: `detail` for authentication, permission and not-found errors; one list of messages per field for bad filters.",
    "additionalProperties": True,
    "properties": {"detail": {"type": "string"}},
}
_ANSWERS = {
    "400": "A filter or paging parameter is not valid.",
    "401": "No valid session or API token.",
    "403": "The account has no role that may read the fleet, or a read-only token was used to write.",
    "404": "No such object, or a page past the end.",
}


def add_error_responses(result, generator, request, public):
    result.setdefault("components", {}).setdefault("schemas", {})["Error"] = _ERROR
    for path in result.get("paths", {}).values():
        for operation in path.values():
            responses = operation.setdefault("responses", {})
            for status, description in _ANSWERS.items():
                responses.setdefault(status, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                })
    return result
