"""GeminiCodec: Gemini's generateContent API, translated to and from the hub."""

from __future__ import annotations

from tollway.errors import ApiError
from tollway.protocols.gemini import answers, bodies, errors, requests
from tollway.protocols.gemini.fields import Json
from tollway.protocols.gemini.streams import GeminiReader, GeminiWriter
from tollway.protocols.gemini.usage import usage_from_gemini
from tollway.types import Usage


class GeminiCodec:
    """Gemini's wire format. Its model and streaming are in the URL: the
    caller sets ``hub["model"]`` and ``hub["stream"]`` on a request made from
    a body, and bodies made from the hub carry neither."""

    name = "gemini"

    def request_to_hub(self, payload: Json) -> Json:
        return requests.request_to_hub(payload)

    def request_from_hub(self, hub: Json) -> Json:
        return bodies.request_from_hub(hub)

    def answer_to_hub(self, answer: Json) -> Json:
        return answers.answer_to_hub(answer)

    def answer_from_hub(self, hub: Json, usage: Usage | None) -> Json:
        return answers.answer_from_hub(hub, usage)

    def usage(self, answer: Json) -> Usage | None:
        return usage_from_gemini(answer.get("usageMetadata"))

    def reader(self) -> GeminiReader:
        return GeminiReader()

    def writer(self, hub: Json) -> GeminiWriter:
        return GeminiWriter(hub)

    def error_body(self, error: ApiError) -> bytes:
        return errors.error_body(error)

    def failure(self, status: int, data: bytes) -> ApiError:
        return errors.failure(status, data)
