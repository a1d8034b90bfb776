"""OpenAI and every OpenAI-compatible upstream (channel type "openai")."""

from __future__ import annotations

from typing import Any

import orjson

from tollway.errors import ApiError
from tollway.protocols.openai import OpenAICodec, token_count, upstream_failure, usage_from_openai
from tollway.protocols.openai_audio import AUDIO_ENDPOINTS, audio_usage_from_openai
from tollway.protocols.openai_completions import TextTally
from tollway.protocols.responses import ResponsesCodec
from tollway.protocols.tally import Tally
from tollway.providers import bridge
from tollway.providers.base import INTERRUPTED, Answer, NotJson, Outbound, StreamScanner
from tollway.transport import UpstreamRequest
from tollway.types import Usage

ENDPOINTS = frozenset(
    {"chat/completions", "embeddings", "images/generations", "videos", "videos/remix"}
    | {"images/edits", "images/variations"}
    | {"completions", "moderations", "rerank"}
    | AUDIO_ENDPOINTS
    | {"responses"}
)
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
OPENAI = OpenAICodec()
RESPONSES = ResponsesCodec()
_USAGE_MARKS = (b'"usage":{', b'"usage": {')
_NULL_USAGE = (b',"usage":null', b', "usage": null')


class OpenAIProvider:
    """OpenAI's API upstream. For an OpenAI client requests and answers pass
    through as sent, except that a stream is asked to report its usage (and
    that report is cut out again when the client did not ask for it); a
    client of another protocol has its request sent as the hub's (which is
    OpenAI's) and its answer translated back (providers/bridge.py)."""

    endpoints = ENDPOINTS

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        headers = {"Authorization": f"Bearer {api_key}"}
        if call.content_type is not None:
            headers["Content-Type"] = call.content_type
        body = call.body
        if _native_responses(call):  # a Responses client's body, sent as it came
            body = orjson.dumps({**(call.native or {}), "model": (call.payload or {}).get("model")})
        elif (
            call.stream
            and call.payload is not None
            and call.endpoint not in AUDIO_ENDPOINTS  # their streams report usage unasked
            and not _asks_usage(call.payload)
        ):
            options = call.payload.get("stream_options")
            asked = {**(options if isinstance(options, dict) else {}), "include_usage": True}
            body = orjson.dumps({**call.payload, "stream_options": asked})
        return UpstreamRequest(call.method, f"{base_url}/{call.resource}", headers, body)

    def answer(self, call: Outbound, data: bytes) -> Answer:
        if call.client != OPENAI.name:
            return bridge.read_answer(_speaks(call), call, data)
        try:
            parsed = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise NotJson("upstream answered 200 with a body that is not JSON") from None
        if not isinstance(parsed, dict):
            parsed = {}
        return Answer(data, parsed, answer_usage(call.endpoint, parsed))

    def scanner(self, call: Outbound) -> StreamScanner:
        if call.client != OPENAI.name:
            return bridge.scanner(_speaks(call), call)
        strip_usage = not _asks_usage(call.payload or {})
        if call.endpoint == "completions":  # legacy text_completion chunks
            return ChatStreamScanner(strip_usage, TextTally())
        return ChatStreamScanner(strip_usage)

    def failure(self, status: int, data: bytes) -> ApiError:
        return upstream_failure(status, data)


def _native_responses(call: Outbound) -> bool:
    """A Responses client's call to the channel's own /responses (relay/responses.py
    sends one without ``native`` to chat completions instead)."""
    return call.client == RESPONSES.name and call.native is not None


def _speaks(call: Outbound) -> OpenAICodec | ResponsesCodec:
    """The protocol of the upstream's answer to ``call``."""
    return RESPONSES if _native_responses(call) else OPENAI


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
    if endpoint in AUDIO_ENDPOINTS:
        return audio_usage_from_openai(reported)
    return usage_from_openai(reported)


def image_usage_from_openai(u: dict[str, Any]) -> Usage | None:
    """gpt-image usage ``{input_tokens, input_tokens_details{text_tokens,
    image_tokens}, output_tokens}``: input split into text and image tokens;
    output is image tokens, unless ``output_tokens_details`` says part is text."""
    if "output_tokens" not in u:
        return None
    try:
        in_details = u.get("input_tokens_details") or {}
        out_details = u.get("output_tokens_details") or {}
        input_total = token_count(u.get("input_tokens"))
        image_in = token_count(in_details.get("image_tokens"))
        output_total = token_count(u.get("output_tokens"))
        image_out = (
            token_count(out_details["image_tokens"])
            if "image_tokens" in out_details
            else output_total
        )
        if image_in > input_total or image_out > output_total:
            raise ValueError("a part is larger than its total")
        text_in = input_total - image_in
        cached = min(token_count(in_details.get("cached_tokens")), text_in)
    except (AttributeError, TypeError, ValueError):
        return None  # garbage from upstream: the caller estimates instead
    return Usage(
        input_tokens=text_in,
        cached_input_tokens=cached,
        image_input_tokens=image_in,
        output_tokens=output_total - image_out,
        image_output_tokens=image_out,
    )


class ChatStreamScanner:
    """Server-sent chat chunks. Bytes pass through untouched unless the gateway
    asked for usage on the client's behalf; then the usage chunk (and the
    ``"usage":null`` it made every chunk carry) is cut out, so the client sees
    exactly the stream it asked for. An error event an OpenAI-compatible
    upstream sends mid-stream reaches the client as it came, after the settlement.

    It notes what was delivered (``Tally``)."""

    def __init__(self, strip_usage: bool, tally: Tally | None = None) -> None:
        self.strip_usage = strip_usage
        self.usage: Usage | None = None
        self.done = False
        self.failed = False
        self._buffer = b""
        self._tally = Tally() if tally is None else tally

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
        return self._tally.text()

    def delivered_choices(self) -> int:
        return self._tally.delivered()

    def interrupted(self) -> bytes:
        return b"" if self.failed else INTERRUPTED

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
        if isinstance(parsed.get("error"), dict):
            self.failed = True  # passed on to the client once the call is settled
            return True
        self._tally.take(parsed.get("choices"))
        if any(mark in data for mark in _USAGE_MARKS) and isinstance(parsed.get("usage"), dict):
            self.usage = usage_from_openai(parsed["usage"])
            return not (self.strip_usage and not parsed.get("choices"))
        return True


def _data_of(event: bytes) -> bytes | None:
    lines = [line[5:].lstrip() for line in event.split(b"\n") if line.startswith(b"data:")]
    return b"\n".join(lines) if lines else None


def _without_null_usage(event: bytes) -> bytes:
    for mark in _NULL_USAGE:
        if mark in event:
            event = event.replace(mark, b"")
    return event
