"""The Gemini API inbound: ``POST /v1beta/models/{model}:generateContent``,
``:streamGenerateContent`` and ``:countTokens``, and the same under ``/v1``
(where the google-genai SDK calls them).

The model and whether to stream are in the path, the body is read in
Gemini's protocol and translated to the hub; from there the call is the same
chat call as ``/v1/chat/completions`` (relay/chat.py), answered in Gemini's
shapes. Streams are server-sent events (the SDKs ask ``alt=sse``). A Gemini
channel gets the body as the client sent it.
"""

from __future__ import annotations

import dataclasses

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.endpoints import CHAT
from tollway.errors import ApiError
from tollway.gateway import Gateway
from tollway.protocols import CODECS, Json
from tollway.relay.chat import CHAT_COMPLETIONS
from tollway.relay.inbound import authenticate, read_json
from tollway.relay.messages import written
from tollway.relay.pipeline import Inbound, resolve_model, run
from tollway.state import TokenInfo

PROTOCOL = "gemini"
GEMINI = CODECS[PROTOCOL]
GENERATE = "generateContent"
STREAM = "streamGenerateContent"
COUNT = "countTokens"


def _target(request: Request) -> tuple[str, str]:
    """``models/{model}:{verb}`` split; a 404 for a verb the gateway does not serve."""
    model, _, verb = str(request.path_params.get("target", "")).rpartition(":")
    if not model or verb not in (GENERATE, STREAM, COUNT):
        raise ApiError(
            404,
            f"{request.url.path} is not a method the gateway serves: use "
            f"models/{{model}}:{GENERATE}, :{STREAM} or :{COUNT}.",
            "not_found",
        )
    return model.removeprefix("models/"), verb


async def _read(request: Request, gw: Gateway) -> tuple[Json, Json]:
    """The body as the client sent it, and as a hub request."""
    model, verb = _target(request)
    native, _ = await read_json(request, gw.settings.max_body_bytes)
    hub = GEMINI.request_to_hub(native)
    hub["model"] = model
    if verb == STREAM:
        hub["stream"] = True
    return native, hub


async def read_generate(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    native, hub = await _read(request, gw)
    written(native)  # a Gemini channel is sent it as it came
    return Inbound(hub, written(hub), protocol=PROTOCOL, native=native)


GENERATE_CONTENT = dataclasses.replace(CHAT_COMPLETIONS, read=read_generate)


async def models_action(request: Request) -> object:
    """generateContent, streamGenerateContent or countTokens, as the path says."""
    _, verb = _target(request)
    if verb == COUNT:
        return await count_tokens(request)
    return await run(GENERATE_CONTENT, request)


async def count_tokens(request: Request) -> Response:
    """The prompt's tokens as the gateway counts them (no call, no charge)."""
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    _, hub = await _read(request, gw)
    resolve_model(gw, token, hub["model"], CHAT)
    await gw.counter.ready()
    counted = gw.counter.count_chat_prompt(hub)
    return Response(orjson.dumps({"totalTokens": counted}), media_type="application/json")
