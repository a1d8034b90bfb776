"""POST /v1/chat/completions, stream and non-stream."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import CallShape, chat_shape
from tollway.endpoints import CHAT
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.relay.forward import MeteredStream, forward_unary, open_stream
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import Model, Usage


def _shape(inbound: Inbound, model: Model) -> CallShape:
    stream = inbound.payload.get("stream", False)
    if not isinstance(stream, bool):
        raise bad_request("'stream' must be true or false.", param="stream")
    return chat_shape(inbound.payload, len(inbound.body))  # of the body as sent upstream


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response | MeteredStream:
    gw = call.gw
    payload = inbound.payload
    n = call.shape.n
    prompt_tokens = _prompt_counter(gw, payload)
    if not payload.get("stream", False):
        return await forward_unary(
            call,
            call.outbound(inbound),
            items=lambda answer: _choices(answer, n),
            estimate=lambda answer: _usage(prompt_tokens(), gw.counter.count(_answer_text(answer))),
        )
    outbound = call.outbound(inbound, stream=True)
    upstream = await open_stream(call, outbound)
    return MeteredStream(
        call,
        upstream,
        call.provider.scanner(outbound),
        estimate=lambda text: _usage(prompt_tokens(), gw.counter.count(text)),
        items=n,
    )


CHAT_COMPLETIONS = Metered(CHAT, "chat/completions", _shape, _forward)


async def chat_completions(request: Request) -> Response | MeteredStream:
    result: Response | MeteredStream = await run(CHAT_COMPLETIONS, request)
    return result


def _prompt_counter(gw: Gateway, payload: dict[str, Any]) -> Callable[[], int]:
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
