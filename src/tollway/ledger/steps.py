"""The steps a ledger batch applies: hold, close (settle or release), credit,
and the lease steps. Plain data; ``tollway.ledger.sql.run_batch`` applies
them in one transaction, and some steps carry back what the batch decided
(set on the step itself, so the caller reads it once the batch commits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Final, Literal

from tollway.ledger.records import UsageRecord


class EntryKind(StrEnum):
    """The kinds of entry a step appends to the ``ledger`` table (the stored
    strings). A close is a SETTLE or a RELEASE."""

    HOLD = "hold"
    SETTLE = "settle"  # a call's cost charged (its hold freed)
    RELEASE = "release"  # a hold given back whole
    CREDIT = "credit"
    DEBIT = "debit"
    LEASE = "lease"  # money reserved for (or added to) a lease
    RETURN = "return"  # a lease's reserve given back, its spent amount charged


CloseKind = Literal[EntryKind.SETTLE, EntryKind.RELEASE]

# The kinds every call's steps use, as plain names: looking a member up on
# its enum class is a descriptor call on Python 3.11, several per call on
# the hot path. (Closes compare them with ``is``.)
HOLD: Final = EntryKind.HOLD
SETTLE: Final = EntryKind.SETTLE
RELEASE: Final = EntryKind.RELEASE


@dataclass(slots=True)
class Hold:
    """Hold a call's worst case in a ``holds`` row any process may close.
    ``outlives_request``: the hold belongs to something that lives on after
    the request that opened it (a video job), which closes it; the stale-hold
    sweep leaves it alone."""

    request_id: str
    account_id: int
    token_id: int | None
    amount_nano: int
    outlives_request: bool = False


@dataclass(slots=True)
class Close:
    """Settle (any cost) or release (cost 0) an open hold, exactly once."""

    record: UsageRecord
    kind: CloseKind

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
    kind: CloseKind
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
