"""POST /v1/embeddings."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.shapes import embeddings_shape
from tollway.gateway import Gateway
from tollway.relay.call import authenticate, decide, open_call, read_json, resolve_model
from tollway.relay.endpoints import EMBEDDINGS
from tollway.relay.forward import forward_unary
from tollway.types import Usage


async def embeddings(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    payload, body = await read_json(request, gw.settings.max_body_bytes)
    model = resolve_model(gw, token, payload, EMBEDDINGS)
    method = decide(token, model)
    if payload.get("model") != model.id:
        payload["model"] = model.id
        body = orjson.dumps(payload)
    shape = embeddings_shape(payload, len(body))  # the input alone: no output tokens
    inputs = payload["input"]
    call = await open_call(gw, token, model, method, "embeddings", shape)
    return await forward_unary(
        call,
        body,
        items=lambda _answer: 1,
        estimate=lambda _answer: Usage(input_tokens=gw.counter.count_inputs(inputs)),
    )
