"""Errors in OpenAI's shape: {"error": {"message", "type", "param", "code"}}.

Everything a client can get wrong or an upstream can fail at becomes an
ApiError with its status; the app turns it into a JSON response. A 500 is a
bug, never a way of answering a client.
"""

from __future__ import annotations

from datetime import datetime

import orjson
from starlette.responses import Response


class ApiError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str,
        type: str = "invalid_request_error",
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.code = code
        self.type = type
        self.param = param
        self.headers = headers or {}

    def body(self) -> bytes:
        error = {"message": self.message, "type": self.type, "param": self.param, "code": self.code}
        return orjson.dumps({"error": error})

    def response(self) -> Response:
        return Response(self.body(), self.status, self.headers, media_type="application/json")


def bad_request(message: str, param: str | None = None, code: str = "invalid_request") -> ApiError:
    return ApiError(400, message, code, param=param)


def invalid_api_key(message: str = "Incorrect API key provided.") -> ApiError:
    return ApiError(401, message, "invalid_api_key", type="authentication_error")


def not_found(message: str, code: str = "not_found", param: str | None = None) -> ApiError:
    return ApiError(404, message, code, param=param)


def model_not_found(name: str, hint: str = "") -> ApiError:
    message = f"The model '{name}' does not exist or is not served here."
    return ApiError(404, f"{message} {hint}".strip(), "model_not_found", param="model")


def forbidden(message: str, code: str) -> ApiError:
    return ApiError(403, message, code, type="permission_error")


def insufficient_quota(message: str) -> ApiError:
    return ApiError(402, message, "insufficient_quota", type="insufficient_quota")


def budget_exceeded(message: str, period: str, resets: datetime, now: datetime) -> ApiError:
    """A budget's 402, saying when the period's budget starts again."""
    return ApiError(
        402,
        f"{message} The budget is per {period} (UTC) and starts again at "
        f"{resets.strftime('%Y-%m-%dT%H:%M:%SZ')}.",
        "budget_exceeded",
        type="insufficient_quota",
        headers={"retry-after": str(max(int((resets - now).total_seconds()), 1))},
    )


def database_unavailable() -> ApiError:
    """The ledger's database could not be written (it is down or restarting):
    nothing was charged; the call can be made again."""
    return ApiError(
        503,
        "The gateway's database is unavailable right now; nothing was charged. Try again shortly.",
        "database_unavailable",
        type="server_error",
        headers={"retry-after": "1"},
    )


def request_too_large(max_bytes: int) -> ApiError:
    return ApiError(413, f"The request body is larger than {max_bytes} bytes.", "request_too_large")


def internal_error(request_id: str | None = None) -> ApiError:
    """A bug, logged where it was caught: the client still gets this shape,
    with the request id the log names when there is one."""
    logged = f" (request {request_id})" if request_id else ""
    return ApiError(
        500,
        f"The gateway failed to handle this request; it has been logged{logged}. Try again.",
        "internal_error",
        type="server_error",
        headers={"x-request-id": request_id} if request_id else None,
    )


def upstream_error(message: str, status: int = 502, code: str = "upstream_error") -> ApiError:
    return ApiError(status, message, code, type="upstream_error")


def upstream_answered(status: int, message: str) -> ApiError:
    """What an upstream's error status means to the client, whatever API the
    upstream speaks: its refusal of the request or its rate limit passed on,
    its refusal of the gateway's key and its own failures as 502s."""
    if status in (400, 404, 409, 413, 422):
        return ApiError(status, message, "upstream_rejected_request")
    if status == 429:
        return ApiError(429, message, "rate_limit_exceeded", "rate_limit_error")
    if status in (401, 403):
        return upstream_error("The upstream refused the gateway's credentials for this model.")
    return upstream_error(f"The upstream failed: {message}")


def upstream_interrupted() -> ApiError:
    """What a streaming client is told when the upstream stops mid-stream."""
    return upstream_error(
        "The upstream stopped in the middle of the stream; you are billed for what was generated.",
        code="upstream_interrupted",
    )
