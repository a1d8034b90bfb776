"""The /v1 endpoints, dispatched in front of Starlette.

Starlette's middleware stack, router and per-route wrappers cost the gateway
time on every call (docs/benchmark.md). Endpoints with a fixed path are
matched here by exact method and path and served directly; the ones with a
parameter in their path (``/v1/videos/{video_id}``) are Starlette routes.
Either way an endpoint answers the same: an ApiError in the shape of the
protocol it speaks (OpenAI's, Anthropic's or Gemini's), anything unexpected
with a logged JSON 500 naming the request id.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollway.db.engine import is_outage
from tollway.errors import ApiError, database_unavailable, internal_error
from tollway.keys import new_request_id
from tollway.protocols import CODECS
from tollway.providers.base import JSON
from tollway.relay.inbound import REQUEST_ID_SCOPE, caller_protocol

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Any]]
# How an endpoint's errors are answered: in the shape of the protocol it speaks
# (or, where the route is shared, the protocol its caller speaks).
Render = Callable[[ApiError, Request], Response]
Served = tuple[Endpoint, Render]


def openai_error(error: ApiError, request: Request) -> Response:
    return error.response()


def errors_of(protocol: str) -> Render:
    """Errors answered in ``protocol``'s shape, with the same status and headers."""
    codec = CODECS[protocol]

    def render(error: ApiError, request: Request) -> Response:
        return Response(codec.error_body(error), error.status, error.headers, JSON)

    return render


RENDERS: dict[str, Render] = {
    "openai": openai_error,
    "anthropic": errors_of("anthropic"),
    "gemini": errors_of("gemini"),
}


def errors_of_caller(error: ApiError, request: Request) -> Response:
    """Errors in the shape of the protocol the caller speaks (a route all
    three share, as GET /v1/models)."""
    return RENDERS[caller_protocol(request)](error, request)


class FastPath:
    def __init__(self, app: Starlette, hot: dict[tuple[str, str], Served]) -> None:
        self.app = app
        self.hot = hot
        self.hot_paths = frozenset(path for _, path in hot)

    @property
    def state(self) -> State:
        return self.app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            served = self.hot.get((scope["method"], scope["path"]))
            if served is None and scope["path"] in self.hot_paths:
                served = (not_allowed, openai_error)
            if served is not None:
                scope["app"] = self.app
                await serve(served, scope, receive, send)
                return
        await self.app(scope, receive, send)


async def not_allowed(request: Request) -> Any:
    raise ApiError(
        405, f"{request.method} is not allowed on {request.url.path}", "method_not_allowed"
    )


def answering_errors(served: Served) -> Endpoint:
    """A Starlette endpoint that answers as the fast path's do."""

    async def wrapped(request: Request) -> Any:
        return await answer(served, request)

    return wrapped


async def serve(served: Served, scope: Scope, receive: Receive, send: Send) -> None:
    response = await answer(served, Request(scope, receive))
    await response(scope, receive, send)


async def answer(served: Served, request: Request) -> Any:
    endpoint, render = served
    try:
        return await endpoint(request)
    except ApiError as error:
        refused(request, error)
        return render(error, request)
    except Exception as exc:
        if is_outage(exc):  # the database is down or restarting: try again shortly
            log.warning("database unavailable in %s: %r", request.url.path, exc)
            unavailable = database_unavailable()
            refused(request, unavailable)
            return render(unavailable, request)
        # A bug, not an answer: logged with its traceback and the request id,
        # and the client still gets an OpenAI-shaped error (not a reset).
        request_id = request.scope.get(REQUEST_ID_SCOPE) or new_request_id()
        log.exception(
            "unhandled error in %s %s (request %s)", request.method, request.url.path, request_id
        )
        failed = internal_error(request_id)
        refused(request, failed)
        return render(failed, request)


def refused(request: Request, error: ApiError) -> None:
    """Count an error answer by its code (the gateway's metrics, once it runs)."""
    gateway = getattr(request.app.state, "gateway", None)
    if gateway is not None:
        gateway.metrics.refusal(error.code, error.status)
