"""A Responses stream read as hub chunks: text, refusal and reasoning deltas
as chat deltas, function calls as tool-call deltas, and the terminal event
(``response.completed`` or ``response.incomplete``) as the finish chunk, its
usage kept as ``usage``. ``response.failed`` and ``error`` events end the
stream as failed (``StreamFailed``)."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import upstream_error
from tollway.protocols.base import Json, StreamFailed
from tollway.protocols.responses.answers import finish_of, usage_of
from tollway.protocols.sse import SseSplitter
from tollway.types import Usage

TEXT_DELTAS = {
    "response.output_text.delta": "content",
    "response.refusal.delta": "refusal",
    "response.reasoning_summary_text.delta": "reasoning_content",
    "response.reasoning_text.delta": "reasoning_content",
}
TERMINAL = frozenset({"response.completed", "response.incomplete"})
FAILED = frozenset({"response.failed", "error"})


class ResponsesReader:
    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = False
        self._events = SseSplitter()
        self._id = ""
        self._model: Any = None
        self._calls: dict[Any, int] = {}  # output_index -> hub tool-call index

    def feed(self, data: bytes) -> list[Json]:
        chunks = []
        for _, payload in self._events.feed(data):
            try:
                parsed = orjson.loads(payload)
            except orjson.JSONDecodeError:
                continue
            if isinstance(parsed, dict):
                chunk = self._take(parsed)
                if chunk is not None:
                    chunks.append(chunk)
        return chunks

    def _take(self, event: Json) -> Json | None:
        kind = event.get("type")
        if not isinstance(kind, str):
            return None
        if kind in TEXT_DELTAS:
            text = event.get("delta")
            return self._chunk({TEXT_DELTAS[kind]: text}) if isinstance(text, str) else None
        if kind == "response.output_item.added":
            return self._call_added(event)
        if kind == "response.function_call_arguments.delta":
            index = self._calls.get(_key(event.get("output_index")))
            text = event.get("delta")
            if index is None or not isinstance(text, str):
                return None
            return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": text}}]})
        if kind in FAILED:
            raise StreamFailed(upstream_error(f"The upstream failed: {_failure(event)}"))
        response = event.get("response")
        if not isinstance(response, dict):
            return None
        if kind == "response.created":
            found = response.get("id")
            self._id = found if isinstance(found, str) else ""
            self._model = response.get("model")
        elif kind in TERMINAL:
            self.done = True
            self.usage = usage_of(response)
            return self._chunk({}, finish_of(response, bool(self._calls)))
        return None

    def _call_added(self, event: Json) -> Json | None:
        item = event.get("item")
        if not isinstance(item, dict) or item.get("type") != "function_call":
            return None
        index = len(self._calls)
        self._calls[_key(event.get("output_index"))] = index
        call_id, name = item.get("call_id"), item.get("name")
        call = {
            "index": index,
            "id": call_id if isinstance(call_id, str) else f"call_{index}",
            "type": "function",
            "function": {"name": name if isinstance(name, str) else "", "arguments": ""},
        }
        return self._chunk({"tool_calls": [call]})

    def _chunk(self, delta: Json, finish: str | None = None) -> Json:
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": 0,
            "model": self._model,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
        }


def _key(value: Any) -> Any:
    return value if isinstance(value, int | str) else None


def _failure(event: Json) -> str:
    response = event.get("response")
    error = response.get("error") if isinstance(response, dict) else event
    message = error.get("message") if isinstance(error, dict) else None
    return message if isinstance(message, str) else "its stream reported an error"
