"""Upstream providers, one module each, registered by channel type.

A provider turns a channel and a relayed body into an upstream request, and
the upstream's answer into ``Usage``; it never prices or charges anything.
"""

from __future__ import annotations

from tollway.providers.openai import OpenAIProvider
from tollway.types import Provider

PROVIDERS: dict[str, Provider] = {
    "openai": OpenAIProvider(),
}

__all__ = ["PROVIDERS", "Provider"]
