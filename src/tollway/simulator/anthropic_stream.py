"""The SSE side of ``/v1/messages``: ``event: <type>`` / ``data: <json>`` frames.

Order: ``message_start`` (the message with no content and the usage so far),
``ping``, then per content block ``content_block_start``, its deltas
(``thinking_delta`` per word then one ``signature_delta``; ``text_delta`` per
word; one ``input_json_delta`` for a tool call) and ``content_block_stop``,
then ``message_delta`` (stop_reason and the final, cumulative usage) and
``message_stop``.

``[sim:drop_after=K]`` cuts the connection after K text deltas (no
message_delta, no message_stop); ``[sim:error_after=K]`` sends an ``error``
event (``overloaded_error``) after K text deltas and ends the stream. A
drop or error point at or past the last text delta still comes before
message_delta.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .common import SimState, abort_connection, chunk_delay
from .directives import Directives
from .streaming import SSE_HEADERS

OVERLOADED_EVENT = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}


@dataclass(slots=True)
class StreamPlan:
    message: dict[str, Any]  # message_start's message: no content, no stop_reason yet
    blocks: list[tuple[dict[str, Any], list[str]]]  # each final block and its delta pieces
    stop_reason: str
    usage: dict[str, Any] | None  # message_delta's usage (None: [sim:no_usage])


class _Stop(Exception):
    """The stream ends early: ``error`` says whether with an error event or a cut."""

    def __init__(self, error: bool) -> None:
        super().__init__("error" if error else "drop")
        self.error = error


def frame(event: str, data: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


class _Writer:
    """Writes the frames of one stream, counting text deltas for the stop points."""

    __slots__ = ("_delay", "_drop_after", "_error_after", "_resp", "_sent")

    def __init__(
        self,
        resp: web.StreamResponse,
        delay: float,
        drop_after: int | None,
        error_after: int | None,
    ) -> None:
        self._resp = resp
        self._delay = delay
        self._drop_after = drop_after
        self._error_after = error_after
        self._sent = 0  # text deltas written

    async def send(self, event: str, data: dict[str, Any]) -> None:
        await self._resp.write(frame(event, data))

    def check_stop(self) -> None:
        """Raise _Stop when the text deltas sent reach a stop point."""
        if self._sent == self._drop_after:
            raise _Stop(error=False)
        if self._sent == self._error_after:
            raise _Stop(error=True)

    def stop_pending(self) -> None:
        """A stop point not reached by the text still stops before message_delta."""
        if self._drop_after is not None:
            raise _Stop(error=False)
        if self._error_after is not None:
            raise _Stop(error=True)

    async def delta(self, index: int, delta: dict[str, Any], text: bool) -> None:
        if text:
            self.check_stop()
        if self._delay:
            await asyncio.sleep(self._delay)
        await self.send(
            "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
        )
        if text:
            self._sent += 1

    async def block(self, index: int, block: dict[str, Any], pieces: list[str]) -> None:
        kind = block["type"]
        start = _empty_start(block)
        await self.send(
            "content_block_start",
            {"type": "content_block_start", "index": index, "content_block": start},
        )
        if kind == "thinking":
            for piece in pieces:
                await self.delta(index, {"type": "thinking_delta", "thinking": piece}, False)
            await self.delta(
                index, {"type": "signature_delta", "signature": block["signature"]}, False
            )
        elif kind == "text":
            for piece in pieces:
                await self.delta(index, {"type": "text_delta", "text": piece}, True)
        else:
            partial = orjson.dumps(block["input"]).decode()
            await self.delta(index, {"type": "input_json_delta", "partial_json": partial}, False)
        await self.send("content_block_stop", {"type": "content_block_stop", "index": index})


def _empty_start(block: dict[str, Any]) -> dict[str, Any]:
    """A block as content_block_start shows it: its text fields still empty."""
    if block["type"] == "text":
        return {"type": "text", "text": ""}
    if block["type"] == "thinking":
        return {"type": "thinking", "thinking": "", "signature": ""}
    return {**block, "input": {}}


def _drop_point(state: SimState, directives: Directives, plan: StreamPlan) -> int | None:
    if directives.drop_after is not None:
        return directives.drop_after
    if state.roll(state.config.drop_rate):
        words = sum(len(pieces) for block, pieces in plan.blocks if block["type"] == "text")
        return words // 2
    return None


async def _write_all(writer: _Writer, plan: StreamPlan) -> None:
    await writer.send("message_start", {"type": "message_start", "message": plan.message})
    await writer.send("ping", {"type": "ping"})
    for index, (block, pieces) in enumerate(plan.blocks):
        await writer.block(index, block, pieces)
    writer.stop_pending()
    delta: dict[str, Any] = {
        "type": "message_delta",
        "delta": {"stop_reason": plan.stop_reason, "stop_sequence": None},
    }
    if plan.usage is not None:
        delta["usage"] = plan.usage
    await writer.send("message_delta", delta)
    await writer.send("message_stop", {"type": "message_stop"})


async def stream_answer(
    request: web.Request, state: SimState, directives: Directives, plan: StreamPlan
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=SSE_HEADERS)
    drop_after = _drop_point(state, directives, plan)
    writer = _Writer(resp, chunk_delay(state, directives), drop_after, directives.error_after)
    try:
        await resp.prepare(request)
        try:
            await _write_all(writer, plan)
        except _Stop as stop:
            if not stop.error:
                abort_connection(request)
                return resp
            await writer.send("error", OVERLOADED_EVENT)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away mid-stream: nothing left to finish
    return resp
