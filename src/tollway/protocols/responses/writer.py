"""Hub chunks written as a Responses stream, in the order the SDK's
``client.responses.stream()`` insists on: ``response.created`` and
``response.in_progress``; per output item ``output_item.added``, its parts
and deltas, their ``.done`` events and ``output_item.done``; then
``response.completed`` (or ``response.incomplete``) carrying every item and
the usage. Every event has a ``sequence_number`` from 0; no ``[DONE]``
follows, as OpenAI sends none."""

from __future__ import annotations

import time
from typing import Any

import orjson

from tollway.errors import ApiError
from tollway.protocols.responses.answers import (
    INCOMPLETE,
    call_item,
    ended,
    message_item,
    new_item_id,
    reasoning_item,
    response_id,
    skeleton,
)
from tollway.types import Usage

Json = dict[str, Any]


def event(payload: Json) -> bytes:
    return b"event: " + payload["type"].encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


class ResponsesWriter:
    """One stream's state: the items written so far, the one open (a
    reasoning summary, the message's text or a function call) and how the hub
    said it finished."""

    def __init__(self, hub: Json) -> None:
        self._model = hub.get("model")
        self._response: Json | None = None
        self._sequence = 0
        self._items: list[Json] = []
        self._open: str | None = None  # "reasoning", "message" or "call"
        self._text: list[str] = []  # the open item's text (or arguments)
        self._calls: dict[Any, int] = {}  # hub tool-call index -> output index
        self._finish: Any = None

    def write(self, chunk: Json) -> bytes:
        out = [] if self._response is not None else [self._start(chunk)]
        choices = chunk.get("choices")
        choice = choices[0] if isinstance(choices, list) and choices else None
        if not isinstance(choice, dict):
            return b"".join(out)
        delta = choice.get("delta")
        delta = delta if isinstance(delta, dict) else {}
        out.extend(self._reasoning(delta.get("reasoning_content")))
        out.extend(self._message(delta.get("content")))
        out.extend(self._message(delta.get("refusal")))
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            if isinstance(call, dict):
                out.extend(self._call(call))
        if choice.get("finish_reason") is not None:
            self._finish = choice["finish_reason"]
        return b"".join(out)

    def finish(self, usage: Usage | None) -> bytes:
        out = [] if self._response is not None else [self._start({})]
        out.append(self._close())
        response = ended(self._snapshot(), self._finish, usage)
        kind = "response.completed" if response["status"] == "completed" else "response.incomplete"
        out.append(self._event({"type": kind, "response": response}))
        return b"".join(out)

    def fail(self, error: ApiError) -> bytes:
        out = [] if self._response is not None else [self._start({})]
        response = self._snapshot()
        response["status"] = "failed"
        response["error"] = {"code": error.code, "message": error.message}
        out.append(self._event({"type": "response.failed", "response": response}))
        return b"".join(out)

    # -- the parts ---------------------------------------------------------

    def _start(self, chunk: Json) -> bytes:
        model = chunk.get("model") or self._model
        created = chunk.get("created")
        created = created if isinstance(created, int) else int(time.time())
        self._response = skeleton(response_id(chunk.get("id")), model, created, "in_progress")
        created_event = self._event({"type": "response.created", "response": self._snapshot()})
        progress = self._event({"type": "response.in_progress", "response": self._snapshot()})
        return created_event + progress

    def _snapshot(self) -> Json:
        assert self._response is not None
        return {**self._response, "output": [dict(item) for item in self._items]}

    def _event(self, payload: Json) -> bytes:
        payload["sequence_number"] = self._sequence
        self._sequence += 1
        return event(payload)

    def _reasoning(self, text: Any) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        out = []
        if self._open != "reasoning":
            out.append(self._begin("reasoning", reasoning_item(new_item_id("rs"), "")))
            out.append(
                self._event(
                    {
                        **self._where(),
                        "type": "response.reasoning_summary_part.added",
                        "summary_index": 0,
                        "part": _summary(""),
                    }
                )
            )
        self._text.append(text)
        out.append(
            self._event(
                {
                    **self._where(),
                    "type": "response.reasoning_summary_text.delta",
                    "summary_index": 0,
                    "delta": text,
                }
            )
        )
        return out

    def _message(self, text: Any) -> list[bytes]:
        if not isinstance(text, str) or not text:
            return []
        out = []
        if self._open != "message":
            item = message_item(new_item_id("msg"), "", "in_progress")
            item["content"] = []
            out.append(self._begin("message", item))
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out.append(
                self._event(
                    {
                        **self._where(),
                        "type": "response.content_part.added",
                        "content_index": 0,
                        "part": part,
                    }
                )
            )
        self._text.append(text)
        out.append(
            self._event(
                {
                    **self._where(),
                    "type": "response.output_text.delta",
                    "content_index": 0,
                    "delta": text,
                    "logprobs": [],
                }
            )
        )
        return out

    def _call(self, call: Json) -> list[bytes]:
        function = call.get("function")
        function = function if isinstance(function, dict) else {}
        index = call.get("index")
        index = index if isinstance(index, int | str) else 0
        out = []
        if self._open != "call" or self._calls.get(index) != len(self._items) - 1:
            call_id, name = call.get("id"), function.get("name")
            item = call_item(
                new_item_id("fc"),
                call_id if isinstance(call_id, str) else new_item_id("call"),
                name if isinstance(name, str) else "",
                "",
                "in_progress",
            )
            out.append(self._begin("call", item))
            self._calls[index] = len(self._items) - 1
        arguments = function.get("arguments")
        if isinstance(arguments, str) and arguments:
            self._text.append(arguments)
            out.append(
                self._event(
                    {
                        **self._where(),
                        "type": "response.function_call_arguments.delta",
                        "delta": arguments,
                    }
                )
            )
        return out

    def _where(self) -> Json:
        return {"item_id": self._items[-1]["id"], "output_index": len(self._items) - 1}

    def _begin(self, kind: str, item: Json) -> bytes:
        closed = self._close()
        self._items.append(item)
        self._open = kind
        self._text = []
        added = {
            "type": "response.output_item.added",
            "output_index": len(self._items) - 1,
            "item": dict(item),
        }
        return closed + self._event(added)

    def _close(self) -> bytes:
        """The open item's closing events, and the item as it ended."""
        kind, self._open = self._open, None
        if kind is None:
            return b""
        text = "".join(self._text)
        where = self._where()
        item = self._items[-1]
        out = []
        if kind == "reasoning":
            out.append(
                self._event(
                    {
                        **where,
                        "type": "response.reasoning_summary_text.done",
                        "summary_index": 0,
                        "text": text,
                    }
                )
            )
            out.append(
                self._event(
                    {
                        **where,
                        "type": "response.reasoning_summary_part.done",
                        "summary_index": 0,
                        "part": _summary(text),
                    }
                )
            )
            item.update(reasoning_item(item["id"], text))
        elif kind == "message":
            out.append(
                self._event(
                    {
                        **where,
                        "type": "response.output_text.done",
                        "content_index": 0,
                        "text": text,
                        "logprobs": [],
                    }
                )
            )
            done = message_item(item["id"], text)
            out.append(
                self._event(
                    {
                        **where,
                        "type": "response.content_part.done",
                        "content_index": 0,
                        "part": done["content"][0],
                    }
                )
            )
            item.update(done)
            if isinstance(self._finish, str) and self._finish in INCOMPLETE:
                item["status"] = "incomplete"
        else:
            out.append(
                self._event(
                    {**where, "type": "response.function_call_arguments.done", "arguments": text}
                )
            )
            item.update(arguments=text, status="completed")
        out.append(
            self._event(
                {
                    "type": "response.output_item.done",
                    "output_index": where["output_index"],
                    "item": dict(item),
                }
            )
        )
        return b"".join(out)


def _summary(text: str) -> Json:
    return {"type": "summary_text", "text": text}
