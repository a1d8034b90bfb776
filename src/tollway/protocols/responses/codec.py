"""OpenAI's Responses API as a Codec: the parts put together."""

from __future__ import annotations

from tollway.errors import ApiError
from tollway.protocols.base import Json
from tollway.protocols.openai import upstream_failure
from tollway.protocols.responses import answers, inbound, outbound
from tollway.protocols.responses.reader import ResponsesReader
from tollway.protocols.responses.writer import ResponsesWriter
from tollway.types import Usage


class ResponsesCodec:
    """``POST /v1/responses`` translated to and from the hub (OpenAI chat).
    Errors are OpenAI's, as on chat completions."""

    name = "responses"

    def request_to_hub(self, payload: Json) -> Json:
        return inbound.request_to_hub(payload)

    def request_from_hub(self, hub: Json) -> Json:
        return outbound.request_from_hub(hub)

    def answer_to_hub(self, answer: Json) -> Json:
        return answers.answer_to_hub(answer)

    def answer_from_hub(self, hub: Json, usage: Usage | None) -> Json:
        return answers.answer_from_hub(hub, usage)

    def usage(self, answer: Json) -> Usage | None:
        return answers.usage_of(answer)

    def reader(self) -> ResponsesReader:
        return ResponsesReader()

    def writer(self, hub: Json) -> ResponsesWriter:
        return ResponsesWriter(hub)

    def error_body(self, error: ApiError) -> bytes:
        return error.body()

    def failure(self, status: int, data: bytes) -> ApiError:
        return upstream_failure(status, data)
