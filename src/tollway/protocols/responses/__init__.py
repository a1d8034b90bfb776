"""OpenAI's Responses API (``POST /v1/responses``), inbound and upstream."""

from __future__ import annotations

from tollway.protocols.responses.checks import is_response_id
from tollway.protocols.responses.codec import ResponsesCodec
from tollway.protocols.responses.inbound import item_type, native_only, sent_natively
from tollway.protocols.responses.reader import ResponsesReader
from tollway.protocols.responses.writer import ResponsesWriter

__all__ = [
    "ResponsesCodec",
    "ResponsesReader",
    "ResponsesWriter",
    "is_response_id",
    "item_type",
    "native_only",
    "sent_natively",
]
