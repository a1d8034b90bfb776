"""Gemini's usageMetadata as Usage, and Usage as usageMetadata or OpenAI's usage.

``promptTokenCount`` already includes the cached tokens; thoughts are billed as
output. Image and audio output (Gemini's image and speech models) are priced
apart, so those modalities leave ``output_tokens``; image input stays inside
``input_tokens``, as OpenAI's chat usage reports it.
"""

from __future__ import annotations

from typing import Any

from tollway.protocols.gemini.fields import Json
from tollway.types import Usage

_COUNTS = ("promptTokenCount", "candidatesTokenCount", "totalTokenCount")


def usage_from_gemini(meta: Any) -> Usage | None:
    """None when there is no usage or it is garbage (the caller counts instead)."""
    if not isinstance(meta, dict) or not any(name in meta for name in _COUNTS):
        return None
    try:
        prompt = _count(meta.get("promptTokenCount")) + _count(meta.get("toolUsePromptTokenCount"))
        cached = _count(meta.get("cachedContentTokenCount"))
        candidates = _count(meta.get("candidatesTokenCount"))
        thoughts = _count(meta.get("thoughtsTokenCount"))
        details = meta.get("candidatesTokensDetails")
        image = _modality(details, "IMAGE")
        audio = _modality(details, "AUDIO")
        if cached > prompt or image + audio > candidates:
            raise ValueError("a part is larger than its total")
    except (TypeError, ValueError):
        return None
    return Usage(
        input_tokens=prompt,
        cached_input_tokens=cached,
        output_tokens=candidates - image - audio + thoughts,
        reasoning_tokens=thoughts,
        image_output_tokens=image,
        audio_output_tokens=audio,
    )


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return value


def _modality(details: Any, modality: str) -> int:
    if details is None:
        return 0
    if not isinstance(details, list) or not all(isinstance(d, dict) for d in details):
        raise ValueError("candidatesTokensDetails is not a list of objects")
    return sum(_count(d.get("tokenCount")) for d in details if d.get("modality") == modality)


def usage_metadata(usage: Usage) -> Json:
    """Usage as Gemini reports it; ``usage_from_gemini`` reads it back unchanged."""
    prompt = usage.input_tokens + usage.image_input_tokens + usage.audio_input_tokens
    text = max(usage.output_tokens - usage.reasoning_tokens, 0)
    candidates = text + usage.image_output_tokens + usage.audio_output_tokens
    meta: Json = {"promptTokenCount": prompt, "candidatesTokenCount": candidates}
    if usage.cached_input_tokens:
        meta["cachedContentTokenCount"] = usage.cached_input_tokens
    if usage.reasoning_tokens:
        meta["thoughtsTokenCount"] = usage.reasoning_tokens
    meta["totalTokenCount"] = prompt + candidates + usage.reasoning_tokens
    details = [("TEXT", text), ("IMAGE", usage.image_output_tokens)]
    details.append(("AUDIO", usage.audio_output_tokens))
    if usage.image_output_tokens or usage.audio_output_tokens:
        meta["candidatesTokensDetails"] = [
            {"modality": modality, "tokenCount": count} for modality, count in details if count
        ]
    return meta
