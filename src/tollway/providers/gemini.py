"""Google's Gemini API upstream (channel type "gemini").

The channel's base URL is the host root; a call goes to
``/v1beta/models/{model}:generateContent`` (``:streamGenerateContent?alt=sse``
for a stream) with the key as ``x-goog-api-key``. A client speaking Gemini's
protocol has its request sent as it came; any other client's request is
translated from the hub.
"""

from __future__ import annotations

from urllib.parse import quote

import orjson

from tollway.errors import ApiError
from tollway.protocols.base import Json
from tollway.protocols.gemini import GeminiCodec
from tollway.providers import bridge
from tollway.providers.base import JSON, Answer, Outbound, StreamScanner
from tollway.transport import UpstreamRequest

API_PATH = "/v1beta/models/"
GEMINI = GeminiCodec()


class GeminiProvider:
    endpoints = frozenset({"chat/completions"})

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        headers = {"x-goog-api-key": api_key, "Content-Type": JSON}
        hub = call.payload or {}
        model = quote(str(hub.get("model", "")), safe="")
        verb = ":streamGenerateContent?alt=sse" if call.stream else ":generateContent"
        body = orjson.dumps(content_body(call))
        return UpstreamRequest("POST", f"{base_url}{API_PATH}{model}{verb}", headers, body)

    def answer(self, call: Outbound, data: bytes) -> Answer:
        return bridge.read_answer(GEMINI, call, data)

    def scanner(self, call: Outbound) -> StreamScanner:
        return bridge.scanner(GEMINI, call)

    def failure(self, status: int, data: bytes) -> ApiError:
        return GEMINI.failure(status, data)


def content_body(call: Outbound) -> Json:
    """The generateContent body for ``call`` (the model and streaming are in the URL)."""
    if call.client == GEMINI.name and call.native is not None:
        return call.native
    return GEMINI.request_from_hub(call.payload or {})
