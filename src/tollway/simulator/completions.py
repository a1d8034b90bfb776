"""``POST /v1/completions`` (legacy): deterministic text completions, streamed or not.

Tokens, a fixed formula a test can compute (no tokenizer needed):

- prompt tokens: the whitespace-separated words of each string prompt, or the
  length of each token-id array, plus the words of ``suffix``;
- completion tokens per choice: ``[sim:tokens=N]`` if given, else
  min(max_tokens, default_completion_tokens), ``max_tokens`` defaulting to
  OpenAI's 16; each token is one word;
- ``usage.completion_tokens`` counts every choice generated: best_of (at
  least n) per prompt, though n per prompt come back.

Directives ride in the last string prompt. ``choices`` holds n per prompt,
indexed ``prompt x n + i``; ``echo`` puts the prompt before the text. A
stream sends one ``text_completion`` chunk per token (the same object type
as the whole answer), a finish chunk per choice, and with
``stream_options.include_usage`` a last chunk with ``choices: []`` and usage.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import orjson
from aiohttp import web

from .chat import reply_pieces
from .common import (
    STATE,
    SYSTEM_FINGERPRINT,
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
from .directives import NO_DIRECTIVES, DirectiveError, Directives, parse_directives
from .streaming import DONE, SSE_HEADERS

OPENAI_DEFAULT_MAX_TOKENS = 16
MAX_N = 128
MAX_BEST_OF = 20
MAX_PROMPTS = 2048

Prompt = str | list[int]


@dataclass(slots=True)
class CompletionCall:
    model: str
    prompts: list[Prompt]
    n: int
    best_of: int
    max_tokens: int
    echo: bool
    logprobs: int | None
    suffix: str
    stream: bool
    include_usage: bool
    directives: Directives


def _is_token(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def parse_prompts(raw: Any) -> list[Prompt]:
    """``prompt`` as a string, strings, a token array or token arrays."""
    if isinstance(raw, str):
        return [raw]
    if isinstance(raw, list) and raw and all(_is_token(t) for t in raw):
        return [raw]
    if not isinstance(raw, list) or not raw or len(raw) > MAX_PROMPTS:
        raise ApiError(400, f"prompt must hold 1 to {MAX_PROMPTS} prompts", param="prompt")
    if all(isinstance(p, str) for p in raw):
        return list(raw)
    if all(isinstance(p, list) and p and all(_is_token(t) for t in p) for p in raw):
        return list(raw)
    raise ApiError(400, "prompt must be strings or arrays of token ids", param="prompt")


def parse_call(body: dict[str, Any]) -> CompletionCall:
    model = require_model(body)
    if "prompt" not in body:
        raise ApiError(400, "you must provide a prompt parameter", param="prompt")
    prompts = parse_prompts(body["prompt"])
    n = int_param(body, "n", 1, MAX_N) or 1
    best_of = int_param(body, "best_of", 1, MAX_BEST_OF) or n
    if best_of < n:
        raise ApiError(400, "best_of must be greater than or equal to n", param="best_of")
    max_tokens = int_param(body, "max_tokens", 0, 10**9)
    suffix = body.get("suffix")
    if suffix is not None and not isinstance(suffix, str):
        raise ApiError(400, "suffix must be a string", param="suffix")
    options = body.get("stream_options")
    texts = [p for p in prompts if isinstance(p, str)]
    try:
        directives = parse_directives(texts[-1]) if texts else NO_DIRECTIVES
    except DirectiveError as exc:
        raise ApiError(400, str(exc), param="prompt") from exc
    return CompletionCall(
        model=model,
        prompts=prompts,
        n=n,
        best_of=best_of,
        max_tokens=OPENAI_DEFAULT_MAX_TOKENS if max_tokens is None else max_tokens,
        echo=body.get("echo") is True,
        logprobs=int_param(body, "logprobs", 0, 5),
        suffix=suffix or "",
        stream=body.get("stream") is True,
        include_usage=isinstance(options, dict) and options.get("include_usage") is True,
        directives=directives,
    )


def prompt_tokens(call: CompletionCall) -> int:
    words = sum(len(p.split()) if isinstance(p, str) else len(p) for p in call.prompts)
    return words + len(call.suffix.split())


@dataclass(slots=True)
class Plan:
    texts: list[list[str]]  # per choice (prompt x n + i), the pieces (one per token)
    finish_reason: str
    usage: dict[str, Any] | None


def plan(call: CompletionCall, state: SimState) -> Plan:
    default = state.config.default_completion_tokens
    visible, capped = output_tokens(call.directives, call.max_tokens, default)
    seed = body_seed([call.prompts, call.suffix])
    choices = len(call.prompts) * call.n
    texts = [reply_pieces(seed, index, visible) for index in range(choices)]
    usage = None
    if usage_wanted(state, call.directives):
        prompt = prompt_tokens(call)
        if call.directives.prompt_tokens is not None:
            prompt = call.directives.prompt_tokens
        completion = visible * call.best_of * len(call.prompts)
        usage = {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        }
    return Plan(texts, "length" if capped else "stop", usage)


def _echo(call: CompletionCall, index: int) -> str:
    prompt = call.prompts[index // call.n]
    return prompt if call.echo and isinstance(prompt, str) else ""


def _logprobs(pieces: list[str], top: int | None) -> dict[str, Any] | None:
    if top is None:
        return None
    offsets, at = [], 0
    for piece in pieces:
        offsets.append(at)
        at += len(piece)
    return {
        "tokens": pieces,
        "token_logprobs": [-0.25] * len(pieces),
        "top_logprobs": [{piece: -0.25} for piece in pieces] if top else None,
        "text_offset": offsets,
    }


def _choice(index: int, text: str, logprobs: Any, finish: str | None) -> dict[str, Any]:
    return {"text": text, "index": index, "logprobs": logprobs, "finish_reason": finish}


def _head(call: CompletionCall, completion_id: str) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "text_completion",
        "created": int(time.time()),
        "model": call.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
    }


def completion_body(call: CompletionCall, reply: Plan, completion_id: str) -> dict[str, Any]:
    choices = [
        _choice(
            index,
            _echo(call, index) + "".join(pieces),
            _logprobs(pieces, call.logprobs),
            reply.finish_reason,
        )
        for index, pieces in enumerate(reply.texts)
    ]
    body = {**_head(call, completion_id), "choices": choices}
    if reply.usage is not None:
        body["usage"] = reply.usage
    return body


def _frame(head: dict[str, Any], choices: list[dict[str, Any]], **more: Any) -> bytes:
    return b"data: " + orjson.dumps({**head, "choices": choices, **more}) + b"\n\n"


async def stream_completion(
    request: web.Request, state: SimState, call: CompletionCall, reply: Plan, completion_id: str
) -> web.StreamResponse:
    head = _head(call, completion_id)
    delay = chunk_delay(state, call.directives)
    drop_after = call.directives.drop_after
    resp = web.StreamResponse(headers=SSE_HEADERS)
    try:
        await resp.prepare(request)
        sent = 0
        for index in range(len(reply.texts)):
            if _echo(call, index):
                await resp.write(_frame(head, [_choice(index, _echo(call, index), None, None)]))
        for position in range(len(reply.texts[0]) if reply.texts else 0):
            for index, pieces in enumerate(reply.texts):
                if sent == drop_after:
                    abort_connection(request)
                    return resp
                if delay:
                    await asyncio.sleep(delay)
                logprobs = _logprobs([pieces[position]], call.logprobs)
                await resp.write(_frame(head, [_choice(index, pieces[position], logprobs, None)]))
                sent += 1
        if drop_after is not None:
            abort_connection(request)
            return resp
        for index in range(len(reply.texts)):
            await resp.write(_frame(head, [_choice(index, "", None, reply.finish_reason)]))
        if call.include_usage and reply.usage is not None:
            await resp.write(_frame(head, [], usage=reply.usage))
        await resp.write(DONE)
        await resp.write_eof()
    except ConnectionError:
        pass  # the client went away mid-stream
    return resp


async def completions(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE]
    call = parse_call(await read_json(request))
    reply = plan(call, state)
    await begin_call(state, call.directives)
    completion_id = state.new_id("cmpl")
    if call.stream:
        return await stream_completion(request, state, call, reply, completion_id)
    return json_response(completion_body(call, reply, completion_id))


def setup(app: web.Application) -> None:
    app.router.add_post("/v1/completions", completions)
