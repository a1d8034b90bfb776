"""Reading a /v1 request: the caller's key, and a body within its size limit."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from starlette.requests import Request

from tollway.errors import (
    ApiError,
    bad_request,
    forbidden,
    invalid_api_key,
    request_too_large,
)
from tollway.gateway import Gateway
from tollway.state import TokenInfo
from tollway.types import parse_count

REQUEST_ID_HEADER = "x-request-id"
# Where a request's id is kept in its ASGI scope, so an error answered after
# the call was opened names the same id as its usage record.
REQUEST_ID_SCOPE = "tollway.request_id"


async def authenticate(gw: Gateway, request: Request) -> TokenInfo:
    token = await gw.state.token_by_key(api_key(request))
    if token is None:
        raise invalid_api_key()
    if not token.enabled:
        raise ApiError(401, "This API key is disabled.", "token_disabled", "authentication_error")
    if token.expired(datetime.now(UTC)):
        raise ApiError(401, "This API key has expired.", "token_expired", "authentication_error")
    if not token.account_enabled:
        raise forbidden("The account that owns this API key is disabled.", "account_disabled")
    return token


def api_key(request: Request) -> str:
    """The key, however the client's SDK sends it: ``Authorization: Bearer``
    (OpenAI; Anthropic's SDK 2.x), ``x-api-key`` (older Anthropic SDKs),
    ``x-goog-api-key`` or ``?key=`` (Gemini)."""
    headers = request.headers
    header = headers.get("authorization")
    if header is not None and header[:7].lower() == "bearer ":
        return header[7:].strip()
    key = headers.get("x-api-key") or headers.get("x-goog-api-key")
    if key is None and "key" in request.query_params:
        key = request.query_params["key"]
    if not key:
        raise invalid_api_key(
            "You didn't provide an API key. Send it as 'Authorization: Bearer sk-...' "
            "(or as x-api-key, x-goog-api-key or ?key=)."
        )
    return key.strip()


def caller_protocol(request: Request) -> str:
    """The protocol a client speaks on a route all three share (GET
    /v1/models), by the headers its SDK sends: ``anthropic-version`` (the
    anthropic SDKs, Claude Code), ``x-goog-api-key``/``x-goog-api-client``
    (google-genai); anything else is an OpenAI client."""
    headers = request.headers
    if request.url.path.startswith("/v1beta/"):  # only Gemini's API lives there
        return "gemini"
    if "anthropic-version" in headers:
        return "anthropic"
    if "x-goog-api-key" in headers or "x-goog-api-client" in headers:
        return "gemini"
    return "openai"


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refused (413) as soon as it is known to be too large."""
    declared = parse_count(request.headers.get("content-length"))
    if declared is not None and declared > max_bytes:
        raise request_too_large(max_bytes)
    chunks = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise request_too_large(max_bytes)
        chunks.append(chunk)
    return b"".join(chunks)


async def read_json(request: Request, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    body = await read_body(request, max_bytes)
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise bad_request(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    if not isinstance(payload, dict):
        raise bad_request("The request body must be a JSON object.", code="invalid_json")
    return payload, body
