"""Which upstream failures a call survives by moving to another channel.

A failure before anything reached the client is retried elsewhere when it
says the channel, not the request, is at fault: no connection, a timeout,
the key refused (401/403), 408, 429, any 5xx, or a stream that broke before
its first byte. Other 4xx are the request's fault and go back to the client.
Some answers say the key itself is dead (refused, out of credit): the key is
disabled with the upstream's message as its reason.
"""

from __future__ import annotations

import enum

import orjson

RETRIED_STATUSES = frozenset({401, 403, 408, 429})
# What upstreams say when a key can no longer pay or was revoked, whatever
# status they send it with (Anthropic: 400; OpenAI: 429; Gemini: 400).
DEAD_KEY_TEXTS = (
    "credit balance is too low",
    "insufficient_quota",
    "exceeded your current quota",
    "quota exceeded",
    "billing_hard_limit",
    "api key not valid",
    "api_key_invalid",
    "invalid api key",
    "invalid x-api-key",
    "incorrect api key",
    "account is not active",
    "account has been deactivated",
)
MAX_REASON_CHARS = 500


class Failure(enum.Enum):
    """Why an attempt did not serve the call."""

    TRANSPORT = "transport"  # no connection, reset, timeout
    STATUS = "status"  # a retried HTTP status
    KEY = "key"  # the key was refused or is out of credit
    EMPTY_STREAM = "empty_stream"  # a 200 stream that broke before its first byte
    REFUSED = "refused"  # the channel's API cannot carry this request


def retryable(status: int) -> bool:
    return status in RETRIED_STATUSES or status >= 500


def key_rejected(status: int, body: bytes) -> bool:
    """Whether the upstream said the key itself is no good."""
    if status in (401, 403):
        return True
    if status not in (400, 402, 429):
        return False
    text = body[:4096].decode("utf-8", "replace").lower()
    return any(marker in text for marker in DEAD_KEY_TEXTS)


def reason_of(status: int, body: bytes) -> str:
    """The upstream's own words for an error answer, short."""
    message = ""
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        parsed = None
    if isinstance(parsed, list) and parsed:  # Gemini's stream errors come as a list
        parsed = parsed[0]
    if isinstance(parsed, dict):
        error = parsed.get("error", parsed)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            message = error["message"]
        elif isinstance(error, str):
            message = error
    if not message:
        message = body[:MAX_REASON_CHARS].decode("utf-8", "replace").strip()
    return f"HTTP {status}: {message}"[:MAX_REASON_CHARS]
