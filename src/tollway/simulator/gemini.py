"""The Gemini API: ``models/{model}:generateContent``, ``:streamGenerateContent``, ``:countTokens``.

Served under ``/v1beta`` and ``/v1``. The api key (when the simulator has
one) comes as ``x-goog-api-key`` or ``?key=``; as Gemini does, a wrong key is
a 400 ``INVALID_ARGUMENT`` (reason ``API_KEY_INVALID``) and a missing one a
403 ``PERMISSION_DENIED``. Errors have Gemini's shape ``{"error": {"code",
"message", "status"}}``.

Prompt tokens: the chat rule, so one conversation costs the same through any
protocol:

    promptTokenCount = 3 + (3 + system tokens, if systemInstruction is given)
                         + sum over contents of (3 + content tokens)

where content tokens are the words of the text parts (past thought parts
count 0) and of the strings inside functionResponse parts, plus 85 per
image part (inlineData or fileData with an ``image/`` mimeType); functionCall
parts count 0 and ``[sim:...]`` directives count as words.
``[sim:prompt_tokens=N]`` replaces the count. ``promptTokenCount`` includes
``cachedContentTokenCount`` = min(``[sim:cached=N]``, prompt).

Output, per candidate (``candidateCount``, default 1): visible =
``[sim:tokens=N]``, else min(maxOutputTokens, default_completion_tokens),
one word each; finishReason ``MAX_TOKENS`` when maxOutputTokens was the
smaller, else ``STOP``. ``[sim:reasoning=N]`` adds N thought tokens
(``thoughtsTokenCount``; a ``{"text", "thought": true}`` part only with
``thinkingConfig.includeThoughts``). With ``responseModalities`` holding
``IMAGE``, each candidate also carries a PNG ``inlineData`` part of 1290
tokens (``candidatesTokensDetails`` splits IMAGE and TEXT). With tools and
``[sim:tool=NAME]`` (a declared function) a ``functionCall`` part (args
``{}``) follows the text, unless maxOutputTokens cut it first.

    candidatesTokenCount = candidates * (visible + 1290 if IMAGE)
    thoughtsTokenCount   = candidates * reasoning
    totalTokenCount      = prompt + candidates + thoughts

Zero counts other than the prompt's are left out, as Gemini's JSON leaves
out zero fields. Streams send one chunk per word; every chunk carries the
usage so far (candidatesTokenCount grows, the last chunk's is final) and the
last one the finishReason. ``?alt=sse`` streams SSE ``data:`` frames;
without it, one JSON array. Directives are read from the last content;
``[sim:error_after]`` is not used here (it is Anthropic's stream error).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from aiohttp import web

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
from .gemini_request import (
    GenerateCall,
    content_text,
    count_prompt_tokens,
    field,
    parse_call,
)
from .gemini_stream import Chunk, stream_chunks
from .images import image_bytes

IMAGE_OUTPUT_TOKENS = 1290  # Gemini's tokens for one generated image (1024x1024)
_VERBS = ("generateContent", "streamGenerateContent", "countTokens")
_STATUSES: dict[int, tuple[str, str]] = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument (simulated)."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials (simulated)."),
    403: ("PERMISSION_DENIED", "The caller does not have permission (simulated)."),
    404: ("NOT_FOUND", "Requested entity was not found (simulated)."),
    409: ("ABORTED", "The request was aborted (simulated)."),
    429: ("RESOURCE_EXHAUSTED", "Resource has been exhausted (e.g. check quota) (simulated)."),
    499: ("CANCELLED", "The operation was cancelled (simulated)."),
    500: ("INTERNAL", "An internal error has occurred (simulated)."),
    501: ("UNIMPLEMENTED", "The method is not implemented (simulated)."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later (simulated)."),
    504: ("DEADLINE_EXCEEDED", "The request timed out (simulated)."),
}
_NO_KEY = (
    "Method doesn't allow unregistered callers (callers without established identity). "
    "Please use API Key or other form of API consumer identity to call this API."
)
_BAD_KEY = "API key not valid. Please pass a valid API key."
_KEY_INVALID_DETAILS = [
    {
        "@type": "type.googleapis.com/google.rpc.ErrorInfo",
        "reason": "API_KEY_INVALID",
        "domain": "googleapis.com",
    }
]


def error_body(status: int, message: str | None) -> dict[str, Any]:
    fallback = "FAILED_PRECONDITION" if status < 500 else "UNKNOWN"
    name, default = _STATUSES.get(status, (fallback, "Request failed (simulated)."))
    error: dict[str, Any] = {"code": status, "message": message or default, "status": name}
    if message == _BAD_KEY:
        error["details"] = _KEY_INVALID_DETAILS
    return {"error": error}


def error_response(request: web.Request, exc: ApiError) -> web.Response:
    return json_response(error_body(exc.status, exc.message), exc.status)


def check_key(request: web.Request, api_key: str) -> None:
    given = request.headers.get("x-goog-api-key") or request.query.get("key")
    if not given:
        raise ApiError(403, _NO_KEY)
    if given != api_key:
        raise ApiError(400, _BAD_KEY)


def owns(path: str) -> bool:
    """``/v1beta/...``, or a ``/v1/models/{model}:verb`` call (not OpenAI's model ids)."""
    if path.startswith("/v1beta/"):
        return True
    return path.startswith("/v1/models/") and path.rpartition(":")[2] in _VERBS


DIALECT = Dialect(owns=owns, check_key=check_key, error_response=error_response)


@dataclass(slots=True)
class Counts:
    prompt: int
    prompt_images: int  # the prompt's image tokens
    cached: int
    thoughts: int
    text: int  # visible output tokens, all candidates
    images: int  # image output tokens, all candidates


@dataclass(slots=True)
class Step:
    """One piece of a candidate's answer: a stream sends one step per chunk."""

    part: dict[str, Any]
    tokens: int  # output tokens it adds to candidatesTokenCount
    text: bool  # a visible-text word (what drop_after counts)


@dataclass(slots=True)
class Reply:
    steps: list[list[Step]]  # per candidate; every candidate has the same layout
    finish_reason: str
    counts: Counts | None


def plan_reply(call: GenerateCall, state: SimState) -> Reply:
    directives = call.directives
    visible, capped = output_tokens(
        directives, call.max_tokens, state.config.default_completion_tokens
    )
    tool = directives.tool if call.tool_names and not capped else None
    if tool is not None and tool not in call.tool_names:
        raise ApiError(400, f"[sim:tool={tool}] names no function of this request's tools")
    answered = call.candidates
    if directives.choices is not None:
        answered = min(directives.choices, answered)
    seed = body_seed({"system": call.system, "contents": call.contents})
    reasoning = directives.reasoning or 0
    steps = [_steps(call, seed, index, visible, reasoning, tool) for index in range(answered)]
    counts = None
    if usage_wanted(state, directives):
        prompt, images = count_prompt_tokens(call.system, call.contents)
        if directives.prompt_tokens is not None:
            prompt, images = directives.prompt_tokens, 0
        image_out = IMAGE_OUTPUT_TOKENS * answered if call.image else 0
        cached = min(directives.cached or 0, prompt)
        counts = Counts(prompt, images, cached, reasoning * answered, visible * answered, image_out)
    return Reply(steps, "MAX_TOKENS" if capped else "STOP", counts)


def _steps(
    call: GenerateCall, seed: bytes, index: int, visible: int, reasoning: int, tool: str | None
) -> list[Step]:
    steps = []
    if reasoning and call.include_thoughts:
        thought = "".join(reply_pieces(seed, 1000 + index, reasoning))
        steps.append(Step({"text": thought, "thought": True}, 0, False))
    steps += [Step({"text": piece}, 1, True) for piece in reply_pieces(seed, index, visible)]
    if tool is not None:
        steps.append(Step({"functionCall": {"name": tool, "args": {}}}, 0, False))
    if call.image:
        png = image_bytes(content_text(call.contents[-1]), index, "1024x1024")
        data = base64.b64encode(png).decode("ascii")
        image = {"inlineData": {"mimeType": "image/png", "data": data}}
        steps.append(Step(image, IMAGE_OUTPUT_TOKENS, False))
    if not steps:
        steps.append(Step({"text": ""}, 0, False))  # Gemini sends no content-less candidate
    return steps


def usage_metadata(counts: Counts, produced: int | None = None) -> dict[str, Any]:
    """Usage so far (``produced`` output tokens), or the final usage when None."""
    final = produced is None
    output = counts.text + counts.images if produced is None else produced
    usage: dict[str, Any] = {"promptTokenCount": counts.prompt}
    if output:
        usage["candidatesTokenCount"] = output
    usage["totalTokenCount"] = counts.prompt + output + counts.thoughts
    if counts.cached:
        usage["cachedContentTokenCount"] = counts.cached
    usage["promptTokensDetails"] = _modalities(
        counts.prompt - counts.prompt_images, counts.prompt_images
    )
    if final and counts.images:
        usage["candidatesTokensDetails"] = _modalities(counts.text, counts.images)
    if counts.thoughts:
        usage["thoughtsTokenCount"] = counts.thoughts
    return usage


def _modalities(text: int, image: int) -> list[dict[str, Any]]:
    found = [{"modality": "TEXT", "tokenCount": text}]
    if image:
        found.insert(0, {"modality": "IMAGE", "tokenCount": image})
    return found


def _merged_parts(steps: list[Step]) -> list[dict[str, Any]]:
    """A whole answer's parts: consecutive words joined into one text part."""
    parts: list[dict[str, Any]] = []
    for step in steps:
        if step.text and parts and set(parts[-1]) == {"text"}:
            parts[-1] = {"text": parts[-1]["text"] + step.part["text"]}
        else:
            parts.append(dict(step.part))
    return parts


def response_body(call: GenerateCall, reply: Reply, response_id: str) -> dict[str, Any]:
    candidates = [
        {
            "content": {"role": "model", "parts": _merged_parts(steps)},
            "finishReason": reply.finish_reason,
            "index": index,
        }
        for index, steps in enumerate(reply.steps)
    ]
    return _envelope(call, candidates, reply.counts, None, response_id)


def _envelope(
    call: GenerateCall,
    candidates: list[dict[str, Any]],
    counts: Counts | None,
    produced: int | None,
    response_id: str,
) -> dict[str, Any]:
    body: dict[str, Any] = {"candidates": candidates}
    if counts is not None:
        body["usageMetadata"] = usage_metadata(counts, produced)
    body["modelVersion"] = call.model
    body["responseId"] = response_id
    return body


def stream_plan(call: GenerateCall, reply: Reply, response_id: str) -> list[Chunk]:
    """One chunk per step: step j of every candidate, the usage so far, the finish last."""
    if not reply.steps:  # [sim:choices=0]: one chunk without candidates
        return [Chunk(_envelope(call, [], reply.counts, None, response_id), False)]
    layout = reply.steps[0]
    chunks, produced = [], 0
    for position, step in enumerate(layout):
        produced += step.tokens * len(reply.steps)
        last = position == len(layout) - 1
        candidates = _chunk_candidates(reply, position, last)
        used = None if last else produced
        chunks.append(
            Chunk(_envelope(call, candidates, reply.counts, used, response_id), step.text)
        )
    return chunks


def _chunk_candidates(reply: Reply, position: int, last: bool) -> list[dict[str, Any]]:
    """Every candidate's step ``position``; the last chunk carries the finishReason."""
    candidates = []
    for index, steps in enumerate(reply.steps):
        candidate: dict[str, Any] = {"content": {"role": "model", "parts": [steps[position].part]}}
        if last:
            candidate["finishReason"] = reply.finish_reason
        candidate["index"] = index
        candidates.append(candidate)
    return candidates


async def _generate_call(request: web.Request) -> tuple[GenerateCall, Reply, str]:
    state = request.app[STATE]
    call = parse_call(request.match_info["model"], await read_json(request))
    reply = plan_reply(call, state)  # validates before any delay
    await begin_call(state, call.directives)
    return call, reply, state.new_id("resp", "_")


async def generate_content(request: web.Request) -> web.StreamResponse:
    call, reply, response_id = await _generate_call(request)
    if call.directives.drop_after is not None:
        abort_connection(request)
        return web.Response()  # never sent: the connection is already closed
    return json_response(response_body(call, reply, response_id))


async def stream_generate_content(request: web.Request) -> web.StreamResponse:
    call, reply, response_id = await _generate_call(request)
    sse = request.query.get("alt") == "sse"
    chunks = stream_plan(call, reply, response_id)
    return await stream_chunks(request, request.app[STATE], call.directives, chunks, sse)


async def count_tokens(request: web.Request) -> web.Response:
    """``{"totalTokens"}`` for ``contents`` or a whole ``generateContentRequest``."""
    body = await read_json(request)
    inner = field(body, "generateContentRequest", "generate_content_request")
    call = parse_call(request.match_info["model"], inner if isinstance(inner, dict) else body)
    prompt, images = count_prompt_tokens(call.system, call.contents)
    if call.directives.prompt_tokens is not None:
        prompt, images = call.directives.prompt_tokens, 0
    return json_response(
        {"totalTokens": prompt, "promptTokensDetails": _modalities(prompt - images, images)}
    )


def setup(app: web.Application) -> None:
    model = "{model:[^/:]+}"
    for version in ("/v1beta", "/v1"):
        app.router.add_post(f"{version}/models/{model}:generateContent", generate_content)
        app.router.add_post(
            f"{version}/models/{model}:streamGenerateContent", stream_generate_content
        )
        app.router.add_post(f"{version}/models/{model}:countTokens", count_tokens)
