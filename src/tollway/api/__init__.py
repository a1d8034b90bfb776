"""The management API (/api), JSON with OpenAI-shaped errors."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import Response

from tollway.api import accounts, audit, catalog, channels, groups, tokens, usage, webhooks
from tollway.errors import ApiError, internal_error

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
    return api


async def _internal_error(_: Request, exc: Exception) -> Response:
    return internal_error().response()


async def _api_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _validation_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
    where = ".".join(str(p) for p in first["loc"][1:]) or None
    return ApiError(
        400, f"Invalid {where or 'request'}: {first['msg']}", "invalid_request", param=where
    ).response()


async def _http_error(_: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
    return ApiError(exc.status_code, str(exc.detail), code).response()
