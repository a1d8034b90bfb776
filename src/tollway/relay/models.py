"""GET /v1/models: only the models this token's mode (and allowlist) can call."""

from __future__ import annotations

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.modes import can_call
from tollway.errors import model_not_found
from tollway.gateway import Gateway
from tollway.relay.inbound import authenticate
from tollway.relay.pipeline import allowed
from tollway.types import Model


def _entry(model: Model) -> dict[str, object]:
    return {"id": model.id, "object": "model", "created": 0, "owned_by": model.provider}


async def list_models(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    data = [
        _entry(m)
        for m in gw.state.catalog.models
        if can_call(token.billing_mode, m) and allowed(token, m)
    ]
    return Response(orjson.dumps({"object": "list", "data": data}), media_type="application/json")


async def get_model(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    name = request.path_params["model"]
    model = gw.state.catalog.get(name)
    if model is None or not can_call(token.billing_mode, model) or not allowed(token, model):
        raise model_not_found(name)
    return Response(orjson.dumps(_entry(model)), media_type="application/json")
