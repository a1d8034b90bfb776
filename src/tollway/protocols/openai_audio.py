"""OpenAI's audio usage, read into ``Usage``: speech (``/v1/audio/speech``,
SSE ``speech.audio.done``) and transcription (``/v1/audio/transcriptions``
and ``/translations``)."""

from __future__ import annotations

from decimal import ROUND_CEILING, Decimal
from typing import Any

from tollway.protocols.openai import token_count
from tollway.types import Usage

AUDIO_ENDPOINTS = frozenset({"audio/speech", "audio/transcriptions", "audio/translations"})
MAX_REPORTED_MS = 10**10


def audio_usage_from_openai(u: dict[str, Any]) -> Usage | None:
    """Audio usage in its three forms: a transcription's ``{type: "duration",
    seconds}`` (ms of audio heard, rounded up; ``seconds`` may be fractional)
    or ``{type: "tokens", input_tokens, input_token_details{text_tokens,
    audio_tokens}, output_tokens}`` (note: ``input_token_details``), and
    speech's ``{input_tokens, output_tokens}`` (text in, audio out). None for
    anything else (the caller estimates instead)."""
    try:
        if u.get("type") == "duration":
            return _duration(u.get("seconds"))
        input_total = token_count(u.get("input_tokens"))
        output = token_count(u.get("output_tokens"))
        if u.get("type") != "tokens":  # speech: the output is audio
            if "input_tokens" not in u and "output_tokens" not in u:
                return None
            return Usage(input_tokens=input_total, audio_output_tokens=output)
        details = u.get("input_token_details") or {}
        if "audio_tokens" in details or "text_tokens" in details:
            audio = token_count(details.get("audio_tokens"))
        else:
            audio = input_total  # no split: all of it as audio, the dearer class
        if audio > input_total:
            raise ValueError("a part is larger than its total")
        return Usage(
            input_tokens=input_total - audio, audio_input_tokens=audio, output_tokens=output
        )
    except (AttributeError, TypeError, ValueError, ArithmeticError):
        return None


def _duration(seconds: Any) -> Usage | None:
    if isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return None
    exact = Decimal(repr(seconds)) * 1000
    if not exact.is_finite() or not 0 <= exact <= MAX_REPORTED_MS:
        return None
    return Usage(audio_input_ms=int(exact.to_integral_value(rounding=ROUND_CEILING)))
