"""``POST /v1/chat/completions``: deterministic replies, streamed or not.

Prompt tokens (a fixed formula a test can compute, no tokenizer needed):

    prompt_tokens = 3 + sum over messages of (3 + content tokens)

where content tokens are the whitespace-separated words of a string content
or of each text part, plus 85 per image part; other parts and fields
(tool_calls, name, tools) count 0. ``[sim:...]`` directives count as words.

Completion tokens per choice: ``[sim:tokens=N]`` if given, else
min(max_completion_tokens or max_tokens, default_completion_tokens); each
visible token is one word. Reasoning tokens are added on top.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .common import (
    STATE,
    SYSTEM_FINGERPRINT,
    ApiError,
    SimState,
    abort_connection,
    begin_call,
    int_param,
    json_response,
    read_json,
    require_model,
    usage_wanted,
)
from .directives import DirectiveError, Directives, content_text, parse_directives
from .streaming import stream_reply

PER_MESSAGE_TOKENS = 3
REPLY_PRIMING_TOKENS = 3
IMAGE_PART_TOKENS = 85
_IMAGE_PARTS = frozenset({"image_url", "input_image", "image"})
MAX_N = 128

# 64 words: one digest byte (masked to 6 bits) picks each output token.
_VOCABULARY = """the quick brown fox jumps over a lazy dog while seven silver trains cross
old bridges under quiet northern skies and every careful engineer counts tokens twice
because billing must be exact so ledgers balance cleanly at dawn when gateways route
streams through patient servers toward distant models that answer politely with words
like these nine small lanterns glow above green fields near rivers"""
_WORDS = tuple(_VOCABULARY.split())
assert len(_WORDS) == 64, len(_WORDS)
_SPACED = tuple(" " + word for word in _WORDS)


@dataclass(slots=True)
class ChatCall:
    model: str
    messages: list[Any]
    n: int
    max_tokens: int | None
    stream: bool
    include_usage: bool
    directives: Directives


@dataclass(slots=True)
class Reply:
    choices: list[list[str]]  # per choice, the text pieces (one per token)
    finish_reason: str
    usage: dict[str, Any] | None


def parse_call(body: dict[str, Any]) -> ChatCall:
    model = require_model(body)
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise ApiError(400, "messages must be a non-empty array", param="messages")
    stream = body.get("stream") is True
    options = body.get("stream_options")
    include_usage = isinstance(options, dict) and options.get("include_usage") is True
    max_tokens = int_param(body, "max_completion_tokens", 1, 10**9)
    if max_tokens is None:
        max_tokens = int_param(body, "max_tokens", 1, 10**9)
    last = messages[-1]
    try:
        directives = parse_directives(content_text(last.get("content")))
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="messages") from exc
    except AttributeError as exc:  # the last message is not an object
        raise ApiError(400, "each message must be an object", param="messages") from exc
    n = int_param(body, "n", 1, MAX_N) or 1
    return ChatCall(model, messages, n, max_tokens, stream, include_usage, directives)


def count_prompt_tokens(messages: list[Any]) -> int:
    total = REPLY_PRIMING_TOKENS
    for message in messages:
        if not isinstance(message, dict):
            raise ApiError(400, "each message must be an object", param="messages")
        total += PER_MESSAGE_TOKENS + _content_tokens(message.get("content"))
    return total


def _content_tokens(content: Any) -> int:
    if isinstance(content, str):
        return len(content.split())
    if not isinstance(content, list):
        return 0
    total = 0
    for part in content:
        if not isinstance(part, dict):
            continue
        kind = part.get("type")
        if isinstance(kind, str) and kind in _IMAGE_PARTS:
            total += IMAGE_PART_TOKENS
        elif isinstance(part.get("text"), str):
            total += len(part["text"].split())
    return total


def reply_pieces(seed: bytes, choice: int, count: int) -> list[str]:
    """``count`` words derived from the request hash; joined they are the content."""
    if count <= 0:
        return []
    digest = hashlib.shake_256(seed + choice.to_bytes(4, "little")).digest(count)
    pieces = [_SPACED[byte & 63] for byte in digest]
    pieces[0] = _WORDS[digest[0] & 63].capitalize()
    return pieces


def plan_reply(call: ChatCall, state: SimState) -> Reply:
    directives, default = call.directives, state.config.default_completion_tokens
    prompt_tokens = count_prompt_tokens(call.messages)
    if directives.prompt_tokens is not None:
        prompt_tokens = directives.prompt_tokens
    finish_reason = "stop"
    if directives.tokens is not None:
        visible = directives.tokens
    elif call.max_tokens is not None and call.max_tokens < default:
        visible, finish_reason = call.max_tokens, "length"
    else:
        visible = default
    # The answer depends on the messages only; sorted keys so a gateway that
    # re-serialises the body in another key order still gets the same answer.
    seed = hashlib.blake2b(
        orjson.dumps(call.messages, option=orjson.OPT_SORT_KEYS), digest_size=16
    ).digest()
    answered = call.n if directives.choices is None else min(directives.choices, call.n)
    choices = [reply_pieces(seed, index, visible) for index in range(answered)]
    usage = None
    if usage_wanted(state, directives):
        reasoning = (directives.reasoning or 0) * answered
        cached = min(directives.cached or 0, prompt_tokens)
        usage = usage_body(prompt_tokens, visible * answered + reasoning, cached, reasoning)
    return Reply(choices, finish_reason, usage)


def usage_body(prompt: int, completion: int, cached: int, reasoning: int) -> dict[str, Any]:
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": reasoning,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


def completion_body(call: ChatCall, reply: Reply, completion_id: str) -> dict[str, Any]:
    body: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": call.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "choices": [
            {
                "index": index,
                "message": {"role": "assistant", "content": "".join(pieces), "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
            for index, pieces in enumerate(reply.choices)
        ],
    }
    if reply.usage is not None:
        body["usage"] = reply.usage
    return body


async def chat_completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    call = parse_call(await read_json(request))
    reply = plan_reply(call, state)  # validates messages before any delay
    await begin_call(state, call.directives)
    completion_id = state.new_id("chatcmpl")
    if call.stream:
        return await stream_reply(request, state, call, reply, completion_id)
    if call.directives.drop_after is not None:
        abort_connection(request)
        return web.Response()  # never sent: the connection is already closed
    return json_response(completion_body(call, reply, completion_id))


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
