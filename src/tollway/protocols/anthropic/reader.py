"""An Anthropic stream (server-sent events) read as hub chunks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import orjson

from tollway.protocols.anthropic.answers import finish_reason
from tollway.protocols.anthropic.errors import stream_failure
from tollway.protocols.anthropic.usage import usage_from_anthropic
from tollway.protocols.base import StreamFailed
from tollway.types import Usage

Json = dict[str, Any]

# An event this long without its blank line is no stream to read: its bytes
# are dropped rather than held without end.
MAX_EVENT_BYTES = 16 * 1024 * 1024


class AnthropicReader:
    """Feeds on a Messages stream's bytes, split anywhere; returns the hub
    chunks each feed completes. Usage is merged from ``message_start`` and
    every ``message_delta``: Anthropic's counts are running totals, so the
    latest of each field wins and nothing is added up."""

    def __init__(self, created: int | None = None) -> None:
        self.usage: Usage | None = None
        self.done = False
        self._created = int(time.time()) if created is None else created
        self._id = ""
        self._model = ""
        self._buffer = b""
        self._held_cr = False  # a CR at the end of a feed: maybe half a CRLF
        self._reported: Json = {}  # the latest value of each usage field
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._handlers: dict[str, Callable[[Json], list[Json]]] = {
            "message_start": self._message_start,
            "content_block_start": self._block_start,
            "content_block_delta": self._block_delta,
            "message_delta": self._message_delta,
            "message_stop": self._message_stop,
            "error": self._error,
        }

    def feed(self, data: bytes) -> list[Json]:
        chunks: list[Json] = []
        for name, payload in self._events(data):
            chunks.extend(self._take(name, payload))
        return chunks

    def _events(self, data: bytes) -> Iterator[tuple[str, bytes]]:
        """The complete events in the buffer, line endings made LF."""
        if self._held_cr:
            data = b"\r" + data
        self._held_cr = data.endswith(b"\r")
        if self._held_cr:
            data = data[:-1]
        self._buffer += data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        *events, self._buffer = self._buffer.split(b"\n\n")
        if len(self._buffer) > MAX_EVENT_BYTES:
            self._buffer = b""
        for event in events:
            parsed = _parse_event(event)
            if parsed is not None:
                yield parsed

    def _take(self, name: str, payload: bytes) -> list[Json]:
        try:
            body = orjson.loads(payload)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            if name == "error":
                raise StreamFailed(stream_failure(None))
            return []
        kind = body.get("type")
        handler = self._handlers.get(kind if isinstance(kind, str) else name)
        return handler(body) if handler is not None else []  # ping, and what is new

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }

    def _note_usage(self, reported: Any) -> None:
        if isinstance(reported, dict):
            self._reported.update((k, v) for k, v in reported.items() if v is not None)
            self.usage = usage_from_anthropic(self._reported)

    def _message_start(self, body: Json) -> list[Json]:
        message = body.get("message")
        message = message if isinstance(message, dict) else {}
        if isinstance(message.get("id"), str):
            self._id = message["id"]
        if isinstance(message.get("model"), str):
            self._model = message["model"]
        self._note_usage(message.get("usage"))
        return [self._chunk({"role": "assistant", "content": ""})]

    def _block_start(self, body: Json) -> list[Json]:
        block = body.get("content_block")
        block = block if isinstance(block, dict) else {}
        kind = block.get("type")
        if kind == "tool_use":
            return [self._chunk({"tool_calls": [self._tool_opened(body, block)]})]
        if kind == "text":
            return self._said("content", block.get("text"))
        if kind == "thinking":
            return self._said("reasoning_content", block.get("thinking"))
        return []

    def _tool_opened(self, body: Json, block: Json) -> Json:
        tool = len(self._tools)
        self._tools[_index(body)] = tool
        given = block.get("input")
        # The input streams in as JSON deltas after an empty {}; one given
        # whole at the start is passed on as the first arguments.
        try:
            arguments = orjson.dumps(given).decode() if isinstance(given, dict) and given else ""
        except orjson.JSONEncodeError:  # nested past what orjson writes
            arguments = ""
        function = {"name": block.get("name"), "arguments": arguments}
        return {"index": tool, "id": block.get("id"), "type": "function", "function": function}

    def _block_delta(self, body: Json) -> list[Json]:
        delta = body.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        kind = delta.get("type")
        if kind == "text_delta":
            return self._said("content", delta.get("text"))
        if kind == "thinking_delta":
            return self._said("reasoning_content", delta.get("thinking"))
        tool = self._tools.get(_index(body))
        partial = delta.get("partial_json")
        if kind == "input_json_delta" and tool is not None and isinstance(partial, str) and partial:
            call = {"index": tool, "function": {"arguments": partial}}
            return [self._chunk({"tool_calls": [call]})]
        return []  # signatures and citations have no hub form

    def _said(self, field: str, text: Any) -> list[Json]:
        return [self._chunk({field: text})] if isinstance(text, str) and text else []

    def _message_delta(self, body: Json) -> list[Json]:
        self._note_usage(body.get("usage"))
        delta = body.get("delta")
        reason = delta.get("stop_reason") if isinstance(delta, dict) else None
        return [self._chunk({}, finish_reason(reason))] if isinstance(reason, str) else []

    def _message_stop(self, body: Json) -> list[Json]:
        self.done = True
        return []

    def _error(self, body: Json) -> list[Json]:
        raise StreamFailed(stream_failure(body))


def _parse_event(event: bytes) -> tuple[str, bytes] | None:
    """An event's name and data (its data lines joined); None without data."""
    name = ""
    data: list[bytes] = []
    for line in event.split(b"\n"):
        field, _, value = line.partition(b":")
        value = value[1:] if value.startswith(b" ") else value
        if field == b"event":
            name = value.decode("utf-8", "replace").strip()
        elif field == b"data":
            data.append(value)
    return (name, b"\n".join(data)) if data else None


def _index(body: Json) -> int:
    index = body.get("index")
    return index if isinstance(index, int) and not isinstance(index, bool) else -1
