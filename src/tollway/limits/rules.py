"""What a rate limit is and what it answers: requests and tokens a minute and
calls at once, per token and per account.

A minute is a sliding window of 60 one-second buckets: a call is admitted
when, with it, the buckets of its second and the 59 before hold no more than
the limit. Over any 60 seconds a limit can so be passed by at most what was
admitted in one second (the window's edge), never more.

Tokens count what a call may use: held up front at its hold's size (prompt
bound plus max_tokens), then set to what it used when it settles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tollway.errors import ApiError
from tollway.types import Usage

WINDOW_S = 60
# A call in flight longer than this no longer counts against max_concurrent
# (its process died before it could say it ended).
STALE_CALL_S = 900

LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent")
MAX_LIMIT = 10**9


@dataclass(frozen=True, slots=True)
class Limits:
    rpm: int | None = None
    tpm: int | None = None
    concurrent: int | None = None


def limits_of(row: Any, prefix: str = "") -> Limits | None:
    """The limits a token or account row sets (None: none)."""
    rpm, tpm, concurrent = (row[prefix + name] for name in LIMIT_FIELDS)
    if rpm is None and tpm is None and concurrent is None:
        return None
    return Limits(rpm, tpm, concurrent)


@dataclass(frozen=True, slots=True)
class Subject:
    """Whose calls a limit counts: a token's or an account's."""

    kind: str  # "token" | "account"
    id: int
    limits: Limits
    key: str = field(init=False, compare=False)  # "token:12": its counters' name

    def __post_init__(self) -> None:
        object.__setattr__(self, "key", f"{self.kind}:{self.id}")


def tokens_of(usage: Usage) -> int:
    """The tokens a call counts against tokens-a-minute: every class."""
    return (
        usage.input_tokens
        + usage.output_tokens
        + usage.image_input_tokens
        + usage.image_output_tokens
        + usage.audio_input_tokens
        + usage.audio_output_tokens
    )


@dataclass(slots=True)
class Headroom:
    """What is left of one limit for the headers: the tightest subject's."""

    limit: int
    remaining: int
    reset_s: float
    reset: str = ""  # reset_s as the header writes it, when known ahead (a lease's)


@dataclass(slots=True)
class Ticket:
    """An admitted call: what to give back when it ends."""

    request_id: str
    subjects: tuple[Subject, ...]
    tokens: int  # counted up front
    second: int  # the bucket they were counted in
    # Admitted from leases (limits/leases.py): per subject its lease and the
    # slot taken from it ('' where calls at once are not limited).
    slots: tuple[str, ...] = ()
    leases: Sequence[Any] | None = None


@dataclass(slots=True)
class Admission:
    ticket: Ticket | None  # None: refused
    requests: Headroom | None = None
    tokens: Headroom | None = None
    # Refused: which limit of whose, and when to try again.
    refused_by: str = ""  # "requests" | "tokens" | "concurrent"
    subject: str = ""  # "token" | "account"
    retry_after_s: float = 0.0
    too_large: bool = False  # the call's own tokens pass the limit: it never fits


def reset_text(seconds: float) -> str:
    """A duration as OpenAI's x-ratelimit-reset-* headers write it: 1s, 6m0s, 20ms."""
    if seconds < 1:
        return f"{max(int(seconds * 1000), 0)}ms"
    whole = math.ceil(seconds)
    minutes, secs = divmod(whole, 60)
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def headers_of(admission: Admission) -> dict[str, str]:
    """OpenAI's x-ratelimit-* headers for the limits the call was counted by
    (written out per unit: this runs on every limited call)."""
    headers = {}
    room = admission.requests
    if room is not None:
        headers["x-ratelimit-limit-requests"] = str(room.limit)
        headers["x-ratelimit-remaining-requests"] = str(max(room.remaining, 0))
        headers["x-ratelimit-reset-requests"] = room.reset or reset_text(room.reset_s)
    room = admission.tokens
    if room is not None:
        headers["x-ratelimit-limit-tokens"] = str(room.limit)
        headers["x-ratelimit-remaining-tokens"] = str(max(room.remaining, 0))
        headers["x-ratelimit-reset-tokens"] = room.reset or reset_text(room.reset_s)
    return headers


def refusal(admission: Admission, tokens: int) -> ApiError:
    """The 429 for a refused call, with retry-after and the headers."""
    whose = "API key" if admission.subject == "token" else "account"
    if admission.refused_by == "concurrent":
        message = f"This {whose} has reached its limit of calls at once. Try again shortly."
    elif admission.too_large:
        limit = admission.tokens.limit if admission.tokens else 0
        message = (
            f"This request may use up to {tokens} tokens, more than this {whose}'s limit of "
            f"{limit} tokens per minute. Lower max_tokens or the prompt."
        )
    else:
        unit = "requests" if admission.refused_by == "requests" else "tokens"
        room = admission.requests if unit == "requests" else admission.tokens
        limit = room.limit if room else 0
        message = (
            f"Rate limit reached: this {whose} may use {limit} {unit} per minute. "
            f"Try again in {reset_text(admission.retry_after_s)}."
        )
    headers = headers_of(admission)
    headers["retry-after"] = str(max(math.ceil(admission.retry_after_s), 1))
    kind = "tokens" if admission.refused_by == "tokens" else "requests"  # OpenAI's types
    return ApiError(429, message, "rate_limit_exceeded", type=kind, headers=headers)


def limits_unavailable() -> ApiError:
    return ApiError(
        503,
        "Rate limits cannot be checked right now; try again shortly.",
        "limits_unavailable",
        type="server_error",
        headers={"retry-after": "1"},
    )
