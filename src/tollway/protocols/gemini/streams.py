"""streamGenerateContent?alt=sse: Gemini's stream read as hub chunks, and
hub chunks written as Gemini's stream.

Each event is ``data: <GenerateContentResponse>`` and a blank line; every one
carries the usage so far (the last is final), and the stream has no end event:
the answer is complete once a candidate reports its finishReason.
"""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollway.errors import ApiError, upstream_error
from tollway.protocols.base import StreamFailed
from tollway.protocols.gemini.answers import (
    blocked,
    finish_from_hub,
    finish_to_hub,
    function_call_part,
    message_parts,
    new_id,
    read_candidate,
)
from tollway.protocols.gemini.errors import error_object, failure
from tollway.protocols.gemini.fields import Json
from tollway.protocols.gemini.usage import usage_from_gemini, usage_metadata
from tollway.types import Usage

# An event this long without its blank line is not a stream we can read.
MAX_EVENT_BYTES = 64 * 1024 * 1024


class GeminiReader:
    """Gemini's SSE stream, in any split, as hub chunks."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = False
        self._buffer = b""
        self._id: str | None = None
        self._model = ""
        self._created = int(time.time())
        self._started: set[int] = set()
        self._calls: dict[int, int] = {}  # candidate index -> its tool calls so far

    def feed(self, data: bytes) -> list[Json]:
        self._buffer += data
        if b"\r" in self._buffer:  # the whole buffer: a CR and its LF may come apart
            self._buffer = self._buffer.replace(b"\r\n", b"\n")
        if b"\n\n" not in self._buffer:
            if len(self._buffer) > MAX_EVENT_BYTES:
                raise StreamFailed(upstream_error("The upstream sent an event too long to read."))
            return []
        *events, self._buffer = self._buffer.split(b"\n\n")
        chunks = []
        for event in events:
            parsed = _event_data(event)
            chunk = self._take(parsed) if isinstance(parsed, dict) else None
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _take(self, event: Json) -> Json | None:
        error = event.get("error")
        if error is not None:
            code = error.get("code") if isinstance(error, dict) else None
            status = code if isinstance(code, int) and 400 <= code <= 599 else 500
            raise StreamFailed(failure(status, orjson.dumps(event)))
        if "usageMetadata" in event:
            self.usage = usage_from_gemini(event["usageMetadata"])
        given, model = event.get("responseId"), event.get("modelVersion")
        if self._id is None:
            self._id = given if isinstance(given, str) and given else new_id("chatcmpl-")
        self._model = model if isinstance(model, str) else self._model
        candidates = event.get("candidates")
        choices = [
            self._choice(candidate, position)
            for position, candidate in enumerate(candidates if isinstance(candidates, list) else ())
            if isinstance(candidate, dict)
        ]
        if blocked(event):
            choices.append(self._delta(0, {}, "content_filter"))
        kept = [choice for choice in choices if choice is not None]
        if not kept:
            return None
        return {
            "id": self._id,
            "object": "chat.completion.chunk",
            "created": self._created,
            "model": self._model,
            "choices": kept,
        }

    def _choice(self, candidate: Json, position: int) -> Json | None:
        index = candidate.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        said = read_candidate(candidate)
        delta: Json = {}
        if said.texts and "".join(said.texts):
            delta["content"] = "".join(said.texts)
        if said.thoughts and "".join(said.thoughts):
            delta["reasoning_content"] = "".join(said.thoughts)
        if said.calls:
            first = self._calls.get(index, 0)
            delta["tool_calls"] = [{"index": first + k, **c} for k, c in enumerate(said.calls)]
            self._calls[index] = first + len(said.calls)
        reason = candidate.get("finishReason")
        finish = finish_to_hub(reason, index in self._calls) if isinstance(reason, str) else None
        return self._delta(index, delta, finish)

    def _delta(self, index: int, delta: Json, finish: str | None) -> Json | None:
        if finish is not None:
            self.done = True
        if index not in self._started:
            self._started.add(index)
            delta = {"role": "assistant", **delta}
        elif not delta and finish is None:
            return None
        return {"index": index, "delta": delta, "finish_reason": finish}


def _event_data(event: bytes) -> Any:
    data = [line[5:] for line in event.split(b"\n") if line.startswith(b"data:")]
    lines = [line.removeprefix(b" ") for line in data]
    if not lines:
        return None
    try:
        return orjson.loads(b"\n".join(lines))
    except orjson.JSONDecodeError:
        return None


def sse(body: Json) -> bytes:
    return b"data: " + orjson.dumps(body) + b"\r\n\r\n"


class GeminiWriter:
    """Hub chunks as Gemini's SSE stream. Function calls go out whole (Gemini
    streams no argument fragments) once their choice finishes; the finish
    reasons go out with the usage in the last event, as Gemini sends them."""

    def __init__(self, hub: Json) -> None:
        model = hub.get("model")
        self._model = model if isinstance(model, str) else None
        self._id: str | None = None
        self._seen: list[int] = []
        self._calls: dict[int, dict[int, Json]] = {}  # choice -> tool call index -> call so far
        self._finishes: dict[int, str] = {}

    def write(self, chunk: Json) -> bytes:
        given, model = chunk.get("id"), chunk.get("model")
        if self._id is None and isinstance(given, str) and given:
            self._id = given
        if isinstance(model, str) and model:
            self._model = model
        choices = chunk.get("choices")
        candidates = [
            self._candidate(choice, position)
            for position, choice in enumerate(choices if isinstance(choices, list) else ())
            if isinstance(choice, dict)
        ]
        kept = [candidate for candidate in candidates if candidate is not None]
        return self._event({"candidates": kept}) if kept else b""

    def finish(self, usage: Usage | None) -> bytes:
        candidates = []
        for index in self._seen or [0]:
            parts = self._flush(index) or [{"text": ""}]
            candidates.append(
                {
                    "content": {"role": "model", "parts": parts},
                    "finishReason": self._finishes.get(index, "STOP"),
                    "index": index,
                }
            )
        body: Json = {"candidates": candidates}
        if usage is not None:
            body["usageMetadata"] = usage_metadata(usage)
        return self._event(body)

    def fail(self, error: ApiError) -> bytes:
        return sse(error_object(error))

    def _candidate(self, choice: Json, position: int) -> Json | None:
        index = choice.get("index")
        index = index if isinstance(index, int) and not isinstance(index, bool) else position
        if index not in self._seen:
            self._seen.append(index)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        parts = message_parts({key: delta.get(key) for key in ("reasoning_content", "content")})
        self._gather(index, delta.get("tool_calls"))
        finish = finish_from_hub(choice.get("finish_reason"))
        if finish is not None:
            parts += self._flush(index)
            self._finishes[index] = finish
        if not parts:
            return None
        return {"content": {"role": "model", "parts": parts}, "index": index}

    def _gather(self, index: int, calls: Any) -> None:
        """Add streamed tool call fragments to the calls of choice ``index``."""
        for position, call in enumerate(calls if isinstance(calls, list) else ()):
            if not isinstance(call, dict):
                continue
            number = call.get("index")
            number = number if isinstance(number, int) else position
            slot = self._calls.setdefault(index, {}).setdefault(
                number, {"id": None, "name": "", "arguments": ""}
            )
            if isinstance(call.get("id"), str):
                slot["id"] = call["id"]
            function = call.get("function")
            function = function if isinstance(function, dict) else {}
            if isinstance(function.get("name"), str) and not slot["name"]:
                slot["name"] = function["name"]
            if isinstance(function.get("arguments"), str):
                slot["arguments"] += function["arguments"]

    def _flush(self, index: int) -> list[Json]:
        calls = self._calls.pop(index, {})
        return [
            function_call_part(call["id"], call["name"], call["arguments"])
            for _, call in sorted(calls.items())
            if call["name"]
        ]

    def _event(self, body: Json) -> bytes:
        if self._model is not None:
            body["modelVersion"] = self._model
        if self._id is None:
            self._id = new_id("")
        body["responseId"] = self._id
        return sse(body)
