"""Errors as Gemini clients read them, and what a Gemini upstream's mean."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import ApiError, upstream_answered, upstream_error
from tollway.protocols.gemini.fields import Json

# Google's RPC status for each HTTP status the gateway answers with.
RPC_STATUS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    402: "FAILED_PRECONDITION",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    408: "DEADLINE_EXCEEDED",
    409: "ABORTED",
    413: "INVALID_ARGUMENT",
    422: "INVALID_ARGUMENT",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}


def error_object(error: ApiError) -> Json:
    default = "INTERNAL" if error.status >= 500 else "FAILED_PRECONDITION"
    status = RPC_STATUS.get(error.status, default)
    return {"error": {"code": error.status, "message": error.message, "status": status}}


def error_body(error: ApiError) -> bytes:
    return orjson.dumps(error_object(error))


def failure(status: int, data: bytes) -> ApiError:
    """What a Gemini upstream's error answer means to any client."""
    message = error_message(data) or f"The upstream answered HTTP {status}."
    if status == 503:
        return upstream_error(message, 503, "upstream_overloaded")
    return upstream_answered(status, message)


def error_message(data: bytes) -> str | None:
    """``error.message`` of ``{"error": {...}}``, which a stream without
    ``alt=sse`` wraps in a list."""
    try:
        parsed: Any = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    if isinstance(parsed, list) and parsed:
        parsed = parsed[0]
    error = parsed.get("error") if isinstance(parsed, dict) else None
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) and message else None
