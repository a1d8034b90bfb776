"""POST /v1/completions (legacy), stream and non-stream.

Billed by the prompt and completion tokens the upstream reports (in the body,
or in a stream's usage chunk, which the gateway asks for and cuts out again
when the client did not); counted by the gateway when none comes. A per-call
price is charged per choice returned (n per prompt).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.completions import completion_request, completion_shape
from tollway.billing.shapes import CallShape
from tollway.endpoints import COMPLETIONS
from tollway.relay.forward import MeteredStream, forward_unary, open_stream
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import Model, Usage


def _shape(inbound: Inbound, model: Model) -> CallShape:
    return completion_shape(inbound.payload, len(inbound.body))


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response | MeteredStream:
    payload = inbound.payload
    counter = call.gw.counter
    choices = completion_request(payload).choices

    def usage(output_text: str) -> Usage:
        prompt = counter.count_inputs(payload["prompt"]) + counter.count(_suffix(payload))
        return Usage(input_tokens=prompt, output_tokens=counter.count(output_text))

    if not payload.get("stream", False):
        return await forward_unary(
            call,
            call.outbound(inbound),
            items=lambda answer: _choices(answer, choices),
            estimate=lambda answer: usage(_answer_text(answer)),
        )
    outbound = call.outbound(inbound, stream=True)
    upstream = await open_stream(call, outbound)
    return MeteredStream(call, upstream, call.provider.scanner(outbound), usage, items=choices)


LEGACY_COMPLETIONS = Metered(COMPLETIONS, "completions", _shape, _forward)


async def completions(request: Request) -> Response | MeteredStream:
    result: Response | MeteredStream = await run(LEGACY_COMPLETIONS, request)
    return result


def _suffix(payload: dict[str, Any]) -> str:
    suffix = payload.get("suffix")
    return suffix if isinstance(suffix, str) else ""


def _choices(answer: dict[str, Any], asked: int) -> int:
    """The choices returned (at most those asked): what a per-call price is charged by."""
    choices = answer.get("choices")
    return min(len(choices), asked) if isinstance(choices, list) else asked


def _answer_text(answer: dict[str, Any]) -> str:
    choices = answer.get("choices")
    return "".join(
        choice["text"]
        for choice in (choices if isinstance(choices, list) else ())
        if isinstance(choice, dict) and isinstance(choice.get("text"), str)
    )
