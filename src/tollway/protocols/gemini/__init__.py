"""Gemini's generateContent API as a protocol (channel type "gemini")."""

from __future__ import annotations

from tollway.protocols.gemini.codec import GeminiCodec
from tollway.protocols.gemini.images import image_answer_to_openai, image_request_from_openai
from tollway.protocols.gemini.streams import GeminiReader, GeminiWriter

__all__ = [
    "GeminiCodec",
    "GeminiReader",
    "GeminiWriter",
    "image_answer_to_openai",
    "image_request_from_openai",
]
