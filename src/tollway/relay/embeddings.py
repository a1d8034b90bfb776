"""POST /v1/embeddings."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import CallShape, embeddings_shape
from tollway.endpoints import EMBEDDINGS
from tollway.relay.forward import forward_unary
from tollway.relay.pipeline import Call, Inbound, Metered, run
from tollway.types import Model, Usage


def _shape(inbound: Inbound, model: Model) -> CallShape:
    return embeddings_shape(inbound.payload, len(inbound.body))  # the input alone: no output


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response:
    inputs = inbound.payload["input"]
    counter = call.gw.counter
    return await forward_unary(
        call,
        call.outbound(inbound),
        items=lambda _answer: 1,
        estimate=lambda _answer: Usage(input_tokens=counter.count_inputs(inputs)),
    )


EMBED = Metered(EMBEDDINGS, "embeddings", _shape, _forward)


async def embeddings(request: Request) -> Response:
    result: Response = await run(EMBED, request)
    return result
