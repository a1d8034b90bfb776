"""The ledger's vocabulary: the steps a batch applies (hold, close, credit,
and the lease steps), what they answer, and the usage record a call leaves.
Plain data; ``ledger_sql.run_batch`` applies them in one transaction."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from tollway.types import Usage, nano_to_usd


class LedgerError(RuntimeError):
    pass


class BalanceOutOfRange(LedgerError):
    """A credit or debit that would take a balance past the maximum either way."""


@dataclass(frozen=True, slots=True)
class InsufficientFunds:
    """Why a hold did not fit: the account's balance or the token's quota, or
    more than any balance may hold (MAX_NANO)."""

    scope: str  # "balance" | "token_quota" | "most"
    needed_nano: int
    available_nano: int

    def more_than(self) -> str:
        """'more than the account balance has available ($0.05)', for a refusal."""
        if self.scope == "most":
            return f"more than any account may hold (${nano_to_usd(self.available_nano)})"
        whose = "account balance" if self.scope == "balance" else "API key's quota"
        return f"more than the {whose} has available (${nano_to_usd(self.available_nano)})"


@dataclass(frozen=True, slots=True)
class Settlement:
    cost_nano: int
    already_settled: bool = False


@dataclass(slots=True)
class UsageRecord:
    """The one record a call leaves (SPEC §3)."""

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
    status: str = "ok"
    channel_id: int | None = None
    duration_ms: int | None = None
    detail: str | None = None
    created_at: datetime | None = None
    # The upstream reported more than was held (a misbehaving provider): the
    # full cost is charged all the same.
    exceeded_hold: bool = False


@dataclass(slots=True)
class Hold:
    request_id: str
    account_id: int
    token_id: int | None
    amount_nano: int


@dataclass(slots=True)
class Close:
    """Settle (any cost) or release (cost 0) an open hold, exactly once."""

    record: UsageRecord
    kind: str  # "settle" | "release"

    @property
    def account_id(self) -> int:
        return self.record.account_id


@dataclass(slots=True)
class Credit:
    account_id: int
    amount_nano: int
    reason: str


@dataclass(slots=True)
class LeaseClose:
    """Settle (any cost) or release (cost 0) a call held against a lease: its
    charge goes to the lease's spent amount, its record to usage_records."""

    record: UsageRecord
    lease_id: int | None
    owner: str  # the process holding the lease (only it spends a lease)
    held: int
    kind: str  # "settle" | "release"
    # Set by the batch: the lease was gone (reclaimed), so the account was
    # charged directly; or how much its reserve grew to cover a charge above
    # what the lease held.
    missing: bool = False
    raised: int = 0

    @property
    def account_id(self) -> int:
        return self.record.account_id


@dataclass(slots=True)
class LeaseGrow:
    """Fold a lease's spent amount into the balance and reserve more: at
    least ``need``, up to ``want`` (less when the account or token has less
    than LEASE_SHARE times that to spare). ``lease_id`` None: a new lease."""

    owner: str
    account_id: int
    token_id: int | None
    lease_id: int | None
    need: int
    want: int
    # Set by the batch:
    granted: int = 0
    folded: int = 0
    new_id: int | None = None  # a lease row was made (none, or it was reclaimed)


@dataclass(slots=True)
class LeaseReturn:
    """Fold a lease back and delete it: the balance (and token use) is
    charged its spent amount, the rest of its reserve is freed. With
    ``stale_before``, only if its owner has not renewed it since then."""

    lease_id: int
    stale_before: datetime | None = None
    account_id: int = 0  # its account, locked with the batch's others


@dataclass(slots=True)
class LeaseTouch:
    """The owner is alive: renew its leases (calls still in flight on them)."""

    lease_ids: list[int]
    owner: str
    account_id: int = 0
    missing: set[int] = field(default_factory=set)  # set by the batch: reclaimed meanwhile


@dataclass(slots=True)
class LeaseRevoke:
    """An edit lowered what may be spent (a quota, a debit, a disabled token
    or account): every process's leases of the account — of one token, with
    ``token_id`` — are returned at once, their unspent reserve freed, so the
    next hold anywhere is weighed against the new limit. Their owners find
    out at their next step on the lease, or when the shared state version
    (bumped here) moves; calls in flight on them charge the account directly."""

    account_id: int
    token_id: int | None = None
    returned: int = 0  # set by the batch: how many leases


Step = Hold | Close | Credit | LeaseClose | LeaseGrow | LeaseReturn | LeaseTouch | LeaseRevoke
