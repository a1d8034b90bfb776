"""OpenAI and every OpenAI-compatible upstream (channel type "openai")."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import ApiError, upstream_error
from tollway.providers.base import Answer, NotJson, Outbound
from tollway.transport import UpstreamRequest
from tollway.types import Usage

ENDPOINTS = frozenset({"chat/completions", "embeddings", "images/generations", "videos"})
IMAGES_PREFIX = "images/"

# gpt-image-1's output tokens per image, by quality and size, as OpenAI
# publishes them: what the gateway bills an image by when no usage came.
IMAGE_OUTPUT_TOKENS: dict[tuple[str, str], int] = {
    ("low", "1024x1024"): 272,
    ("low", "1024x1536"): 408,
    ("low", "1536x1024"): 400,
    ("medium", "1024x1024"): 1056,
    ("medium", "1024x1536"): 1584,
    ("medium", "1536x1024"): 1568,
    ("high", "1024x1024"): 4160,
    ("high", "1024x1536"): 6240,
    ("high", "1536x1024"): 6208,
}
_USAGE_MARKS = (b'"usage":{', b'"usage": {')
_NULL_USAGE = (b',"usage":null', b', "usage": null')


class OpenAIProvider:
    """OpenAI's API on both sides: requests and answers pass through as sent,
    except that a stream is asked to report its usage (and that report is cut
    out again when the client did not ask for it)."""

    endpoints = ENDPOINTS

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        headers = {"Authorization": f"Bearer {api_key}"}
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        body = call.body
        if call.stream and call.payload is not None and not _asks_usage(call.payload):
            options = call.payload.get("stream_options")
            asked = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            body = orjson.dumps({**call.payload, "stream_options": asked})
        return UpstreamRequest(call.method, f"{base_url}/{call.resource}", headers, body)

    def answer(self, call: Outbound, data: bytes) -> Answer:
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise NotJson("upstream answered 200 with a body that is not JSON") from None
        if not isinstance(parsed, dict):
            parsed = {}
        return Answer(data, parsed, answer_usage(call.endpoint, parsed))

    def scanner(self, call: Outbound) -> ChatStreamScanner:
        return ChatStreamScanner(strip_usage=not _asks_usage(call.payload or {}))

    def failure(self, status: int, data: bytes) -> ApiError:
        return upstream_failure(status, data)


def _asks_usage(payload: dict[str, Any]) -> bool:
    options = payload.get("stream_options")
    return isinstance(options, dict) and options.get("include_usage") is True


def answer_usage(endpoint: str, answer: dict[str, Any]) -> Usage | None:
    """The usage an answer reports, read as its endpoint reports it."""
    reported = answer.get("usage")
    if not isinstance(reported, dict):
        return None
    if endpoint.startswith(IMAGES_PREFIX):
        return image_usage_from_openai(reported)
    return usage_from_openai(reported)


def upstream_failure(status: int, data: bytes) -> ApiError:
    """Map an upstream's error answer to what the client gets."""
    message = _error_message(data) or f"The upstream answered HTTP {status}."
    if status in (400, 404, 409, 413, 422):
        return ApiError(status, message, "upstream_rejected_request")
    if status == 429:
        return ApiError(429, message, "rate_limit_exceeded", "rate_limit_error")
    if status in (401, 403):
        return upstream_error("The upstream refused the gateway's credentials for this model.")
    return upstream_error(f"The upstream failed: {message}")


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
    """Chat ({prompt,completion}_tokens) or images/responses ({input,output}_tokens)."""
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
    audio_in = _count(prompt_details.get("audio_tokens"))
    audio_out = _count(completion_details.get("audio_tokens"))
    text_in = _part_of(_count(u.get("prompt_tokens")), audio_in)
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=min(_count(prompt_details.get("cached_tokens")), text_in),
        output_tokens=_part_of(_count(u.get("completion_tokens")), audio_out),
        reasoning_tokens=_count(completion_details.get("reasoning_tokens")),
        audio_input_tokens=audio_in,
        audio_output_tokens=audio_out,
    )


def _io_usage(u: dict[str, Any]) -> Usage:
    in_details = u.get("input_tokens_details") or {}
    out_details = u.get("output_tokens_details") or {}
    image_in = _count(in_details.get("image_tokens"))
    text_in = _part_of(_count(u.get("input_tokens")), image_in)
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=min(_count(in_details.get("cached_tokens")), text_in),
        image_input_tokens=image_in,
        output_tokens=_count(u.get("output_tokens")),
        reasoning_tokens=_count(out_details.get("reasoning_tokens")),
    )


def image_usage_from_openai(u: dict[str, Any]) -> Usage | None:
    """gpt-image usage ``{input_tokens, input_tokens_details{text_tokens,
    image_tokens}, output_tokens}``: input split into text and image tokens;
    output is image tokens, unless ``output_tokens_details`` says part is text."""
    if "output_tokens" not in u:
        return None
    try:
        in_details = u.get("input_tokens_details") or {}
        out_details = u.get("output_tokens_details") or {}
        input_total = _count(u.get("input_tokens"))
        image_in = _count(in_details.get("image_tokens"))
        output_total = _count(u.get("output_tokens"))
        image_out = (
            _count(out_details["image_tokens"]) if "image_tokens" in out_details else output_total
        )
        if image_in > input_total or image_out > output_total:
            raise ValueError("a part is larger than its total")
        text_in = input_total - image_in
        cached = min(_count(in_details.get("cached_tokens")), text_in)
    except (AttributeError, TypeError, ValueError):
        return None  # garbage from upstream: the caller estimates instead
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=cached,
        image_input_tokens=image_in,
        output_tokens=output_total - image_out,
        image_output_tokens=image_out,
    )


def _part_of(total: int, part: int) -> int:
    """What is left of ``total`` once ``part`` of it is taken out; a part larger
    than its total is garbage (the caller counts instead)."""
    if part > total:
        raise ValueError(f"a part ({part}) is larger than its total ({total})")
    return total - part


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return value


class ChatStreamScanner:
    """Server-sent chat chunks. Bytes pass through untouched unless the gateway
    asked for usage on the client's behalf; then the usage chunk (and the
    ``"usage":null`` it made every chunk carry) is cut out, so the client sees
    exactly the stream it asked for.

    It notes which choices were delivered: a choice counts once a delta of it
    carried something generated (text, a refusal, a tool call, audio) or its
    end (``finish_reason``); the opening ``{"role": "assistant", "content": ""}``
    is nothing yet."""

    def __init__(self, strip_usage: bool) -> None:
        self.strip_usage = strip_usage
        self.usage: Usage | None = None
        self.done = False
        self._buffer = b""
        self._text: list[str] = []
        self._delivered: set[int | str] = set()

    def feed(self, chunk: bytes) -> bytes:
        if b"\r" in chunk:
            chunk = chunk.replace(b"\r\n", b"\n")
        self._buffer += chunk
        if b"\n\n" not in self._buffer:
            return b"" if self.strip_usage else chunk
        *events, self._buffer = self._buffer.split(b"\n\n")
        kept = [event for event in events if self._take(event)]
        if not self.strip_usage:
            return chunk
        return b"".join(_without_null_usage(event) + b"\n\n" for event in kept)

    def output_text(self) -> str:
        return "".join(self._text)

    def delivered_choices(self) -> int:
        return len(self._delivered)

    def _take(self, event: bytes) -> bool:
        """Note what the event says; False when the client must not see it."""
        data = _data_of(event)
        if data is None:
            return True
        if data == b"[DONE]":
            self.done = True
            return True
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            return True
        if not isinstance(parsed, dict):
            return True
        self._collect_text(parsed.get("choices"))
        if any(mark in data for mark in _USAGE_MARKS) and isinstance(parsed.get("usage"), dict):
            self.usage = usage_from_openai(parsed["usage"])
            return not (self.strip_usage and not parsed.get("choices"))
        return True

    def _collect_text(self, choices: Any) -> None:
        if not isinstance(choices, list):
            return
        for position, choice in enumerate(choices):
            if not isinstance(choice, dict):
                continue
            delta = choice.get("delta")
            delivered = choice.get("finish_reason") is not None
            if isinstance(delta, dict):
                delivered = self._collect_delta(delta) or delivered
            if delivered:
                index = choice.get("index", position)
                self._delivered.add(index if isinstance(index, int | str) else position)

    def _collect_delta(self, delta: dict[str, Any]) -> bool:
        """Keep the delta's text; True when it carried anything generated."""
        generated = bool(delta.get("audio"))
        for key in ("content", "reasoning_content", "refusal"):
            text = delta.get(key)
            if isinstance(text, str) and text:
                self._text.append(text)
                generated = True
        calls = delta.get("tool_calls")
        for call in calls if isinstance(calls, list) else ():
            generated = True
            function = call.get("function") if isinstance(call, dict) else None
            if isinstance(function, dict) and isinstance(function.get("arguments"), str):
                self._text.append(function["arguments"])
        return generated


def _data_of(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _without_null_usage(event: bytes) -> bytes:
    for mark in _NULL_USAGE:
        if mark in event:
            event = event.replace(mark, b"")
    return event
