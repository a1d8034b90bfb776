"""POST /v1/messages: Anthropic's Messages API, for every chat model.

The body is read in Anthropic's protocol and translated to the hub (OpenAI
chat completions); from there the call is the same chat call as
``/v1/chat/completions`` (relay/chat.py): same hold, same bill, answered in
Anthropic's shapes. An Anthropic channel gets the body as the client sent it.
``POST /v1/messages/count_tokens`` counts a prompt for free.

A request holding what only Anthropic can carry (a document, a server tool:
protocols/anthropic/native.py) is routed to one of the model's Anthropic
channels, and refused (400, before any hold) when the model has none.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.endpoints import CHAT
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.protocols import CODECS, Json
from tollway.protocols.anthropic import native_only
from tollway.relay.chat import CHAT_COMPLETIONS
from tollway.relay.inbound import authenticate, read_json
from tollway.relay.pipeline import Inbound, resolve_model, run
from tollway.state import Channel, TokenInfo

PROTOCOL = "anthropic"
BETAS = re.compile(r"[A-Za-z0-9._-]+(\s*,\s*[A-Za-z0-9._-]+)*")
MAX_BETA_CHARS = 1000
ANTHROPIC = CODECS[PROTOCOL]


async def read_messages(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    native, _ = await read_json(request, gw.settings.max_body_bytes)
    hub = ANTHROPIC.request_to_hub(native)
    written(native)  # an Anthropic channel is sent it as it came
    untranslated = native_only(native)  # what the route must keep to Anthropic
    inbound = Inbound(hub, written(hub), untranslated, protocol=PROTOCOL, native=native)
    inbound.anthropic_beta = betas(request.headers.get("anthropic-beta"))
    return inbound


def betas(value: str | None) -> str | None:
    """The ``anthropic-beta`` header's feature names, or a 400 for one that
    could not be a list of them."""
    if value is None:
        return None
    if len(value) > MAX_BETA_CHARS or not BETAS.fullmatch(value):
        raise bad_request(
            "'anthropic-beta' must be comma-separated beta names (letters, digits, '-', '_', '.').",
            param="anthropic-beta",
        )
    return value


def anthropic_only(inbound: Inbound, candidates: Sequence[Channel]) -> Sequence[Channel]:
    """Every candidate, unless the request holds what only Anthropic can
    carry: then the Anthropic channels, or a 400 when there are none."""
    if not inbound.source:
        return candidates
    found = [c for c in candidates if c.type == PROTOCOL]
    if found:
        return found
    raise bad_request(
        f"This request holds what only Anthropic's API can take: {', '.join(inbound.source)}; "
        f"the model is served here by no Anthropic upstream. Send it without them, "
        "or call a model served by Anthropic.",
        param=inbound.source[0].split(" ", 1)[0],
    )


def written(body: Json) -> bytes:
    """``body`` as JSON; a 400 for nesting the parser took and no writer takes
    (orjson reads 1024 levels, writes 255): the body could never be sent on."""
    try:
        return orjson.dumps(body)
    except orjson.JSONEncodeError:
        raise bad_request("The request nests JSON too deeply to be sent on.") from None


MESSAGES = dataclasses.replace(CHAT_COMPLETIONS, read=read_messages, narrow=anthropic_only)


async def messages(request: Request) -> object:
    return await run(MESSAGES, request)


async def count_tokens(request: Request) -> Response:
    """The prompt's input tokens as the gateway counts them (no call, no charge)."""
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    native, _ = await read_json(request, gw.settings.max_body_bytes)
    hub = ANTHROPIC.request_to_hub({"max_tokens": 1, **native})
    resolve_model(gw, token, hub.get("model"), CHAT)
    await gw.counter.ready()
    counted = gw.counter.count_chat_prompt(hub)
    return Response(orjson.dumps({"input_tokens": counted}), media_type="application/json")
