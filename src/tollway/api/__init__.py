"""The management API (/api), JSON with OpenAI-shaped errors."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tollway.api import accounts, audit, catalog, channels, groups, tokens, usage, webhooks
from tollway.db.engine import is_outage
from tollway.errors import ApiError, database_unavailable, internal_error
from tollway.relay.fastpath import refused

log = logging.getLogger(__name__)


def create_api() -> FastAPI:
    api = FastAPI(
        title="Tollway management API",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redirect_slashes=False,  # "/api/tokens/" is a JSON 404, not a redirect
    )
    for module in (catalog, tokens, accounts, channels, groups, usage, webhooks, audit):
        api.include_router(module.router)
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(HTTPException, _http_error)
    # Anything else is a bug: a JSON 500 in OpenAI's shape (FastAPI's own is
    # plain text); tollway.guard.ErrorGuard, around /api, logs it.
    api.add_exception_handler(Exception, _internal_error)
    api.openapi = _with_errors(api.openapi)  # type: ignore[method-assign]
    return api


# The errors any /api operation may answer, in OpenAI's shape. FastAPI's own
# document names 422 for invalid input, which this API answers as a 400.
ERRORS = {
    "400": "Invalid input (a field, a query parameter, the JSON itself).",
    "401": "No management key, or a wrong one.",
    "403": "Admin only, or the account is disabled.",
    "404": "No such object (or not the caller's).",
    "409": "The name or id is taken.",
    "413": "The body is over TOLLWAY_MAX_BODY_BYTES.",
    "503": "The database did not answer.",
}
ERROR_BODY = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["message", "type", "param", "code"],
            "properties": {
                "message": {"type": "string"},
                "type": {"type": "string"},
                "param": {"type": ["string", "null"]},
                "code": {"type": ["string", "null"]},
            },
        }
    },
}


def _with_errors(openapi: Callable[[], dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    """FastAPI's document, with the error answers this API really gives."""

    def document() -> dict[str, Any]:
        built = openapi()  # FastAPI's, cached: the changes below are made once
        built.setdefault("components", {}).setdefault("schemas", {})["Error"] = ERROR_BODY
        error = {
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
        }
        for operations in built["paths"].values():
            for operation in operations.values():
                operation["responses"].pop("422", None)
                for status, why in ERRORS.items():
                    operation["responses"].setdefault(status, {"description": why, **error})
        return built

    return document


async def _internal_error(_: Request, exc: Exception) -> Response:
    if is_outage(exc):  # the database is down or restarting: a 503, not a bug
        log.warning("database unavailable: %r", exc)
        return database_unavailable().response()
    return internal_error().response()


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return _refused(request, exc)


async def _validation_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"][1:]) or None
    message = f"Invalid {where or 'request'}: {first['msg']}"
    return _refused(request, ApiError(400, message, "invalid_request", param=where))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return _refused(request, ApiError(exc.status_code, str(exc.detail), code))


def _refused(request: Request, error: ApiError) -> Response:
    """The error's answer, counted in the metrics' refusals as /v1's are."""
    refused(request, error)
    return error.response()
