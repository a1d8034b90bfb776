"""Forwarding to the upstream: whole answers, and streams passed through as
they arrive, metered on the way."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any, NoReturn

from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from tollway.errors import ApiError, upstream_error
from tollway.ledger import UsageStatus
from tollway.providers import Answer, NotJson, Outbound, StreamScanner
from tollway.relay.pipeline import COST_HEADER, Call
from tollway.transport import UpstreamAnswer
from tollway.types import BillingMethod, Usage, UsageSource, nano_to_usd
from tollway.upstream import UpstreamError

log = logging.getLogger(__name__)

# The usage to bill when the upstream reported none: from the streamed text,
# or from the whole parsed answer.
Estimator = Callable[[str], Usage]
AnswerEstimator = Callable[[dict[str, Any]], Usage]
# An endpoint's own reading of the answer's usage (None: none reported).
AnswerUsage = Callable[[Answer], Usage | None]
# Whether the client has gone away (Request.is_disconnected).
ClientGone = Callable[[], Awaitable[bool]]
# How an endpoint sends when the upstream may be sent something else than
# asked (Responses: natively, else on chat completions): the upstream's answer
# and the outbound it answered.
Sender = Callable[[Outbound], Awaitable[tuple[UpstreamAnswer, Outbound]]]
# The client's answer made of the upstream's (Responses: the gateway's id on
# it, kept for its account); the usage is read from what it returns.
Answered = Callable[[Answer], Answer]


async def forward_unary(
    call: Call,
    outbound: Outbound,
    items: Callable[[dict[str, Any]], int],
    estimate: AnswerEstimator,
    *,
    usage: AnswerUsage | None = None,
    client_gone: ClientGone | None = None,
    send: Sender | None = None,
    answered: Answered | None = None,
) -> Response:
    """Send, read the whole answer, settle, answer with the cost in a header.

    ``usage`` reads the answer's usage (default: the provider's reading); when
    none is reported, ``estimate`` counts it and the record says so. A client
    that left while the upstream worked (``client_gone``) is billed all the
    same: the upstream did the work; the record says ``client_disconnected``.
    An endpoint that sends otherwise than ``call.send`` passes ``send``, and
    one whose client gets another answer than the provider's, ``answered``.
    """
    async with released_on_failure(call):
        if send is None:
            resp = await call.send(outbound)
        else:
            resp, outbound = await send(outbound)
        if resp.status != 200:
            await refused(call, resp)
        try:
            data = await resp.read()
        finally:
            resp.close()
    async with released_on_failure(call):  # a bug reading the answer gives the hold back
        answer = await _answer(call, outbound, data)
        if answered is not None:
            answer = answered(answer)
        reported = usage(answer) if usage is not None else answer.usage
        if reported is None:
            await call.gw.counter.ready()
            reported = estimated(estimate(answer.parsed))
        reported.items = items(answer.parsed)
    status, detail = UsageStatus.OK, None
    if client_gone is not None and await client_gone():
        status = UsageStatus.CLIENT_DISCONNECTED
        detail = "the client left before the answer; the upstream had done the work"
    cost = await call.settle(reported, status, detail)
    headers = call.headers()
    headers[COST_HEADER] = nano_to_usd(cost)
    return Response(answer.body, 200, headers, media_type="application/json")


async def _answer(call: Call, outbound: Outbound, data: bytes) -> Answer:
    try:
        return call.provider.answer(outbound, data)
    except NotJson as exc:
        await call.release(UsageStatus.UPSTREAM_ERROR, str(exc))
        raise upstream_error("The upstream answered with a body that is not JSON.") from None


class released_on_failure:
    """Whatever stops the upstream request gives the hold back.

    A class, not ``contextlib.asynccontextmanager``: it runs on every call,
    and a generator-based one costs a generator and its frames each time."""

    __slots__ = ("call",)

    def __init__(self, call: Call) -> None:
        self.call = call

    async def __aenter__(self) -> None:
        return None

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: object
    ) -> None:  # (never swallows: the exception goes on, or becomes the client's error)
        if exc is None:
            return
        call = self.call
        if isinstance(exc, asyncio.CancelledError):
            await call.release(
                UsageStatus.CANCELLED, "the gateway stopped the call before the upstream answered"
            )
        elif isinstance(exc, UpstreamError | OSError):
            await call.release(UsageStatus.UPSTREAM_ERROR, f"upstream request failed: {exc!r}")
            raise transport_error(exc) from exc
        elif isinstance(exc, ApiError):  # no channel's API can carry the request as asked
            await call.release(UsageStatus.REFUSED, exc.message[:1000])
        elif isinstance(exc, Exception):  # a bug: still give the money back before it surfaces
            await call.release(UsageStatus.GATEWAY_ERROR, f"gateway failed: {exc!r}")


def transport_error(exc: Exception) -> ApiError:
    if isinstance(exc, TimeoutError):
        return upstream_error("The upstream did not answer in time.", 504, "upstream_timeout")
    return upstream_error(f"The upstream could not be reached: {exc.__class__.__name__}.")


async def open_stream(call: Call, outbound: Outbound) -> UpstreamAnswer:
    async with released_on_failure(call):
        resp = await call.send(outbound)
    if resp.status != 200:
        await refused(call, resp)
    return resp


async def refused(call: Call, upstream: UpstreamAnswer) -> NoReturn:
    """An upstream's error answer: the hold given back, the provider's error raised."""
    try:
        data = await upstream.read()
    finally:
        upstream.close()
    await call.release(UsageStatus.UPSTREAM_ERROR, f"upstream answered HTTP {upstream.status}")
    raise call.provider.failure(upstream.status, data)


class MeteredStream:
    """An ASGI response that relays an upstream SSE stream chunk by chunk.

    Each upstream chunk is forwarded as soon as it arrives (unless usage must
    be cut out of it). When the stream ends, for whatever reason, the call is
    settled before the response is closed, so a client that has read to the
    end sees a settled charge. A client that goes away stops the upstream and
    pays for what was generated until then.

    Items (what a per-call price is charged by) are the choices delivered, at
    most ``items`` (the n asked): a per-call stream that ends, breaks or loses
    its client before any choice reached the client costs nothing, and its
    hold is released.
    """

    # Whether the stream says in its own events that it ended (the scanner's
    # ``done``), so a connection that breaks after the last event leaves it
    # whole. Raw audio says nothing: it is whole if, and only if, its body ends.
    ends_in_its_events = True

    def __init__(
        self,
        call: Call,
        upstream: UpstreamAnswer,
        scanner: StreamScanner,
        estimate: Estimator,
        items: int,
    ) -> None:
        self.call = call
        self.upstream = upstream
        self.scanner = scanner
        self.estimate = estimate
        self.items = items
        self.client_gone = False
        self.last = b""  # what the client gets after the settlement

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        watcher = asyncio.create_task(self._watch(receive))
        status = UsageStatus.OK
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._headers()})
            status = await self._pump(send)
        except OSError:
            status = UsageStatus.CLIENT_DISCONNECTED
        finally:
            watcher.cancel()
            self.upstream.close()
            await self._finish(status)
        if not self.client_gone:  # settled first, so a client that read to the end sees it
            last = self.last
            if status is UsageStatus.UPSTREAM_INTERRUPTED:
                last += self.scanner.interrupted()
            with contextlib.suppress(OSError):
                await send({"type": "http.response.body", "body": last, "more_body": False})

    async def _pump(self, send: Send) -> UsageStatus:
        try:
            async for chunk in self.upstream.iter_chunks():
                out = self.scanner.feed(chunk)
                if self.scanner.failed:  # its error event reaches the client once settled
                    self.last = out
                    return UsageStatus.UPSTREAM_INTERRUPTED
                if out and not self.client_gone:
                    await send({"type": "http.response.body", "body": out, "more_body": True})
                if self.client_gone:
                    return UsageStatus.CLIENT_DISCONNECTED
        except (UpstreamError, OSError):
            if not (self.ends_in_its_events or self.client_gone):
                return UsageStatus.UPSTREAM_INTERRUPTED
        if self.client_gone:
            return UsageStatus.CLIENT_DISCONNECTED
        return UsageStatus.OK if self.scanner.done else UsageStatus.UPSTREAM_INTERRUPTED

    async def _watch(self, receive: Receive) -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                self.upstream.close()  # wakes the pump at once
                return

    async def _finish(self, status: UsageStatus) -> None:
        items = min(self.scanner.delivered_choices(), self.items)
        if items == 0 and self.call.method is BillingMethod.PER_CALL:
            try:
                await self.call.release(status, "no choice reached the client: nothing to charge")
            except Exception:
                log.exception(
                    "releasing %s failed; its hold stays open for reconciliation",
                    self.call.request_id,
                )
            return
        usage = self.scanner.usage
        detail = None
        if usage is None:
            await self.call.gw.counter.ready()
            usage = estimated(self.estimate(self.scanner.output_text()))
            detail = "no usage from upstream; counted by the gateway"
        elif status is not UsageStatus.OK:
            # What an upstream reported before the stream broke may count less
            # output than reached the client (Anthropic's message_start says 1).
            await self.call.gw.counter.ready()
            counted = self.estimate(self.scanner.output_text()).output_tokens
            usage.output_tokens = max(usage.output_tokens, counted)
            detail = "usage reported before the stream ended; output counted as delivered"
        usage.items = items
        try:
            await self.call.settle(usage, status, detail)
        except Exception:
            log.exception(
                "settling %s failed; its hold stays open for reconciliation", self.call.request_id
            )

    def _headers(self) -> list[tuple[bytes, bytes]]:
        headers = [
            (b"content-type", b"text/event-stream; charset=utf-8"),
            (b"cache-control", b"no-cache"),
            (b"x-accel-buffering", b"no"),
        ]
        headers += [(k.encode(), v.encode()) for k, v in self.call.headers().items()]
        return headers


def estimated(usage: Usage) -> Usage:
    usage.source = UsageSource.ESTIMATED
    return usage
