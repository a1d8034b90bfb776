"""The SSE side of chat completions: OpenAI ``chat.completion.chunk`` frames.

Frames are assembled from pre-encoded bytes (the constant head is encoded once
per stream), so a chunk costs one small ``orjson.dumps`` of its text piece.
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import orjson
from aiohttp import web

from .common import SYSTEM_FINGERPRINT, SimState, abort_connection

if TYPE_CHECKING:
    from .chat import ChatCall, Reply

SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
DONE = b"data: [DONE]\n\n"
_ROLE_DELTA = b'{"role":"assistant","content":"","refusal":null}'
_INDEXES = tuple(str(i).encode() for i in range(129))  # n is at most 128


class ChunkFramer:
    """Builds the ``data: {...}\\n\\n`` frames of one stream."""

    __slots__ = ("_prefix", "_suffix")

    def __init__(self, completion_id: str, model: str, usage_null: bool) -> None:
        head = orjson.dumps(
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "system_fingerprint": SYSTEM_FINGERPRINT,
            }
        )
        self._prefix = b"data: " + head[:-1] + b',"choices":['
        # With include_usage, OpenAI puts "usage": null on every chunk but the last.
        self._suffix = b'],"usage":null}\n\n' if usage_null else b"]}\n\n"

    def _choice(self, index: int, delta: bytes, finish: bytes) -> bytes:
        return b"".join(
            (
                self._prefix,
                b'{"index":',
                _INDEXES[index],
                b',"delta":',
                delta,
                b',"logprobs":null,"finish_reason":',
                finish,
                b"}",
                self._suffix,
            )
        )

    def role(self, index: int) -> bytes:
        return self._choice(index, _ROLE_DELTA, b"null")

    def content(self, index: int, piece: str) -> bytes:
        return self._choice(index, b'{"content":' + orjson.dumps(piece) + b"}", b"null")

    def finish(self, index: int, reason: str) -> bytes:
        return self._choice(index, b"{}", orjson.dumps(reason))

    def usage(self, usage: dict[str, Any]) -> bytes:
        return self._prefix + b'],"usage":' + orjson.dumps(usage) + b"}\n\n"


def _drop_point(state: SimState, call: ChatCall, reply: Reply) -> int | None:
    """How many content chunks to send before cutting the stream, or None."""
    if call.directives.drop_after is not None:
        return call.directives.drop_after
    if state.roll(state.config.drop_rate):
        return len(reply.choices) * len(reply.choices[0]) // 2 if reply.choices else 0
    return None


async def _write_content(
    request: web.Request,
    resp: web.StreamResponse,
    framer: ChunkFramer,
    reply: Reply,
    delay_ms: int,
    drop_after: int | None,
    stall_after: int | None = None,
) -> bool:
    """Write one chunk per token (choices interleaved); False if cut at
    drop_after, or stalled at stall_after until the client left."""
    delay = delay_ms / 1000
    sent = 0
    for position in range(len(reply.choices[0]) if reply.choices else 0):
        for index, pieces in enumerate(reply.choices):
            if sent == drop_after:
                return False
            if sent == stall_after:
                await _until_gone(request)
                return False
            if delay:
                await asyncio.sleep(delay)
            await resp.write(framer.content(index, pieces[position]))
            sent += 1
    # A drop point at or past the last chunk still cuts before the finish chunk.
    return drop_after is None


STALL_CHECK_S = 0.25
STALL_MAX_S = 600.0


async def _until_gone(request: web.Request) -> None:
    """Send nothing until the client closes the connection (at most STALL_MAX_S)."""
    waited = 0.0
    while waited < STALL_MAX_S:
        transport = request.transport
        if transport is None or transport.is_closing():
            return
        await asyncio.sleep(STALL_CHECK_S)
        waited += STALL_CHECK_S


async def stream_reply(
    request: web.Request, state: SimState, call: ChatCall, reply: Reply, completion_id: str
) -> web.StreamResponse:
    with_usage = call.include_usage and reply.usage is not None
    framer = ChunkFramer(completion_id, call.model, with_usage)
    drop_after = _drop_point(state, call, reply)
    delay = call.directives.chunk_delay_ms
    if delay is None:
        delay = state.config.chunk_delay_ms
    resp = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await resp.prepare(request)
        if state.roll(state.config.empty_stream_rate):  # 200, then nothing at all
            abort_connection(request)
            return resp
        for index in range(len(reply.choices)):
            await resp.write(framer.role(index))
        stall_after = call.directives.stall_after
        if not await _write_content(request, resp, framer, reply, delay, drop_after, stall_after):
            abort_connection(request)
            return resp
        for index in range(len(reply.choices)):
            await resp.write(framer.finish(index, reply.finish_reason))
        if with_usage and reply.usage is not None:
            await resp.write(framer.usage(reply.usage))
        await resp.write(DONE)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away mid-stream: nothing left to finish
    return resp
