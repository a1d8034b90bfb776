"""The OpenAPI document of the relay (/v1 and Gemini's /v1beta), kept as data
in openapi_v1.yaml beside this module."""

from __future__ import annotations

from importlib import resources
from typing import Any

import orjson
import yaml
from starlette.requests import Request
from starlette.responses import Response

DOCUMENT = "openapi_v1.yaml"


def openapi_v1() -> dict[str, Any]:
    """The document, read fresh (a caller may change its copy)."""
    text = resources.files("tollway.relay").joinpath(DOCUMENT).read_text(encoding="utf-8")
    document: dict[str, Any] = yaml.safe_load(text)
    return document


async def openapi_json(request: Request) -> Response:
    """GET /v1/openapi.json, for whoever registers it (it needs no key)."""
    return Response(orjson.dumps(openapi_v1()), media_type="application/json")
