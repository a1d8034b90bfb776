"""POST /v1/embeddings."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.holds import CallShape
from tollway.errors import bad_request
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
    inputs = payload.get("input")
    if not isinstance(inputs, str | list) or not inputs:
        raise bad_request("'input' must be a non-empty string or array.", param="input")
    if payload.get("model") != model.id:
        payload["model"] = model.id
        body = orjson.dumps(payload)
    # Embeddings produce no output tokens: the hold is the input alone.
    shape = CallShape(body_bytes=len(body), max_output_tokens=0)
    call = await open_call(gw, token, model, method, "embeddings", shape)
    return await forward_unary(
        call,
        body,
        items=lambda _answer: 1,
        estimate=lambda _answer: Usage(input_tokens=gw.counter.count_inputs(inputs)),
    )
