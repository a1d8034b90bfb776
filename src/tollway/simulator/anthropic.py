"""``POST /v1/messages`` and ``POST /v1/messages/count_tokens``: Anthropic's Messages API.

The api key (when the simulator has one) comes as ``x-api-key`` or as
``Authorization: Bearer``; any ``anthropic-version`` is accepted. Errors have
Anthropic's shape ``{"type": "error", "error": {"type", "message"},
"request_id"}``.

Prompt tokens: the chat rule, so one conversation costs the same through
either protocol:

    prompt = 3 + (3 + system tokens, if a system prompt is given)
               + sum over messages of (3 + content tokens)

where content tokens are the words of a string content, of each ``text``
block and of each ``tool_result`` block's content, plus 85 per ``image``
block; other blocks (tool_use, thinking, document) count 0 and ``[sim:...]``
directives count as words. ``[sim:prompt_tokens=N]`` replaces the count.
``count_tokens`` answers ``{"input_tokens": prompt}``.

Anthropic's ``input_tokens`` excludes the cache. With R = ``[sim:cached=N]``
cache reads, W5 = ``[sim:cache_write=N]`` 5-minute writes and W1h =
``[sim:cache_write_1h=N]`` 1-hour writes, each capped at what the earlier
ones left of the prompt:

    input_tokens                = prompt - R - W5 - W1h
    cache_read_input_tokens     = R
    cache_creation_input_tokens = W5 + W1h  (cache_creation: the split)

Output tokens: visible + reasoning. visible = ``[sim:tokens=N]``, else
min(max_tokens, default_completion_tokens), one word each; stop_reason is
``max_tokens`` when max_tokens was the smaller. reasoning =
``[sim:reasoning=N]`` words in a ``thinking`` block (with a signature) that
comes first. When the request declares ``tools`` and the last message holds
``[sim:tool=NAME]`` (a declared tool), a ``tool_use`` block (input ``{}``)
follows the text and stop_reason is ``tool_use``, unless max_tokens cut the
text first.

Directives are read from the last message's text (its text blocks and its
tool results). Besides the chat ones: ``[sim:error_after=K]`` (a stream sends
K text deltas, then an ``overloaded_error`` event; a non-stream call answers
529) and ``[sim:no_usage]`` (no ``usage`` anywhere: a gateway's counting
fallback is then on trial).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from .anthropic_request import MessagesCall, count_prompt_tokens, parse_call
from .anthropic_stream import StreamPlan, stream_answer
from .chat import reply_pieces
from .common import (
    STATE,
    ApiError,
    Dialect,
    SimState,
    abort_connection,
    begin_call,
    body_seed,
    json_response,
    output_tokens,
    read_json,
    usage_wanted,
)

# (error type, default message) by status; other statuses are api_error.
_ERROR_KINDS: dict[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Bad request (simulated)."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission (simulated)."),
    404: ("not_found_error", "Not found (simulated)."),
    413: ("request_too_large", "Request exceeds the maximum allowed size (simulated)."),
    429: ("rate_limit_error", "Rate limited (simulated)."),
    500: ("api_error", "Internal server error (simulated)."),
    529: ("overloaded_error", "Overloaded"),
}
OVERLOADED = 529


@dataclass(slots=True)
class Usage:
    input: int
    output: int
    cache_read: int
    write_5m: int
    write_1h: int


@dataclass(slots=True)
class Answer:
    thinking: list[str]  # the thinking block's words (empty: no block)
    text: list[str]  # one piece per visible token
    tool: str | None  # the tool called, if any
    stop_reason: str
    usage: Usage | None


def error_body(status: int, message: str | None, request_id: str) -> dict[str, Any]:
    kind, default = _ERROR_KINDS.get(status, ("api_error", "Upstream failure (simulated)."))
    return {
        "type": "error",
        "error": {"type": kind, "message": message or default},
        "request_id": request_id,
    }


def error_response(request: web.Request, exc: ApiError) -> web.Response:
    request_id = request.app[STATE].new_id("req", "_")
    resp = json_response(error_body(exc.status, exc.message, request_id), exc.status)
    resp.headers["request-id"] = request_id
    return resp


def check_key(request: web.Request, api_key: str) -> None:
    headers = request.headers
    if headers.get("x-api-key") != api_key and headers.get("Authorization") != f"Bearer {api_key}":
        raise ApiError(401, "invalid x-api-key")


DIALECT = Dialect(
    owns=lambda path: path.startswith("/v1/messages"),
    check_key=check_key,
    error_response=error_response,
)


def cache_split(prompt: int, call: MessagesCall) -> Usage:
    """The prompt split into uncached input, cache reads and cache writes."""
    directives = call.directives
    left = prompt
    read = min(directives.cached or 0, left)
    left -= read
    write_5m = min(directives.cache_write or 0, left)
    left -= write_5m
    write_1h = min(directives.cache_write_1h or 0, left)
    return Usage(left - write_1h, 0, read, write_5m, write_1h)


def plan_answer(call: MessagesCall, state: SimState) -> Answer:
    directives = call.directives
    tool = directives.tool if call.tool_names else None
    if tool is not None and tool not in call.tool_names:
        raise ApiError(400, f"[sim:tool={tool}] names no tool of this request's tools")
    visible, capped = output_tokens(
        directives, call.max_tokens, state.config.default_completion_tokens
    )
    seed = body_seed({"system": call.system, "messages": call.messages})
    thinking = reply_pieces(seed, 1, directives.reasoning or 0)
    if capped:
        stop_reason, tool = "max_tokens", None  # the model ran out before calling it
    else:
        stop_reason = "end_turn" if tool is None else "tool_use"
    usage = None
    if usage_wanted(state, directives):
        prompt = directives.prompt_tokens
        if prompt is None:
            prompt = count_prompt_tokens(call.system, call.messages)
        usage = cache_split(prompt, call)
        usage.output = visible + len(thinking)
    return Answer(thinking, reply_pieces(seed, 0, visible), tool, stop_reason, usage)


def signature(thinking: str) -> str:
    """An opaque, deterministic stand-in for the thinking block's signature."""
    return base64.b64encode(hashlib.blake2b(thinking.encode(), digest_size=48).digest()).decode()


def usage_json(usage: Usage, output: int | None = None) -> dict[str, Any]:
    """``usage`` of a message (``output`` overrides output_tokens: message_start)."""
    return {
        "input_tokens": usage.input,
        "cache_creation_input_tokens": usage.write_5m + usage.write_1h,
        "cache_read_input_tokens": usage.cache_read,
        "cache_creation": {
            "ephemeral_5m_input_tokens": usage.write_5m,
            "ephemeral_1h_input_tokens": usage.write_1h,
        },
        "output_tokens": usage.output if output is None else output,
    }


def content_blocks(answer: Answer, tool_id: str | None) -> list[tuple[dict[str, Any], list[str]]]:
    """Each content block with the pieces a stream sends as its deltas."""
    blocks: list[tuple[dict[str, Any], list[str]]] = []
    if answer.thinking:
        thinking = "".join(answer.thinking)
        block = {"type": "thinking", "thinking": thinking, "signature": signature(thinking)}
        blocks.append((block, answer.thinking))
    if answer.text or (answer.tool is None and not blocks):
        blocks.append(({"type": "text", "text": "".join(answer.text)}, answer.text))
    if answer.tool is not None:
        blocks.append(({"type": "tool_use", "id": tool_id, "name": answer.tool, "input": {}}, []))
    return blocks


def message_body(
    call: MessagesCall, answer: Answer, message_id: str, content: list[dict[str, Any]]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": call.model,
        "content": content,
        "stop_reason": answer.stop_reason,
        "stop_sequence": None,
    }
    if answer.usage is not None:
        body["usage"] = usage_json(answer.usage)
    return body


def stream_plan(
    call: MessagesCall, answer: Answer, message_id: str, tool_id: str | None
) -> StreamPlan:
    """What the stream sends: the message_start skeleton, the blocks, the final delta."""
    start = message_body(call, answer, message_id, [])
    start["stop_reason"] = None
    delta_usage = None
    if answer.usage is not None:
        # message_start reports the output begun; message_delta the final count.
        start["usage"] = usage_json(answer.usage, min(1, answer.usage.output))
        delta_usage = usage_json(answer.usage)
        del delta_usage["cache_creation"]  # message_delta's usage has no breakdown
    return StreamPlan(start, content_blocks(answer, tool_id), answer.stop_reason, delta_usage)


async def messages(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    call = parse_call(await read_json(request))
    answer = plan_answer(call, state)  # validates before any delay
    await begin_call(state, call.directives)
    message_id = state.new_id("msg", "_")
    tool_id = state.new_id("toolu", "_") if answer.tool is not None else None
    if call.stream:
        plan = stream_plan(call, answer, message_id, tool_id)
        return await stream_answer(request, state, call.directives, plan)
    if call.directives.drop_after is not None:
        abort_connection(request)
        return web.Response()  # never sent: the connection is already closed
    if call.directives.error_after is not None:
        raise ApiError(OVERLOADED)
    content = [block for block, _ in content_blocks(answer, tool_id)]
    return json_response(message_body(call, answer, message_id, content))


async def count_tokens(request: web.Request) -> web.Response:
    call = parse_call(await read_json(request), counting=True)
    prompt = call.directives.prompt_tokens
    if prompt is None:
        prompt = count_prompt_tokens(call.system, call.messages)
    return json_response({"input_tokens": prompt})


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/messages", messages)
    app.router.add_post("/v1/messages/count_tokens", count_tokens)
