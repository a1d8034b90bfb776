"""Errors both ways: Tollway's ApiError as Anthropic's error shape, and an
Anthropic upstream's error (an answer or a stream's ``error`` event) as the
ApiError any client gets."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import ApiError, upstream_answered, upstream_error

Json = dict[str, Any]

# Anthropic's error type for each status it documents.
ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "api_error",
    529: "overloaded_error",
}
# The status each error type stands for, for errors that come without one
# (a stream's error event arrives after a 200).
STATUSES = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}


def error_type(status: int) -> str:
    return ERROR_TYPES.get(status) or ("invalid_request_error" if status < 500 else "api_error")


def error_payload(error: ApiError) -> Json:
    return {"type": "error", "error": {"type": error_type(error.status), "message": error.message}}


def error_body(error: ApiError) -> bytes:
    body = error_payload(error)
    request_id = error.headers.get("x-request-id")
    if request_id:
        body["request_id"] = request_id
    return orjson.dumps(body)


def failure(status: int, data: bytes) -> ApiError:
    """An upstream's error answer (its status and body) as the client's error."""
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        parsed = None
    kind, message = _described(parsed)
    return client_error(status, message or f"The upstream answered HTTP {status}.", kind)


def stream_failure(event: Any) -> ApiError:
    """A stream's ``error`` event as the client's error."""
    kind, message = _described(event)
    status = STATUSES.get(kind or "", 500)
    return client_error(status, message or "The upstream broke off its stream.", kind)


def _described(parsed: Any) -> tuple[str | None, str | None]:
    """The error's type and message from ``{"type": "error", "error": {...}}``."""
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if not isinstance(error, dict):
        return None, None
    kind, message = error.get("type"), error.get("message")
    kind = kind if isinstance(kind, str) else None
    return kind, (message if isinstance(message, str) else None)


def client_error(status: int, message: str, kind: str | None = None) -> ApiError:
    if status == 529 or kind == "overloaded_error":
        return upstream_error(message, 503, "upstream_overloaded")
    return upstream_answered(status, message)
