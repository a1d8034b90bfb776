"""``GET /v1/models``: a few familiar ids. Every other endpoint accepts any model
name and echoes it back, so this list is only for clients that look first."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from .common import json_response

MODEL_IDS = (
    "gpt-4o-mini",
    "gpt-4o",
    "o3-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "sim-chat",
    "sim-embed",
)
_CREATED = 1_700_000_000


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _CREATED, "owned_by": "tollway-sim"}


# Constant: encoded once, served as-is.
_MODELS_BODY = json_response({"object": "list", "data": [_model(m) for m in MODEL_IDS]}).body


async def list_models(request: web.Request) -> web.Response:
    return web.Response(body=_MODELS_BODY, content_type="application/json")


async def get_model(request: web.Request) -> web.Response:
    return json_response(_model(request.match_info["model"]))


def setup(app: web.Application) -> None:
    app.router.add_get("/v1/models", list_models)
    app.router.add_get("/v1/models/{model}", get_model)
