"""``POST /v1/responses``: OpenAI's Responses API, deterministic, streamed or not.

Input tokens (a fixed formula a test can compute, as chat's):

    input_tokens = 3 + (3 + words of ``instructions``, when given)
                     + sum over input items of (3 + their content tokens)

where content tokens are the whitespace-separated words of a string content,
of each ``input_text``/``output_text`` part and of a ``function_call_output``'s
output, plus 85 per ``input_image``; a ``function_call`` item counts 3.

Output tokens: ``[sim:tokens=N]`` or min(max_output_tokens, the default)
visible words, plus ``[sim:reasoning=N]`` reasoning tokens (a ``reasoning``
item with an empty summary comes first); ``[sim:cached=N]`` reports N input
tokens as cached. Directives are read from the last input item when it is a
message. When the request declares function tools and that message holds
``[sim:tool=NAME]`` (a declared tool), a ``function_call`` item (arguments
``{}``) follows the message. A ``max_output_tokens`` below the default ends
the response ``incomplete`` (``max_output_tokens``).

The simulator stores nothing: ``previous_response_id`` is a 400
(``previous_response_not_found``), as for an id OpenAI does not know. A model
named ``no-responses/...`` gets a 404, as from an OpenAI-compatible server
without this endpoint (its chat completions still answer).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .chat import IMAGE_PART_TOKENS, PER_MESSAGE_TOKENS, REPLY_PRIMING_TOKENS, reply_pieces
from .common import (
    STATE,
    ApiError,
    SimState,
    abort_connection,
    begin_call,
    body_seed,
    chunk_delay,
    int_param,
    json_response,
    output_tokens,
    read_json,
    require_model,
    usage_wanted,
)
from .directives import DirectiveError, Directives, parse_directives
from .streaming import SSE_HEADERS

NO_RESPONSES_PREFIX = "no-responses/"


@dataclass(slots=True)
class ResponsesCall:
    model: str
    instructions: str | None
    items: list[Any]
    max_output_tokens: int | None
    stream: bool
    tools: frozenset[str]
    directives: Directives


@dataclass(slots=True)
class Plan:
    output: list[dict[str, Any]]  # the final output items
    pieces: list[str]  # the message's text, a word a delta
    incomplete: bool
    usage: dict[str, Any] | None


def parse_call(body: dict[str, Any]) -> ResponsesCall:
    model = require_model(body)
    if model.startswith(NO_RESPONSES_PREFIX):
        raise ApiError(404, f"The model '{model}' does not exist", param="model")
    if body.get("previous_response_id") is not None:
        raise ApiError(
            400,
            f"Previous response with id '{body['previous_response_id']}' not found.",
            param="previous_response_id",
            code="previous_response_not_found",
        )
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise ApiError(400, "input must be a string or a non-empty array of items", param="input")
    instructions = body.get("instructions")
    if instructions is not None and not isinstance(instructions, str):
        raise ApiError(400, "instructions must be a string", param="instructions")
    last = items[-1]
    text = _text(last.get("content")) if last.get("type", "message") == "message" else ""
    try:
        directives = parse_directives(text)
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="input") from exc
    return ResponsesCall(
        model,
        instructions,
        items,
        int_param(body, "max_output_tokens", 1, 10**9),
        body.get("stream") is True,
        _tool_names(body.get("tools")),
        directives,
    )


def _tool_names(tools: Any) -> frozenset[str]:
    if tools is None:
        return frozenset()
    if not isinstance(tools, list):
        raise ApiError(400, "tools must be an array", param="tools")
    names = set()
    for tool in tools:
        if not isinstance(tool, dict):
            raise ApiError(400, "each tool must be an object", param="tools")
        if tool.get("type") == "function" and isinstance(tool.get("name"), str):
            names.add(tool["name"])
    return frozenset(names)


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def input_tokens(call: ResponsesCall) -> int:
    total = REPLY_PRIMING_TOKENS
    if call.instructions is not None:
        total += PER_MESSAGE_TOKENS + len(call.instructions.split())
    for item in call.items:
        total += PER_MESSAGE_TOKENS + _item_tokens(item)
    return total


def _item_tokens(item: dict[str, Any]) -> int:
    kind = item.get("type", "message")
    if kind == "function_call_output":
        output = item.get("output")
        return len(_text(output).split())
    if kind != "message":
        return 0
    content = item.get("content")
    images = 0
    if isinstance(content, list):
        images = sum(1 for p in content if isinstance(p, dict) and p.get("type") == "input_image")
    return len(_text(content).split()) + IMAGE_PART_TOKENS * images


def plan(call: ResponsesCall, state: SimState) -> Plan:
    directives = call.directives
    tool = directives.tool if call.tools else None
    if tool is not None and tool not in call.tools:
        raise ApiError(400, f"[sim:tool={tool}] names no tool of this request's tools")
    visible, capped = output_tokens(
        directives, call.max_output_tokens, state.config.default_completion_tokens
    )
    if capped:
        tool = None  # the model ran out before calling it
    seed = body_seed({"instructions": call.instructions, "input": call.items})
    pieces = reply_pieces(seed, 0, visible)
    reasoning = directives.reasoning or 0
    output: list[dict[str, Any]] = []
    if reasoning:
        output.append({"type": "reasoning", "id": state.new_id("rs", "_"), "summary": []})
    output.append(
        {
            "type": "message",
            "id": state.new_id("msg", "_"),
            "status": "incomplete" if capped else "completed",
            "role": "assistant",
            "content": [
                {"type": "output_text", "text": "".join(pieces), "annotations": [], "logprobs": []}
            ],
        }
    )
    if tool is not None:
        output.append(
            {
                "type": "function_call",
                "id": state.new_id("fc", "_"),
                "call_id": state.new_id("call", "_"),
                "name": tool,
                "arguments": "{}",
                "status": "completed",
            }
        )
    usage = None
    if usage_wanted(state, directives):
        prompt = directives.prompt_tokens
        if prompt is None:
            prompt = input_tokens(call)
        cached = min(directives.cached or 0, prompt)
        written = min(directives.cache_write or 0, prompt - cached)
        usage = {
            "input_tokens": prompt,
            "input_tokens_details": {"cached_tokens": cached, "cache_write_tokens": written},
            "output_tokens": visible + reasoning,
            "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": prompt + visible + reasoning,
        }
    return Plan(output, pieces, capped, usage)


def response_body(
    call: ResponsesCall, body: dict[str, Any], response_id: str, status: str, output: list[Any]
) -> dict[str, Any]:
    return {
        "id": response_id,
        "object": "response",
        "created_at": int(time.time()),
        "status": status,
        "completed_at": int(time.time()) if status == "completed" else None,
        "error": None,
        "incomplete_details": {"reason": "max_output_tokens"} if status == "incomplete" else None,
        "instructions": call.instructions,
        "max_output_tokens": call.max_output_tokens,
        "model": call.model,
        "output": output,
        "parallel_tool_calls": body.get("parallel_tool_calls", True),
        "previous_response_id": None,
        "reasoning": {"effort": None, "summary": None},
        "service_tier": "default",
        "store": body.get("store", True),
        "temperature": body.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools", []),
        "top_p": body.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": None,
        "user": None,
        "metadata": body.get("metadata") or {},
    }


async def create(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    body = await read_json(request)
    call = parse_call(body)
    answer = plan(call, state)  # validates before any delay
    await begin_call(state, call.directives)
    response_id = state.new_id("resp", "_")
    status = "incomplete" if answer.incomplete else "completed"
    if call.stream:
        return await _stream(request, state, call, body, response_id, answer)
    if call.directives.drop_after is not None:
        abort_connection(request)
        return web.Response()  # never sent: the connection is already closed
    final = response_body(call, body, response_id, status, answer.output)
    final["usage"] = answer.usage
    return json_response(final)


class _Events:
    """The frames of one stream, numbered from 0."""

    def __init__(self, resp: web.StreamResponse) -> None:
        self.resp = resp
        self.sequence = 0

    async def send(self, payload: dict[str, Any]) -> None:
        payload["sequence_number"] = self.sequence
        self.sequence += 1
        kind = payload["type"].encode()
        await self.resp.write(b"event: " + kind + b"\ndata: " + orjson.dumps(payload) + b"\n\n")


async def _stream(
    request: web.Request,
    state: SimState,
    call: ResponsesCall,
    body: dict[str, Any],
    response_id: str,
    answer: Plan,
) -> web.StreamResponse:
    resp = web.StreamResponse(headers=SSE_HEADERS)
    await resp.prepare(request)
    events = _Events(resp)
    opening = response_body(call, body, response_id, "in_progress", [])
    await events.send({"type": "response.created", "response": opening})
    await events.send({"type": "response.in_progress", "response": opening})
    delay = chunk_delay(state, call.directives)
    for index, item in enumerate(answer.output):
        if item["type"] == "message":
            if not await _message(events, index, item, answer.pieces, call.directives, delay):
                abort_connection(request)
                return resp
            continue
        opened = {**item, "arguments": ""} if item["type"] == "function_call" else item
        await events.send(
            {"type": "response.output_item.added", "output_index": index, "item": opened}
        )
        if item["type"] == "function_call":
            where = {"item_id": item["id"], "output_index": index}
            await events.send(
                {
                    **where,
                    "type": "response.function_call_arguments.delta",
                    "delta": item["arguments"],
                }
            )
            await events.send(
                {
                    **where,
                    "type": "response.function_call_arguments.done",
                    "arguments": item["arguments"],
                }
            )
        await events.send(
            {"type": "response.output_item.done", "output_index": index, "item": item}
        )
    status = "incomplete" if answer.incomplete else "completed"
    final = response_body(call, body, response_id, status, answer.output)
    final["usage"] = answer.usage
    await events.send({"type": f"response.{status}", "response": final})
    await resp.write_eof()
    return resp


async def _message(
    events: _Events,
    index: int,
    item: dict[str, Any],
    pieces: list[str],
    directives: Directives,
    delay: float,
) -> bool:
    """The message's events; False when ``[sim:drop_after=K]`` cut the stream."""
    opened = {**item, "status": "in_progress", "content": []}
    await events.send({"type": "response.output_item.added", "output_index": index, "item": opened})
    where = {"item_id": item["id"], "output_index": index, "content_index": 0}
    empty = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
    await events.send({**where, "type": "response.content_part.added", "part": empty})
    for sent, piece in enumerate(pieces):
        if directives.drop_after is not None and sent >= directives.drop_after:
            return False
        if delay:
            await asyncio.sleep(delay)
        await events.send(
            {**where, "type": "response.output_text.delta", "delta": piece, "logprobs": []}
        )
    if directives.drop_after is not None and len(pieces) <= directives.drop_after:
        return False
    part = item["content"][0]
    await events.send(
        {**where, "type": "response.output_text.done", "text": part["text"], "logprobs": []}
    )
    await events.send({**where, "type": "response.content_part.done", "part": part})
    await events.send({"type": "response.output_item.done", "output_index": index, "item": item})
    return True


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/responses", create)
