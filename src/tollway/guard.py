"""What the gateway puts around /api and the console: one body-size limit, and
one place where an exception nobody expected becomes an answer.

- ``BodyLimit``: a body larger than ``max_bytes`` (declared, or counted as it
  streams in) raises ``ApiError(413)`` from ``receive``, that is, where the app
  reads the body, so the app's own handler answers it: JSON under /api, a
  page in the console.
- ``ErrorGuard``: an exception that escapes the app is logged and answered
  (JSON in OpenAI's shape under /api, a plain page in the console) if nothing
  was sent yet, and never re-raised: the server would otherwise close the
  connection under a client that did nothing wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from starlette.responses import Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tollway.db.engine import is_outage
from tollway.errors import ApiError, database_unavailable, internal_error, request_too_large

log = logging.getLogger(__name__)


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > self.max_bytes:

            async def refuse() -> Message:
                raise request_too_large(self.max_bytes)

            await self.app(scope, refuse, send)
            return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise request_too_large(self.max_bytes)
            return message

        await self.app(scope, counted, send)


def json_answer(error: ApiError) -> Response:
    return error.response()


class ErrorGuard:
    """``answer`` turns an ApiError (or, for anything else, ``internal_error()``)
    into the response the mounted app's clients read."""

    def __init__(
        self,
        app: ASGIApp,
        answer: Callable[[ApiError], Response] = json_answer,
        refuse_nul: bool = True,
    ) -> None:
        self.app = app
        self.answer = answer
        self.refuse_nul = refuse_nul

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if self.refuse_nul and (
            "\x00" in scope["path"] or b"%00" in scope.get("query_string", b"")
        ):
            refused = ApiError(400, "The URL has a NUL character.", "invalid_request")
            await self.answer(refused)(scope, receive, send)
            return
        started = False

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            if isinstance(exc, ApiError) and not started:
                await self.answer(exc)(scope, receive, send)
                return
            if is_outage(exc) and not started:  # the database is down: a 503, not a bug
                log.warning("database unavailable in %s: %r", scope.get("path"), exc)
                await self.answer(database_unavailable())(scope, receive, send)
                return
            log.exception("unexpected error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await self.answer(internal_error())(scope, receive, send)
