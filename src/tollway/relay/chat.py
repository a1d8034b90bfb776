"""POST /v1/chat/completions, stream and non-stream."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import chat_shape
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.relay.call import authenticate, decide, open_call, read_json, resolve_model
from tollway.relay.endpoints import CHAT
from tollway.relay.forward import MeteredStream, forward_unary, open_stream
from tollway.types import Usage


async def chat_completions(request: Request) -> Response | MeteredStream:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    payload, body = await read_json(request, gw.settings.max_body_bytes)
    model = resolve_model(gw, token, payload, CHAT)
    method = decide(token, model)
    stream = payload.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", param="stream")
    if payload.get("model") != model.id:  # an alias: the upstream knows the model by its id
        payload["model"] = model.id
        body = orjson.dumps(payload)
    shape = chat_shape(payload, len(body))  # of the body as sent upstream, as a quote's
    call = await open_call(gw, token, model, method, "chat/completions", shape)
    prompt_tokens = _prompt_counter(gw, payload)
    if not stream:
        return await forward_unary(
            call,
            body,
            items=lambda answer: _choices(answer, shape.n),
            estimate=lambda answer: _usage(prompt_tokens(), gw.counter.count(_answer_text(answer))),
        )
    stream_body, strip = call.provider.stream_body(payload, body)
    upstream = await open_stream(call, stream_body)
    return MeteredStream(
        call,
        upstream,
        call.provider.stream_scanner(strip),
        estimate=lambda text: _usage(prompt_tokens(), gw.counter.count(text)),
        items=shape.n,
    )


def _prompt_counter(gw: Gateway, payload: dict[str, Any]) -> Any:
    """Counting the prompt is only needed when no usage comes back: do it lazily."""
    return lambda: gw.counter.count_chat_prompt(payload)


def _usage(prompt_tokens: int, output_tokens: int) -> Usage:
    return Usage(input_tokens=prompt_tokens, output_tokens=output_tokens)


def _choices(answer: dict[str, Any], asked: int) -> int:
    """The choices returned (at most the n asked): what a per-call price is charged by."""
    choices = answer.get("choices")
    return min(len(choices), asked) if isinstance(choices, list) else asked


def _answer_text(answer: dict[str, Any]) -> str:
    parts = []
    for choice in answer.get("choices") or ():
        message = choice.get("message") if isinstance(choice, dict) else None
        if isinstance(message, dict) and isinstance(message.get("content"), str):
            parts.append(message["content"])
    return "".join(parts)
