"""GET /v1/models: only the models this token's mode (and allowlist) can call,
listed in the shape of the SDK that asks.

OpenAI's SDK gets ``{"object": "list", "data": [...]}`` with every model;
Anthropic's (``anthropic-version`` header) and Google's (``x-goog-api-key``,
or any call under /v1beta) get their own list shapes and pagination, with the
models their protocol can call (the chat models).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.modes import can_call
from tollway.endpoints import CHAT
from tollway.errors import bad_request, model_not_found
from tollway.gateway import Gateway
from tollway.relay.inbound import authenticate, caller_protocol
from tollway.relay.pipeline import allowed
from tollway.state import TokenInfo
from tollway.types import Model, parse_count

JSON = "application/json"
# created_at of a model whose release date the catalog does not know.
UNKNOWN_DATE = "1970-01-01T00:00:00Z"
# Gemini answers models by their resource name.
GEMINI_PREFIX = "models/"
GEMINI_METHODS = ["generateContent", "streamGenerateContent", "countTokens"]


def _openai(model: Model) -> dict[str, Any]:
    return {"id": model.id, "object": "model", "created": 0, "owned_by": model.provider}


def _anthropic(model: Model) -> dict[str, Any]:
    return {
        "type": "model",
        "id": model.id,
        "display_name": model.description or model.id,
        "created_at": UNKNOWN_DATE,
    }


def _gemini(model: Model) -> dict[str, Any]:
    return {
        "name": GEMINI_PREFIX + model.id,
        "baseModelId": model.id,
        "displayName": model.description or model.id,
        "description": model.description,
        "supportedGenerationMethods": GEMINI_METHODS,
    }


def _protocol(request: Request) -> str:
    if request.url.path.startswith("/v1beta/"):
        return "gemini"
    return caller_protocol(request)


def _callable(gw: Gateway, protocol: str, token: TokenInfo) -> list[Model]:
    return [
        m
        for m in gw.state.catalog.models
        if can_call(token.billing_mode, m)
        and allowed(token, m)
        and (protocol == "openai" or m.kind in CHAT.kinds)
    ]


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    protocol = _protocol(request)
    models = _callable(gw, protocol, token)
    if protocol == "anthropic":
        body = _anthropic_page(models, request)
    elif protocol == "gemini":
        body = _gemini_page(models, request)
    else:
        body = {"object": "list", "data": [_openai(m) for m in models]}
    return Response(orjson.dumps(body), media_type=JSON)


async def get_model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    protocol = _protocol(request)
    name = request.path_params["model"]
    if protocol == "gemini":
        name = name.removeprefix(GEMINI_PREFIX)
    model = gw.state.catalog.get(name)
    if model is None or model not in _callable(gw, protocol, token):
        raise model_not_found(name)
    entry: Callable[[Model], dict[str, Any]] = {
        "openai": _openai,
        "anthropic": _anthropic,
        "gemini": _gemini,
    }[protocol]
    return Response(orjson.dumps(entry(model)), media_type=JSON)


def _anthropic_page(models: list[Model], request: Request) -> dict[str, Any]:
    """One page as Anthropic's API pages: ``limit`` (1–1000, default 20), and
    ``after_id`` or ``before_id`` naming where the page starts or ends."""
    query = request.query_params
    limit = _count(query.get("limit"), "limit", default=20, most=1000)
    ids = [m.id for m in models]
    start, end = 0, len(ids)
    if query.get("after_id") is not None:
        start = _position(ids, query["after_id"], "after_id") + 1
    if query.get("before_id") is not None:
        end = _position(ids, query["before_id"], "before_id")
        start = max(start, end - limit)
    page = models[start : min(end, start + limit)]
    more = start + len(page) < end if query.get("before_id") is None else start > 0
    return {
        "data": [_anthropic(m) for m in page],
        "has_more": more,
        "first_id": page[0].id if page else None,
        "last_id": page[-1].id if page else None,
    }


def _gemini_page(models: list[Model], request: Request) -> dict[str, Any]:
    """One page as Gemini's API pages: ``pageSize`` (default 50, at most
    1000) and the ``nextPageToken`` of the page before."""
    query = request.query_params
    size = _count(query.get("pageSize"), "pageSize", default=50, most=1000)
    token = query.get("pageToken")
    start = 0 if not token else _count(token, "pageToken", default=0, most=len(models))
    page = models[start : start + size]
    body: dict[str, Any] = {"models": [_gemini(m) for m in page]}
    if start + size < len(models):
        body["nextPageToken"] = str(start + size)
    return body


def _count(value: str | None, name: str, *, default: int, most: int) -> int:
    if value is None:
        return default
    count = parse_count(value)
    if count is None or not 0 <= count <= most or (count == 0 and name != "pageToken"):
        raise bad_request(f"'{name}' must be a whole number from 1 to {most}.", param=name)
    return count


def _position(ids: list[str], model_id: str, name: str) -> int:
    try:
        return ids.index(model_id)
    except ValueError:
        message = f"'{name}' names no model this key can list: {model_id[:200]!r}."
        raise bad_request(message, param=name) from None
