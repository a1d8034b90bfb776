"""Rate limits: requests and tokens a minute and calls at once, per token and
per account (rules.py), counted in this process (local.py) or in Redis for
every replica (shared.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Sequence
from typing import Protocol

from tollway.limits.local import LocalLimiter
from tollway.limits.rules import Admission, Limits, Subject, Ticket, limits_of
from tollway.settings import Settings

__all__ = [
    "Admission",
    "Limiter",
    "Limits",
    "LocalLimiter",
    "Subject",
    "Ticket",
    "limiter_for",
    "limits_of",
]


class Limiter(Protocol):
    async def admit(
        self, request_id: str, subjects: Sequence[Subject], tokens: int
    ) -> Admission: ...

    async def finish(self, ticket: Ticket, used_tokens: int) -> None: ...

    def end(self, ticket: Ticket, used_tokens: int) -> Awaitable[None] | None:
        """``finish`` without waiting: what is left to wait for (None: done)."""
        ...

    async def close(self) -> None: ...


def limiter_for(settings: Settings) -> Limiter:
    """Redis's when TOLLWAY_REDIS_URL is set, else this process's own."""
    if settings.redis_url:
        from tollway.limits.shared import SharedLimiter  # redis only when used

        fail_open = settings.limits_on_redis_down == "open"
        return SharedLimiter(settings.redis_url, fail_open, settings.redis_prefix)
    return LocalLimiter()
