"""Anthropic's Messages API as a Codec: the parts put together."""

from __future__ import annotations

from typing import Any

from tollway.errors import ApiError
from tollway.protocols.anthropic import answers, errors, inbound, outbound
from tollway.protocols.anthropic.reader import AnthropicReader
from tollway.protocols.anthropic.usage import usage_from_anthropic
from tollway.protocols.anthropic.writer import AnthropicWriter
from tollway.types import Usage

Json = dict[str, Any]


class AnthropicCodec:
    """``POST /v1/messages`` translated to and from the hub (OpenAI chat)."""

    name = "anthropic"

    def request_to_hub(self, payload: Json) -> Json:
        return inbound.request_to_hub(payload)

    def request_from_hub(self, hub: Json) -> Json:
        return outbound.request_from_hub(hub)

    def answer_to_hub(self, answer: Json) -> Json:
        return answers.answer_to_hub(answer)

    def answer_from_hub(self, hub: Json, usage: Usage | None) -> Json:
        return answers.answer_from_hub(hub, usage)

    def usage(self, answer: Json) -> Usage | None:
        return usage_from_anthropic(answer.get("usage")) if isinstance(answer, dict) else None

    def reader(self) -> AnthropicReader:
        return AnthropicReader()

    def writer(self, hub: Json) -> AnthropicWriter:
        return AnthropicWriter(hub)

    def error_body(self, error: ApiError) -> bytes:
        return errors.error_body(error)

    def failure(self, status: int, data: bytes) -> ApiError:
        return errors.failure(status, data)
