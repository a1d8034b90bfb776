"""Anthropic's Messages API (``POST /v1/messages``), inbound and upstream."""

from __future__ import annotations

from tollway.protocols.anthropic.codec import AnthropicCodec
from tollway.protocols.anthropic.native import native_only
from tollway.protocols.anthropic.outbound import DEFAULT_MAX_TOKENS
from tollway.protocols.anthropic.reader import AnthropicReader
from tollway.protocols.anthropic.writer import AnthropicWriter

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "AnthropicCodec",
    "AnthropicReader",
    "AnthropicWriter",
    "native_only",
]
