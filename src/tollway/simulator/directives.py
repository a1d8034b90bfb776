"""Per-request steering: ``[sim:KEY=VALUE]`` tokens inside the prompt text.

A test that drives the simulator *through* a gateway can only control the
request body, so the steering travels inside the last message's text. Tokens:

- ``[sim:error=STATUS]``    answer STATUS (400-599) with an OpenAI-shaped error
- ``[sim:tokens=N]``        exactly N visible output tokens per choice
- ``[sim:cached=N]``        report N prompt tokens as cached (capped at the prompt)
- ``[sim:reasoning=N]``     N hidden reasoning tokens per choice, added to
                            completion_tokens (so completion = n * (tokens + N))
- ``[sim:drop_after=K]``    stream: K content chunks, then cut the connection
                            (no finish chunk, no usage, no [DONE]); non-stream:
                            cut the connection without any response
- ``[sim:stall_after=K]``   stream: K content chunks, then silence (the
                            connection open, nothing more sent) until the
                            client leaves: an upstream hung mid-stream
- ``[sim:latency_ms=N]``    delay before answering (overrides the config)
- ``[sim:chunk_delay_ms=N]`` delay before each stream content chunk
- ``[sim:no_usage]``        omit usage from this response
- ``[sim:prompt_tokens=N]`` report N prompt tokens, whatever was sent (an
                            upstream that bills more than the prompt was)
- ``[sim:choices=N]``       answer only the first N of the n choices asked
                            (0: none), streamed or not
- ``[sim:cache_write=N]``   Anthropic: report N prompt tokens written to the
                            5-minute cache; Responses: as ``cache_write_tokens``
                            (other endpoints ignore it)
- ``[sim:cache_write_1h=N]`` Anthropic: N prompt tokens written to the 1-hour cache
- ``[sim:error_after=K]``   Anthropic stream: K text deltas, then an ``error``
                            event (overloaded_error) and the end of the stream
- ``[sim:tool=NAME]``       Anthropic and Gemini: when the request declares a
                            tool NAME, call it (a name, not an integer)

An unknown key or a bad value is a 400, so a typo in a test fails loudly.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

DIRECTIVE_MARK = "[sim:"
_DIRECTIVE = re.compile(r"\[sim:([a-z0-9_]+)(?:=([^\]]*))?\]")
_INT_KEYS = frozenset(
    {
        "error",
        "tokens",
        "cached",
        "reasoning",
        "drop_after",
        "stall_after",
        "latency_ms",
        "chunk_delay_ms",
        "prompt_tokens",
        "choices",
        "cache_write",
        "cache_write_1h",
        "error_after",
    }
)
_FLAG_KEYS = frozenset({"no_usage"})
# String-valued keys, with the pattern a value must match in full.
_STR_KEYS = {"tool": re.compile(r"[A-Za-z0-9_.:-]{1,64}")}


class DirectiveError(ValueError):
    """A ``[sim:...]`` token the simulator does not understand."""


@dataclass(frozen=True, slots=True)
class Directives:
    error: int | None = None
    tokens: int | None = None
    cached: int | None = None
    reasoning: int | None = None
    drop_after: int | None = None
    stall_after: int | None = None
    latency_ms: int | None = None
    chunk_delay_ms: int | None = None
    no_usage: bool = False
    prompt_tokens: int | None = None
    choices: int | None = None
    cache_write: int | None = None
    cache_write_1h: int | None = None
    error_after: int | None = None
    tool: str | None = None


# Shared by every request without directives: the common case allocates nothing.
NO_DIRECTIVES = Directives()


def parse_directives(text: str) -> Directives:
    """Collect the directives found in ``text`` (the last one of a key wins)."""
    if DIRECTIVE_MARK not in text:
        return NO_DIRECTIVES
    found: dict[str, Any] = {}
    for match in _DIRECTIVE.finditer(text):
        key, raw = match.group(1), match.group(2)
        found[key] = _value(key, raw)
    return Directives(**found) if found else NO_DIRECTIVES


def _value(key: str, raw: str | None) -> int | bool | str:
    if key in _FLAG_KEYS:
        if raw is not None:
            raise DirectiveError(f"[sim:{key}] takes no value")
        return True
    pattern = _STR_KEYS.get(key)
    if pattern is not None:
        if raw is None or not pattern.fullmatch(raw):
            raise DirectiveError(
                f"[sim:{key}=...] needs a name (letters, digits, _.:-), got {raw!r}"
            )
        return raw
    if key not in _INT_KEYS:
        raise DirectiveError(f"unknown simulator directive [sim:{key}]")
    if raw is None or not (raw.isascii() and raw.isdigit()) or len(raw) > 12:
        raise DirectiveError(f"[sim:{key}=...] needs a non-negative integer, got {raw!r}")
    value = int(raw)
    if key == "error" and not 400 <= value <= 599:
        raise DirectiveError("[sim:error=...] needs an HTTP error status between 400 and 599")
    return value


def content_text(content: Any) -> str:
    """The text of a message ``content``: a string, or the text parts of a list."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""
