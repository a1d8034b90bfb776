"""A stored response replayed as the stream that would have carried it
(``GET /v1/responses/{id}?stream=true``): the events of the writer's order,
each item's text or arguments in one delta, numbered from 0;
``starting_after`` skips the events a client already has."""

from __future__ import annotations

from typing import Any

from tollway.protocols.responses.writer import event

Json = dict[str, Any]
TERMINAL = {"completed": "response.completed", "incomplete": "response.incomplete"}


def replay(response: Json, starting_after: int | None = None) -> bytes:
    events = _events(response)
    out = []
    for number, payload in enumerate(events):
        if starting_after is None or number > starting_after:
            out.append(event({**payload, "sequence_number": number}))
    return b"".join(out)


def _events(response: Json) -> list[Json]:
    output = response.get("output")
    items = [item for item in output if isinstance(item, dict)] if isinstance(output, list) else []
    opening = {**response, "status": "in_progress", "output": [], "usage": None}
    events: list[Json] = [
        {"type": "response.created", "response": opening},
        {"type": "response.in_progress", "response": opening},
    ]
    for index, item in enumerate(items):
        events.extend(_item_events(index, item))
    status = response.get("status")
    kind = TERMINAL.get(status, "response.failed") if isinstance(status, str) else "response.failed"
    events.append({"type": kind, "response": response})
    return events


def _item_events(index: int, item: Json) -> list[Json]:
    kind = item.get("type")
    where = {"item_id": item.get("id"), "output_index": index}
    if kind == "message":
        added = {**item, "status": "in_progress", "content": []}
        events = [{"type": "response.output_item.added", "output_index": index, "item": added}]
        content = item.get("content")
        for number, part in enumerate(content if isinstance(content, list) else ()):
            events.extend(_part_events({**where, "content_index": number}, part))
    elif kind == "function_call":
        added = {**item, "status": "in_progress", "arguments": ""}
        arguments = item.get("arguments") if isinstance(item.get("arguments"), str) else ""
        events = [
            {"type": "response.output_item.added", "output_index": index, "item": added},
            {**where, "type": "response.function_call_arguments.delta", "delta": arguments},
            {**where, "type": "response.function_call_arguments.done", "arguments": arguments},
        ]
    else:
        events = [{"type": "response.output_item.added", "output_index": index, "item": item}]
    events.append({"type": "response.output_item.done", "output_index": index, "item": item})
    return events


def _part_events(where: Json, part: Any) -> list[Json]:
    if not isinstance(part, dict) or part.get("type") != "output_text":
        return [
            {**where, "type": "response.content_part.added", "part": part},
            {**where, "type": "response.content_part.done", "part": part},
        ]
    text = part.get("text") if isinstance(part.get("text"), str) else ""
    empty = {**part, "text": ""}
    return [
        {**where, "type": "response.content_part.added", "part": empty},
        {**where, "type": "response.output_text.delta", "delta": text, "logprobs": []},
        {**where, "type": "response.output_text.done", "text": text, "logprobs": []},
        {**where, "type": "response.content_part.done", "part": part},
    ]
