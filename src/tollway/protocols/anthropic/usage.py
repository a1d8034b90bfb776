"""Anthropic's usage report read as Tollway's ``Usage``, and written back.

Anthropic counts cache reads and cache writes apart from ``input_tokens``;
Tollway's ``input_tokens`` includes them (billing prices each part at its own
rate and the rest at the input rate), so reading adds them in and writing
takes them out again."""

from __future__ import annotations

from typing import Any

from tollway.types import Usage

Json = dict[str, Any]


def usage_from_anthropic(reported: Any) -> Usage | None:
    """A Messages ``usage`` object as Usage; None when absent or garbage
    (a negative, fractional or boolean count, a part larger than its whole)."""
    if not isinstance(reported, dict):
        return None
    if "input_tokens" not in reported and "output_tokens" not in reported:
        return None
    try:
        fresh = _count(reported.get("input_tokens"))
        read = _count(reported.get("cache_read_input_tokens"))
        written, one_hour = _writes(reported)
        output = _count(reported.get("output_tokens"))
        thinking = _thinking(reported.get("output_tokens_details"))
    except ValueError:
        return None
    if one_hour > written or thinking > output:
        return None
    return Usage(
        input_tokens=fresh + read + written,
        cached_input_tokens=read,
        cache_write_tokens=written - one_hour,
        cache_write_1h_tokens=one_hour,
        output_tokens=output,
        reasoning_tokens=thinking,
    )


def _writes(reported: Json) -> tuple[int, int]:
    """All cache writes, and the part of them written for an hour. Without a
    total, the breakdown's parts are the total."""
    breakdown = reported.get("cache_creation")
    if breakdown is not None and not isinstance(breakdown, dict):
        raise ValueError(f"not a cache breakdown: {breakdown!r}")
    breakdown = breakdown or {}
    one_hour = _count(breakdown.get("ephemeral_1h_input_tokens"))
    if reported.get("cache_creation_input_tokens") is None:
        return _count(breakdown.get("ephemeral_5m_input_tokens")) + one_hour, one_hour
    return _count(reported["cache_creation_input_tokens"]), one_hour


def _thinking(details: Any) -> int:
    if details is None:
        return 0
    if not isinstance(details, dict):
        raise ValueError(f"not output details: {details!r}")
    return _count(details.get("thinking_tokens"))


def _count(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"not a token count: {value!r}")
    return value


def usage_to_anthropic(usage: Usage | None, breakdown: bool = False) -> Json:
    """Usage as Anthropic reports it: ``input_tokens`` without the cache reads
    and writes; with ``breakdown``, the writes split by how long they last."""
    usage = usage or Usage()
    writes = usage.cache_write_tokens + usage.cache_write_1h_tokens
    reported: Json = {
        "input_tokens": max(usage.input_tokens - usage.cached_input_tokens - writes, 0),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": writes,
        "cache_read_input_tokens": usage.cached_input_tokens,
    }
    if breakdown:
        reported["cache_creation"] = {
            "ephemeral_5m_input_tokens": usage.cache_write_tokens,
            "ephemeral_1h_input_tokens": usage.cache_write_1h_tokens,
        }
    return reported


def usage_to_hub(usage: Usage) -> Json:
    """Usage in OpenAI's shape (prompt tokens include the cached ones)."""
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
        "completion_tokens_details": {"reasoning_tokens": usage.reasoning_tokens},
    }
