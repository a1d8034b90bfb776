"""Sending a call on, channel after channel, until one serves it.

A call tries the channels its route lists, in order, each at most once, up
to ``max_attempts``. An attempt that fails before anything reached the
client (see routing/failures.py) moves on to the next channel; the request
goes out again as the client sent it (renamed for the channel's upstream).
What the last attempt got is what the client gets when none serves.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import AsyncIterator, Sequence
from typing import TYPE_CHECKING

import orjson

from tollway.errors import ApiError
from tollway.providers import PROVIDERS, Outbound
from tollway.providers.base import JSON
from tollway.relay.multipart import is_multipart, text_field, with_field
from tollway.routing import key_rejected, retryable
from tollway.routing import status as channel_status
from tollway.routing.failures import reason_of
from tollway.state import Channel, ChannelKey
from tollway.transport import UpstreamAnswer, UpstreamRequest
from tollway.upstream import UpstreamError

if TYPE_CHECKING:
    from tollway.relay.pipeline import Call

ATTEMPTS_HEADER = "x-tollway-attempts"


class EmptyStream(UpstreamError):
    """A stream that answered 200 and broke before its first byte."""


async def send(call: Call, outbound: Outbound, timeout_s: float) -> UpstreamAnswer:
    """The first answer that is not the channel's fault (open: close it), or
    the last failure when every channel allowed has been tried. A key the
    upstream rejects is retried on the same channel with its next key."""
    failure: BaseException | UpstreamAnswer | None = None
    left = call.gw.settings.max_attempts
    for channel in call.route.channels:  # each at most once
        call.channel, call.provider = channel, PROVIDERS[channel.type]
        sent = renamed(outbound, channel) if channel.model_mapping else outbound
        for key in _keys(call, channel):
            try:
                request = call.provider.request(channel.base_url, key.key, sent)
            except ApiError as refusal:  # this channel's API cannot carry the request
                failure = refusal
                break
            if left == 0:
                break
            left -= 1
            call.attempts += 1
            result = await _attempt(call, channel, key, request, outbound.stream, timeout_s)
            if not isinstance(result, Failed):
                return result
            failure = result.failure
            if not result.dead_key:
                break
    if isinstance(failure, BaseException):
        raise failure
    if failure is None:  # (a route always has a channel; a second send may find none left)
        raise UpstreamError("no channel left to try")
    return failure


def _keys(call: Call, channel: Channel) -> Sequence[ChannelKey]:
    """The key the router picks, then (after a rejection) the channel's others."""
    if len(channel.keys) == 1:
        return channel.keys
    first = call.gw.router.key_for(channel)
    return [first, *(key for key in channel.keys if key.index != first.index)]


@dataclasses.dataclass(slots=True)
class Failed:
    failure: BaseException | UpstreamAnswer
    dead_key: bool = False


async def _attempt(
    call: Call,
    channel: Channel,
    key: ChannelKey,
    request: UpstreamRequest,
    stream: bool,
    timeout_s: float,
) -> UpstreamAnswer | Failed:
    gw = call.gw
    health = gw.router.health
    health.begin(channel.id)
    gw.metrics.attempt(channel.id)
    started = time.perf_counter()
    try:
        resp = await gw.upstream.send(request, timeout_s)
        if resp.status == 200:  # what reaches the client first has arrived
            resp = await (primed(resp) if stream else buffered(resp))
        else:
            resp = await buffered(resp)
    except (UpstreamError, OSError) as exc:
        health.failure(channel.id, time.perf_counter() - started)
        gw.metrics.failure(channel.id)
        gw.spawn(channel_status.note_error(gw, channel.id, f"{exc!r}"))
        return Failed(exc)
    latency = time.perf_counter() - started
    if resp.status == 200:
        health.success(channel.id, latency)
        if call.route.sticky is not None:
            gw.router.served(call.route, channel)
        return resp
    data = await resp.read()
    dead_key = key_rejected(resp.status, data)
    if not dead_key and not retryable(resp.status):
        health.success(channel.id, latency)  # it answered: the request was at fault
        return resp
    reason = reason_of(resp.status, data)
    gw.metrics.failure(channel.id)
    if dead_key:
        gw.spawn(channel_status.disable_key(gw, channel.id, key.index, reason))
        if len(channel.keys) == 1:
            health.failure(channel.id, latency, trip=True)  # out until the state reloads
    else:
        health.failure(channel.id, latency)
        gw.spawn(channel_status.note_error(gw, channel.id, reason))
    return Failed(resp, dead_key)


def renamed(outbound: Outbound, channel: Channel) -> Outbound:
    """``outbound`` naming the model as the channel's upstream knows it, in
    its payload and in its body (JSON, or a multipart form's ``model`` part)."""
    payload = outbound.payload
    if not channel.model_mapping:
        return outbound
    if payload is None:  # a form the endpoint encoded (audio, videos) names it only inside
        return _renamed_form(outbound, channel.model_mapping)
    name = payload.get("model")
    upstream_name = channel.model_mapping.get(name) if isinstance(name, str) else None
    if upstream_name is None:
        return outbound
    payload = {**payload, "model": upstream_name}
    content_type = outbound.content_type
    if content_type == JSON:
        body = orjson.dumps(payload)
    elif content_type is not None and is_multipart(content_type):
        body = with_field(outbound.body, content_type, "model", upstream_name)
    else:
        body = outbound.body
    native = outbound.native
    if native is not None and "model" in native:
        native = {**native, "model": upstream_name}
    return dataclasses.replace(outbound, payload=payload, body=body, native=native)


def _renamed_form(outbound: Outbound, mapping: dict[str, str]) -> Outbound:
    content_type = outbound.content_type
    if content_type is None or not is_multipart(content_type):
        return outbound
    name = text_field(outbound.body, content_type, "model")
    upstream_name = mapping.get(name) if name is not None else None
    if upstream_name is None:
        return outbound
    body = with_field(outbound.body, content_type, "model", upstream_name)
    return dataclasses.replace(outbound, body=body)


async def primed(resp: UpstreamAnswer) -> UpstreamAnswer:
    """A stream whose first chunk has arrived (EmptyStream if it never does)."""
    chunks = resp.iter_chunks()
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        resp.close()
        raise EmptyStream("the stream ended before its first byte") from None
    except BaseException:
        resp.close()
        raise
    return Primed(resp, first, chunks)


async def buffered(resp: UpstreamAnswer) -> UpstreamAnswer:
    """A whole answer read to its end (an upstream cut mid-body fails here,
    where the next channel can still serve the call)."""
    try:
        data = await resp.read()
    finally:
        resp.close()
    return Buffered(resp, data)


class Buffered:
    """An answer read whole, readable again."""

    def __init__(self, answer: UpstreamAnswer, data: bytes) -> None:
        self._answer = answer
        self._data = data
        self.status = answer.status

    def header(self, name: str) -> str | None:
        return self._answer.header(name)

    async def read(self) -> bytes:
        return self._data

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        yield self._data

    def close(self) -> None:
        pass


class Primed:
    """An answer whose first chunk was read ahead, read on from there."""

    def __init__(self, answer: UpstreamAnswer, first: bytes, rest: AsyncIterator[bytes]) -> None:
        self._answer = answer
        self._first = first
        self._rest = rest
        self.status = answer.status

    def header(self, name: str) -> str | None:
        return self._answer.header(name)

    async def read(self) -> bytes:
        parts = [self._first]
        async for chunk in self._rest:
            parts.append(chunk)
        return b"".join(parts)

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        yield self._first
        async for chunk in self._rest:
            yield chunk

    def close(self) -> None:
        self._answer.close()
