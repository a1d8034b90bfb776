"""The chat protocols the gateway speaks, inbound and upstream, by name.

OpenAI chat completions is the hub every other protocol translates to and
from (protocols/base.py). Adding a protocol is one module implementing
``Codec`` and one line below.
"""

from __future__ import annotations

from tollway.protocols.anthropic import AnthropicCodec
from tollway.protocols.base import Codec, HubReader, HubWriter, Json, StreamFailed
from tollway.protocols.gemini import GeminiCodec
from tollway.protocols.openai import OpenAICodec
from tollway.protocols.responses import ResponsesCodec

CODECS: dict[str, Codec] = {
    "openai": OpenAICodec(),
    "anthropic": AnthropicCodec(),
    "gemini": GeminiCodec(),
    "responses": ResponsesCodec(),
}

__all__ = ["CODECS", "Codec", "HubReader", "HubWriter", "Json", "StreamFailed"]
