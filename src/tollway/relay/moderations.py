"""POST /v1/moderations.

Free unless priced: OpenAI charges nothing for moderation, and the catalog
prices its moderation models at 0, but every call still goes through the
pipeline (authenticated, held at 0, routed with failover, settled and
recorded, counted against rate limits). A moderation model an operator
prices is billed by its input tokens, counted by the gateway (moderation
upstreams report no usage). A request naming no model gets OpenAI's default.
"""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.moderations import DEFAULT_MODEL, input_text, moderation_shape
from tollway.billing.shapes import CallShape
from tollway.endpoints import MODERATIONS
from tollway.gateway import Gateway
from tollway.relay.forward import forward_unary
from tollway.relay.pipeline import Call, Inbound, Metered, read_json_inbound, run
from tollway.state import TokenInfo
from tollway.types import Model, Usage


async def _read(request: Request, gw: Gateway, token: TokenInfo) -> Inbound:
    inbound = await read_json_inbound(request, gw, token)
    if "model" not in inbound.payload:  # optional here, unlike every other endpoint
        inbound.payload["model"] = DEFAULT_MODEL
        inbound.body = orjson.dumps(inbound.payload)
    return inbound


def _shape(inbound: Inbound, model: Model) -> CallShape:
    return moderation_shape(inbound.payload, len(inbound.body))


async def _forward(call: Call, inbound: Inbound, request: Request) -> Response:
    texts = input_text(inbound.payload["input"])
    counter = call.gw.counter
    return await forward_unary(
        call,
        call.outbound(inbound),
        items=lambda _answer: 1,
        estimate=lambda _answer: Usage(input_tokens=sum(counter.count(t) for t in texts)),
    )


MODERATE = Metered(MODERATIONS, "moderations", _shape, _forward, read=_read)


async def moderations(request: Request) -> Response:
    result: Response = await run(MODERATE, request)
    return result
