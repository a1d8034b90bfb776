"""GET /v1/responses/{id} (or its events replayed), DELETE /v1/responses/{id}
and GET /v1/responses/{id}/input_items: an account's stored responses
(relay/responses.py stores them). Another account's response is answered
exactly as a missing one: 404."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.errors import ApiError, bad_request, not_found
from tollway.gateway import Gateway
from tollway.protocols.responses import is_response_id
from tollway.protocols.responses.replay import replay
from tollway.relay.inbound import authenticate
from tollway.relay.responses import JSON_TYPE, store_of
from tollway.relay.responses_store import ResponseStore
from tollway.state import TokenInfo

LIST_DEFAULT_LIMIT = 20
LIST_MAX_LIMIT = 100


async def _owned(request: Request) -> tuple[ResponseStore, TokenInfo, str]:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    return store_of(request), token, request.path_params["response_id"]


def _missing(response_id: str) -> ApiError:
    shown = (
        response_id
        if is_response_id(response_id)
        else response_id[:64].encode("unicode_escape").decode()
    )
    return not_found(f"Response with id '{shown}' not found.", param="response_id")


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), 200, media_type=JSON_TYPE)


async def retrieve_response(request: Request) -> Response:
    """The stored response, or (``stream=true``) its events replayed as SSE."""
    store, token, response_id = await _owned(request)
    query = request.query_params
    stream = query.get("stream", "false")
    if stream not in ("true", "false"):
        raise bad_request("'stream' must be true or false.", param="stream")
    after = query.get("starting_after")
    if after is not None and not (after.isascii() and after.isdigit() and len(after) <= 9):
        raise bad_request("'starting_after' must be a whole number.", param="starting_after")
    stored = (
        await store.load(token.account_id, response_id) if is_response_id(response_id) else None
    )
    if stored is None:
        raise _missing(response_id)
    if stream == "true":
        events = replay(stored.response, int(after) if after is not None else None)
        return Response(events, 200, media_type="text/event-stream")
    return _json(stored.response)


async def delete_response(request: Request) -> Response:
    store, token, response_id = await _owned(request)
    if not is_response_id(response_id) or not await store.delete(token.account_id, response_id):
        raise _missing(response_id)
    return _json({"id": response_id, "object": "response", "deleted": True})


async def list_input_items(request: Request) -> Response:
    store, token, response_id = await _owned(request)
    query = request.query_params
    order = query.get("order", "desc")
    if order not in ("asc", "desc"):
        raise bad_request("'order' must be 'asc' or 'desc'.", param="order")
    limit_text = query.get("limit", str(LIST_DEFAULT_LIMIT))
    limit = (
        int(limit_text)
        if limit_text.isascii() and limit_text.isdigit() and len(limit_text) < 4
        else 0
    )
    if not 1 <= limit <= LIST_MAX_LIMIT:
        raise bad_request(f"'limit' must be from 1 to {LIST_MAX_LIMIT}.", param="limit")
    stored = (
        await store.load(token.account_id, response_id) if is_response_id(response_id) else None
    )
    if stored is None:
        raise _missing(response_id)
    items = stored.input_items if order == "asc" else stored.input_items[::-1]
    after = query.get("after")
    if after is not None:
        ids = [item.get("id") for item in items]
        if after not in ids:
            raise bad_request(
                f"'after': no input item of this response has id '{after[:64]}'.", param="after"
            )
        items = items[ids.index(after) + 1 :]
    page = items[:limit]
    return _json(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": len(items) > limit,
        }
    )
