"""Anthropic's Messages API upstream (channel type "anthropic").

The channel's base URL is the host root; calls go to ``/v1/messages`` with
the key as ``x-api-key``. A client speaking Anthropic's protocol has its
request sent as it came (the model renamed); any other client's request is
translated from the hub, with ``max_tokens`` (which Anthropic requires) set
to what the hold allowed when the client named none.
"""

from __future__ import annotations

import orjson

from tollway.errors import ApiError
from tollway.protocols.anthropic import AnthropicCodec
from tollway.protocols.base import Json
from tollway.providers import bridge
from tollway.providers.base import JSON, Answer, Outbound, StreamScanner
from tollway.transport import UpstreamRequest

API_VERSION = "2023-06-01"
MESSAGES_PATH = "/v1/messages"
ANTHROPIC = AnthropicCodec()


class AnthropicProvider:
    endpoints = frozenset({"chat/completions", "responses"})  # responses: from the hub

    def request(self, base_url: str, api_key: str, call: Outbound) -> UpstreamRequest:
        headers = {
            "x-api-key": api_key,
            "anthropic-version": API_VERSION,
            "Content-Type": JSON,
        }
        if call.anthropic_beta is not None and call.client == ANTHROPIC.name:
            headers["anthropic-beta"] = call.anthropic_beta
        body = orjson.dumps(messages_body(call))
        return UpstreamRequest("POST", f"{base_url}{MESSAGES_PATH}", headers, body)

    def answer(self, call: Outbound, data: bytes) -> Answer:
        return bridge.read_answer(ANTHROPIC, call, data)

    def scanner(self, call: Outbound) -> StreamScanner:
        return bridge.scanner(ANTHROPIC, call)

    def failure(self, status: int, data: bytes) -> ApiError:
        return ANTHROPIC.failure(status, data)


def messages_body(call: Outbound) -> Json:
    """The Messages API body for ``call``."""
    hub = call.payload or {}
    if call.client == ANTHROPIC.name and call.native is not None:
        body = {**call.native, "model": hub.get("model")}
    else:
        if _no_max_tokens(hub) and call.held_output_tokens is not None:
            hub = {**hub, "max_tokens": call.held_output_tokens}
        body = ANTHROPIC.request_from_hub(hub)
    if call.stream:
        body["stream"] = True
    else:
        body.pop("stream", None)
    return body


def _no_max_tokens(hub: Json) -> bool:
    return hub.get("max_completion_tokens") is None and hub.get("max_tokens") is None
