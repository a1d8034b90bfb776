"""What the ledger answers and what a call leaves behind: its errors, a hold
refused for want of money, a settlement, and the usage record.

Errors::

    LedgerError            a step that could not be written (no such hold,
     |                     no such account, the database failed)
     +-- BalanceOutOfRange a credit or debit past the most a balance may hold

A hold that does not fit is not an error but an answer (``InsufficientFunds``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from tollway.types import Usage, nano_to_usd


class LedgerError(RuntimeError):
    pass


class BalanceOutOfRange(LedgerError):
    """A credit or debit that would take a balance past the maximum either way."""


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    """Why a hold did not fit: the account's balance or the token's quota, or
    more than any balance may hold (MAX_NANO)."""

    # "balance" | "token_quota" | "account_budget" | "token_budget" | "most"
    scope: str
    needed_nano: int
    available_nano: int
    period: str | None = None  # a budget's: day, week or month

    @property
    def budget(self) -> bool:
        return self.scope.endswith("_budget")

    def more_than(self) -> str:
        """'more than the account balance has available ($0.05)', for a refusal."""
        if self.scope == "most":
            return f"more than any account may hold (${nano_to_usd(self.available_nano)})"
        whose = WHOSE.get(self.scope, "account balance")
        return f"more than the {whose} has available (${nano_to_usd(self.available_nano)})"


WHOSE = {
    "balance": "account balance",
    "token_quota": "API key's quota",
    "account_budget": "account's budget for this period",
    "token_budget": "API key's budget for this period",
}


@dataclass(frozen=True, slots=True)
class Settlement:
    cost_nano: int
    already_settled: bool = False


class UsageStatus(StrEnum):
    """How a call ended, as its usage record says (``usage_records.status``).
    A StrEnum: its members are the very strings stored, and compare equal to them."""

    OK = "ok"
    # The upstream did the work, but the client left before it had all of it.
    CLIENT_DISCONNECTED = "client_disconnected"
    UPSTREAM_ERROR = "upstream_error"
    # A stream the upstream cut off before its end: billed for what was generated.
    UPSTREAM_INTERRUPTED = "upstream_interrupted"
    # The gateway stopped the call (or a video was cancelled).
    CANCELLED = "cancelled"
    GATEWAY_ERROR = "gateway_error"
    # No channel's API could carry the request as asked (a 4xx after the hold).
    REFUSED = "refused"
    VIDEO_FAILED = "video_failed"
    VIDEO_EXPIRED = "video_expired"
    # A video given up at the job's maximum age.
    TIMED_OUT = "timed_out"
    # A hold a stopped process left open, released by the reconciler.
    ABANDONED = "abandoned"


@dataclass(slots=True)
class UsageRecord:
    """The one record a call leaves: what was used, at what prices, what it
    cost and how it ended, written with the settlement (or release) of its hold."""

    request_id: str
    account_id: int
    token_id: int | None
    model: str
    endpoint: str
    billing_mode: str
    method: str
    usage: Usage
    unit_prices: dict[str, str]
    cost_nano: int
    # (a bare string is accepted until every caller passes a UsageStatus)
    status: UsageStatus = UsageStatus.OK
    channel_id: int | None = None
    duration_ms: int | None = None
    detail: str | None = None
    created_at: datetime | None = None
    # The upstream reported more than was held (a misbehaving provider): the
    # full cost is charged all the same.
    exceeded_hold: bool = False
    attempts: int = 1  # channels tried (the last one served, or failed)
    group_name: str | None = None  # the price group, and its multiplier as written
    multiplier: str | None = None
    upstream_cost_nano: int | None = None  # what the channel's upstream charges for it
