"""The metered endpoints, dispatched in front of Starlette.

Starlette's middleware stack, router and per-route wrappers took about 14 % of
the gateway's time per call (bench/ profile). The hot endpoints are matched
here by exact method and path and served directly; everything else (the
management API, other paths, 404/405 answers) goes on to the Starlette app.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.datastructures import State
from starlette.requests import Request
from starlette.routing import Router
from starlette.types import Receive, Scope, Send

from tollway.errors import ApiError, internal_error

log = logging.getLogger(__name__)

Endpoint = Callable[[Request], Awaitable[Any]]


class FastPath:
    def __init__(self, app: Starlette, hot: dict[tuple[str, str], Endpoint]) -> None:
        self.app = app
        self.hot = hot

    @property
    def state(self) -> State:
        return self.app.state

    @property
    def router(self) -> Router:
        return self.app.router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            endpoint = self.hot.get((scope["method"], scope["path"]))
            if endpoint is not None:
                scope["app"] = self.app
                await serve(endpoint, scope, receive, send)
                return
        await self.app(scope, receive, send)


def answering_errors(endpoint: Endpoint) -> Endpoint:
    """A Starlette endpoint that answers as the hot ones do: an ApiError with
    its OpenAI-shaped body, anything unexpected with a logged JSON 500."""

    async def wrapped(request: Request) -> Any:
        return await answer(endpoint, request)

    return wrapped


async def serve(endpoint: Endpoint, scope: Scope, receive: Receive, send: Send) -> None:
    response = await answer(endpoint, Request(scope, receive))
    await response(scope, receive, send)


async def answer(endpoint: Endpoint, request: Request) -> Any:
    try:
        return await endpoint(request)
    except ApiError as error:
        return error.response()
    except Exception:
        # A bug, not an answer: logged with its traceback, and the client still
        # gets an OpenAI-shaped error rather than a plain-text page or a reset.
        log.exception("unhandled error in %s %s", request.method, request.url.path)
        return internal_error().response()
