"""OpenAI chat completions: the hub itself, so its translations are nearly identities.

What is left to do: read an OpenAI stream as hub chunks (the ``data:`` lines
parsed, the usage chunk taken out into ``Usage``), write hub chunks as an
OpenAI stream (the usage chunk added back when the client asked for it), and
put a ``Usage`` into an answer in OpenAI's words.
"""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import ApiError, upstream_answered
from tollway.protocols.base import Json, StreamFailed
from tollway.protocols.sse import SseSplitter
from tollway.types import Usage

DONE = b"data: [DONE]\n\n"
_CHUNK_KEYS = ("id", "object", "created", "model")


def openai_usage(usage: Usage | None) -> Json:
    """A ``Usage`` as an OpenAI chat answer reports it (zeros when none)."""
    usage = usage or Usage()
    prompt = usage.input_tokens + usage.image_input_tokens + usage.audio_input_tokens
    completion = usage.output_tokens + usage.image_output_tokens + usage.audio_output_tokens
    return {
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt + completion,
        "prompt_tokens_details": {
            "cached_tokens": usage.cached_input_tokens,
            "audio_tokens": usage.audio_input_tokens,
        },
        "completion_tokens_details": {
            "reasoning_tokens": usage.reasoning_tokens,
            "audio_tokens": usage.audio_output_tokens,
        },
    }


def asks_usage(hub: Json) -> bool:
    options = hub.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


class OpenAIReader:
    """An OpenAI chat stream read as hub chunks: the chunks as sent, less
    their usage (kept as ``usage``) and the usage-only chunk."""

    def __init__(self) -> None:
        self.usage: Usage | None = None
        self.done = False
        self._events = SseSplitter()

    def feed(self, data: bytes) -> list[Json]:
        chunks = []
        for _, payload in self._events.feed(data):
            chunk = self._take(payload)
            if chunk is not None:
                chunks.append(chunk)
        return chunks

    def _take(self, payload: bytes) -> Json | None:
        if payload == b"[DONE]":
            self.done = True
            return None
        try:
            chunk = orjson.loads(payload)
        except orjson.JSONDecodeError:
            return None
        if not isinstance(chunk, dict):
            return None
        error = chunk.get("error")
        if isinstance(error, dict):
            raise StreamFailed(upstream_failure(502, payload))
        usage = chunk.pop("usage", None)
        if isinstance(usage, dict):
            self.usage = usage_from_openai(usage)
        return chunk if chunk.get("choices") else None


class OpenAIWriter:
    """Hub chunks written as an OpenAI chat stream."""

    def __init__(self, hub: Json) -> None:
        self.include_usage = asks_usage(hub)
        self._last: Json = {}

    def write(self, chunk: Json) -> bytes:
        self._last = chunk
        if self.include_usage:
            chunk = {**chunk, "usage": None}
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def finish(self, usage: Usage | None) -> bytes:
        if not self.include_usage:
            return DONE
        closing: Json = {key: self._last[key] for key in _CHUNK_KEYS if key in self._last}
        closing.update(choices=[], usage=openai_usage(usage))
        return b"data: " + orjson.dumps(closing) + b"\n\n" + DONE

    def fail(self, error: ApiError) -> bytes:
        return b"data: " + error.body() + b"\n\n"


class OpenAICodec:
    """The hub's own protocol."""

    name = "openai"

    def request_to_hub(self, payload: Json) -> Json:
        return payload

    def request_from_hub(self, hub: Json) -> Json:
        return hub

    def answer_to_hub(self, answer: Json) -> Json:
        return answer

    def answer_from_hub(self, hub: Json, usage: Usage | None) -> Json:
        return {**hub, "usage": openai_usage(usage)}

    def usage(self, answer: Json) -> Usage | None:
        reported: Any = answer.get("usage")
        return usage_from_openai(reported) if isinstance(reported, dict) else None

    def reader(self) -> OpenAIReader:
        return OpenAIReader()

    def writer(self, hub: Json) -> OpenAIWriter:
        return OpenAIWriter(hub)

    def error_body(self, error: ApiError) -> bytes:
        return error.body()

    def failure(self, status: int, data: bytes) -> ApiError:
        return upstream_failure(status, data)


def upstream_failure(status: int, data: bytes) -> ApiError:
    """Map an upstream's error answer to what the client gets."""
    message = _error_message(data) or f"The upstream answered HTTP {status}."
    return upstream_answered(status, message)


def _error_message(data: bytes) -> str | None:
    try:
        parsed = orjson.loads(data)
    except orjson.JSONDecodeError:
        return None
    error = parsed.get("error") if isinstance(parsed, dict) else None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return str(error["message"])
    return None


def usage_from_openai(u: dict[str, Any]) -> Usage | None:
    """Chat ({prompt,completion}_tokens) or images/responses ({input,output}_tokens).
    Responses' ``cache_write_tokens`` (gpt-5.6 and later) are part of its input
    tokens, as Anthropic's are of Tollway's: billed at the cache-write price."""
    try:
        if "prompt_tokens" in u:
            return _chat_usage(u)
        if "input_tokens" in u:
            return _io_usage(u)
    except (AttributeError, TypeError, ValueError):
        return None  # garbage from upstream: the caller counts instead
    return None


def _chat_usage(u: dict[str, Any]) -> Usage:
    prompt_details = u.get("prompt_tokens_details") or {}
    completion_details = u.get("completion_tokens_details") or {}
    audio_in = token_count(prompt_details.get("audio_tokens"))
    audio_out = token_count(completion_details.get("audio_tokens"))
    text_in = _part_of(token_count(u.get("prompt_tokens")), audio_in)
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=min(token_count(prompt_details.get("cached_tokens")), text_in),
        output_tokens=_part_of(token_count(u.get("completion_tokens")), audio_out),
        reasoning_tokens=token_count(completion_details.get("reasoning_tokens")),
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )


def _io_usage(u: dict[str, Any]) -> Usage:
    in_details = u.get("input_tokens_details") or {}
    out_details = u.get("output_tokens_details") or {}
    image_in = token_count(in_details.get("image_tokens"))
    text_in = _part_of(token_count(u.get("input_tokens")), image_in)
    cached = min(token_count(in_details.get("cached_tokens")), text_in)
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=cached,
        cache_write_tokens=min(token_count(in_details.get("cache_write_tokens")), text_in - cached),
        image_input_tokens=image_in,
        output_tokens=token_count(u.get("output_tokens")),
        reasoning_tokens=token_count(out_details.get("reasoning_tokens")),
    )


def _part_of(total: int, part: int) -> int:
    """What is left of ``total`` once ``part`` of it is taken out; a part larger
    than its total is garbage (the caller counts instead)."""
    if part > total:
        raise ValueError(f"a part ({part}) is larger than its total ({total})")
    return total - part


def token_count(value: Any) -> int:
    """A token count as an upstream reports it; ValueError for anything else."""
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return value
