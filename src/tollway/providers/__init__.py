"""Upstream providers, one module each, registered here by channel type.

Adding a provider is one module implementing ``Provider`` (providers/base.py)
and one line below (and its counterpart in the simulator).
"""

from __future__ import annotations

from tollway.providers.anthropic import AnthropicProvider
from tollway.providers.base import Answer, NotJson, Outbound, Provider, StreamScanner
from tollway.providers.gemini import GeminiProvider
from tollway.providers.openai import OpenAIProvider

PROVIDERS: dict[str, Provider] = {
    "openai": OpenAIProvider(),
    "anthropic": AnthropicProvider(),
    "gemini": GeminiProvider(),
}

__all__ = ["PROVIDERS", "Answer", "NotJson", "Outbound", "Provider", "StreamScanner"]
