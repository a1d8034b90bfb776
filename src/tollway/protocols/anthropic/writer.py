"""Hub chunks written as an Anthropic stream, in the order Anthropic sends
its events: ``message_start``; per content block ``content_block_start``,
its deltas, ``content_block_stop``; then ``message_delta`` (the stop reason
and usage) and ``message_stop``."""

from __future__ import annotations

import uuid
from typing import Any

import orjson

from tollway.errors import ApiError
from tollway.protocols.anthropic.answers import message_id, stop_reason
from tollway.protocols.anthropic.errors import error_payload
from tollway.protocols.anthropic.usage import usage_to_anthropic
from tollway.types import Usage

Json = dict[str, Any]


def event(kind: str, payload: Json) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class AnthropicWriter:
    """One stream's state: whether it has started, which content block is
    open (text, thinking or a tool call) and how the hub said it finished."""

    def __init__(self, hub: Json) -> None:
        model = hub.get("model")
        self._model = model if isinstance(model, str) else ""
        self._started = False
        self._open: str | None = None  # the kind of the open block
        self._index = -1  # the open block's index in the message
        self._tool: Any = None  # the hub index of the open tool call
        self._finish: Any = None

    def write(self, chunk: Json) -> bytes:
        out = [] if self._started else [self._start(chunk)]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return b"".join(out)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        out.extend(self._text("thinking", delta.get("reasoning_content")))
        out.extend(self._text("text", delta.get("content")))
        out.extend(self._text("text", delta.get("refusal")))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out.extend(self._tool_call(call))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def finish(self, usage: Usage | None) -> bytes:
        out = [] if self._started else [self._start({})]
        out.append(self._close())
        delta = {"stop_reason": stop_reason(self._finish), "stop_sequence": None}
        closing = {"type": "message_delta", "delta": delta, "usage": usage_to_anthropic(usage)}
        out.append(event("message_delta", closing))
        out.append(event("message_stop", {"type": "message_stop"}))
        return b"".join(out)

    def fail(self, error: ApiError) -> bytes:
        return event("error", error_payload(error))

    def _start(self, chunk: Json) -> bytes:
        self._started = True
        model = chunk.get("model")
        message: Json = {
            "id": message_id(chunk.get("id")),
            "type": "message",
            "role": "assistant",
            "model": model if isinstance(model, str) and model else self._model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        return event("message_start", {"type": "message_start", "message": message})

    def _text(self, kind: str, text: Any) -> list[bytes]:
        """Text or thinking, in a block of that kind (opened when another is open)."""
        if not isinstance(text, str) or not text:
            return []
        out = []
        if self._open != kind:
            empty = {"type": "text", "text": ""} if kind == "text" else _empty_thinking()
            out.append(self._begin(kind, empty))
        field = "text" if kind == "text" else "thinking"
        out.append(self._delta({"type": f"{kind}_delta", field: text}))
        return out

    def _tool_call(self, call: Json) -> list[bytes]:
        """A tool call's delta: a new call (a new hub index) opens a tool_use block."""
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        out = []
        index = call.get("index", 0)
        if self._open != "tool_use" or index != self._tool:
            call_id = call.get("id")
            name = function.get("name")
            block = {
                "type": "tool_use",
                "id": call_id if isinstance(call_id, str) else f"toolu_{uuid.uuid4().hex}",
                "name": name if isinstance(name, str) else "",
                "input": {},
            }
            out.append(self._begin("tool_use", block))
            self._tool = index
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            out.append(self._delta({"type": "input_json_delta", "partial_json": arguments}))
        return out

    def _begin(self, kind: str, block: Json) -> bytes:
        closed = self._close()
        self._index += 1
        self._open = kind
        start = {"type": "content_block_start", "index": self._index, "content_block": block}
        return closed + event("content_block_start", start)

    def _delta(self, delta: Json) -> bytes:
        body = {"type": "content_block_delta", "index": self._index, "delta": delta}
        return event("content_block_delta", body)

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return event("content_block_stop", {"type": "content_block_stop", "index": self._index})


def _empty_thinking() -> Json:
    # Anthropic's thinking blocks carry a signature; hub reasoning has none.
    return {"type": "thinking", "thinking": "", "signature": ""}
