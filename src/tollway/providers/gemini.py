"""Google's Gemini API upstream (channel type "gemini").

The channel's base URL is the host root; a call goes to
``/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for a stream) with the key as ``x-goog-api-key``. A client speaking Gemini's
protocol has its request sent as it came; any other client's request is
translated from the hub.

OpenAI's images endpoint is served by Gemini's image models: a call asks
generateContent for one image of the prompt (``responseModalities`` TEXT and
IMAGE; the relay sends n calls for n images, relay/image_calls.py), and its
answer is OpenAI's images shape (``data[].b64_json``, usage as gpt-image
reports it). An answer that holds no image (a blocked prompt, a model that
only wrote) is an error saying why: there is nothing to hand over.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from tollway.errors import ApiError
from tollway.protocols.base import Json
from tollway.protocols.gemini import GeminiCodec
from tollway.protocols.gemini.images import (
    InputImage,
    closest_aspect_ratio,
    image_answer_to_openai,
    image_request,
    image_usage_to_openai,
    no_image_reason,
)
from tollway.providers import bridge
from tollway.providers.base import JSON, Answer, Outbound, StreamScanner
from tollway.transport import UpstreamRequest

API_PATH = "/v1beta/models/"
IMAGES = "images/generations"
IMAGE_EDITS = "images/edits"  # the same call, the input images sent inline
IMAGE_ENDPOINTS = frozenset({IMAGES, IMAGE_EDITS})
GEMINI = GeminiCodec()


class GeminiProvider:
    endpoints = frozenset({"chat/completions", "responses", IMAGES, IMAGE_EDITS})

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        headers = {"x-goog-api-key": api_key, "Content-Type": JSON}
        hub = call.payload or {}
        model = quote(str(hub.get("model", "")), safe="")
        verb = ":streamGenerateContent?alt=sse" if call.stream else ":generateContent"
        body = orjson.dumps(content_body(call))
        return UpstreamRequest("POST", f"{base_url}{API_PATH}{model}{verb}", headers, body)

    def answer(self, call: Outbound, data: bytes) -> Answer:
        if call.endpoint in IMAGE_ENDPOINTS:
            return image_answer(data)
        return bridge.read_answer(GEMINI, call, data)

    def scanner(self, call: Outbound) -> StreamScanner:
        return bridge.scanner(GEMINI, call)

    def failure(self, status: int, data: bytes) -> ApiError:
        return GEMINI.failure(status, data)


def content_body(call: Outbound) -> Json:
    """The generateContent body for ``call`` (the model and streaming are in the URL)."""
    if call.endpoint in IMAGE_ENDPOINTS:
        return image_body(call)
    if call.client == GEMINI.name and call.native is not None:
        return call.native
    return GEMINI.request_from_hub(call.payload or {})


def image_body(call: Outbound) -> Json:
    """One image of an OpenAI images request's prompt, in the aspect ratio
    closest to its size; ``held_output_tokens`` (what the hold allows one
    image) bounds the output."""
    payload = call.payload or {}
    ratio = closest_aspect_ratio(payload.get("size"))
    images = [i for i in payload.get("images") or () if isinstance(i, InputImage)]
    return image_request(str(payload.get("prompt", "")), ratio, call.held_output_tokens, images)


def image_answer(data: bytes) -> Answer:
    """A generateContent answer as OpenAI's images response, with its usage."""
    parsed = bridge.json_object(data)
    body, count = image_answer_to_openai(parsed)
    if count == 0:
        raise ApiError(
            400, f"Gemini made no image for this prompt: {no_image_reason(parsed)}.", "no_image"
        )
    usage = GEMINI.usage(parsed)
    if usage is not None:
        body["usage"] = image_usage_to_openai(usage)
    return Answer(orjson.dumps(body), body, usage)
