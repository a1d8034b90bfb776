"""POST /v1/messages: Anthropic's Messages API, for every chat model.

The body is read in Anthropic's protocol and translated to the hub (OpenAI
chat completions); from there the call is the same chat call as
``/v1/chat/completions`` (relay/chat.py): same hold, same bill, answered in
Anthropic's shapes. An Anthropic channel gets the body as the client sent it.
``POST /v1/messages/count_tokens`` counts a prompt for free.
"""

from __future__ import annotations

import dataclasses

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.endpoints import CHAT
from tollway.gateway import Gateway
from tollway.protocols import CODECS
from tollway.relay.chat import CHAT_COMPLETIONS
from tollway.relay.inbound import authenticate, read_json
from tollway.relay.pipeline import Inbound, resolve_model, run
from tollway.state import TokenInfo

PROTOCOL = "anthropic"
ANTHROPIC = CODECS[PROTOCOL]


async def read_messages(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    native, _ = await read_json(request, gw.settings.max_body_bytes)
    hub = ANTHROPIC.request_to_hub(native)
    return Inbound(hub, orjson.dumps(hub), protocol=PROTOCOL, native=native)


MESSAGES = dataclasses.replace(CHAT_COMPLETIONS, read=read_messages)


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
