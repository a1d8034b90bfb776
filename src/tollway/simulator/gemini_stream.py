"""The streaming side of ``:streamGenerateContent``: SSE frames or one JSON array.

With ``?alt=sse`` each chunk is a ``data: <json>`` frame ended by a blank
line (``\\r\\n`` line ends, as Gemini sends them); without it the chunks are
the items of one JSON array written as they come. ``[sim:drop_after=K]``
cuts the connection after K text chunks (a point at or past the last text
chunk still cuts before the last chunk, which holds the finishReason and the
final usage).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .common import JSON_TYPE, SimState, abort_connection, chunk_delay
from .directives import Directives
from .streaming import SSE_HEADERS

_JSON_HEADERS = {"Content-Type": f"{JSON_TYPE}; charset=UTF-8"}


@dataclass(slots=True)
class Chunk:
    body: dict[str, Any]
    text: bool  # carries a visible word (what drop_after counts)


def _drop_point(state: SimState, directives: Directives, chunks: list[Chunk]) -> int | None:
    if directives.drop_after is not None:
        return directives.drop_after
    if state.roll(state.config.drop_rate):
        return sum(chunk.text for chunk in chunks) // 2
    return None


def _framer(sse: bool) -> tuple[bytes, bytes, bytes, bytes]:
    """(before the first chunk, before each chunk, after each chunk, at the end)."""
    if sse:
        return b"", b"data: ", b"\r\n\r\n", b""
    return b"[", b",\r\n", b"", b"]"


async def _write(
    resp: web.StreamResponse, chunks: list[Chunk], sse: bool, delay: float, drop: int | None
) -> bool:
    """Write the chunks; False when cut at the drop point."""
    opening, before, after, closing = _framer(sse)
    sent = 0
    for position, chunk in enumerate(chunks):
        last = position == len(chunks) - 1
        if drop is not None and ((sent == drop and chunk.text) or last):
            return False
        if delay:
            await asyncio.sleep(delay)
        lead = opening if position == 0 and not sse else before
        await resp.write(lead + orjson.dumps(chunk.body) + after)
        sent += chunk.text
    await resp.write(closing)
    return True


async def stream_chunks(
    request: web.Request, state: SimState, directives: Directives, chunks: list[Chunk], sse: bool
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=SSE_HEADERS if sse else _JSON_HEADERS)
    drop = _drop_point(state, directives, chunks)
    try:
        await resp.prepare(request)
        if not await _write(resp, chunks, sse, chunk_delay(state, directives), drop):
            abort_connection(request)
            return resp
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away mid-stream: nothing left to finish
    return resp
