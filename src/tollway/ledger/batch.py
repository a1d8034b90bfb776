"""What one batch of ledger steps will write, gathered as its steps are
decided, and the writes its steps share: reserving money for a hold, the
summed charges of its closes, the rows it inserts at the end."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tollway.ledger.dialects import Dialect
from tollway.ledger.records import InsufficientFunds, UsageRecord
from tollway.ledger.statements import (
    AVAILABLE_BALANCE,
    AVAILABLE_QUOTA,
    CHARGE_ACCOUNT,
    CHARGE_TOKEN,
    HOLD_ACCOUNT,
    HOLD_TOKEN,
    TOKEN_COLUMNS,
    UNHOLD_ACCOUNT,
)
from tollway.ledger.steps import HOLD, EntryKind, Hold


@dataclass
class Batch:
    """What a batch will write once every step is decided. ``accounts`` and
    ``tokens``: per row, [held freed, cost charged] by the closes so far."""

    dialect: Dialect
    now: Any
    holds: list[dict[str, Any]] = field(default_factory=list)
    usage: list[dict[str, Any]] = field(default_factory=list)
    entries: list[dict[str, Any]] = field(default_factory=list)
    accounts: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    tokens: dict[int, list[int]] = field(default_factory=lambda: defaultdict(lambda: [0, 0]))
    closed: dict[str, int] = field(default_factory=dict)
    revoked: bool = False  # leases were revoked: the shared state version moves

    def entry(
        self,
        account_id: int,
        token_id: int | None,
        request_id: str | None,
        kind: EntryKind,
        amount: int,
        reason: str | None = None,
    ) -> None:
        self.entries.append(
            {
                "now": self.now,
                "account_id": account_id,
                "token_id": token_id,
                "request_id": request_id,
                "kind": kind,
                "amount": amount,
                "reason": reason,
            }
        )


def reserve(cur: Any, batch: Batch, step: Hold) -> InsufficientFunds | None:
    """Add to what the account (and token) hold, if it fits; else change nothing."""
    q = batch.dialect.sql
    args = {"amount": step.amount_nano, "id": step.account_id}
    cur.execute(q(HOLD_ACCOUNT), args)
    if cur.fetchone() is None:
        return _short(cur, batch, AVAILABLE_BALANCE, step.account_id, step.amount_nano, "balance")
    if step.token_id is not None:
        cur.execute(q(HOLD_TOKEN), {"amount": step.amount_nano, "id": step.token_id})
        if cur.fetchone() is None:
            cur.execute(q(UNHOLD_ACCOUNT), args)
            return _short(
                cur, batch, AVAILABLE_QUOTA, step.token_id, step.amount_nano, "token_quota"
            )
    return None


def _short(
    cur: Any, batch: Batch, query: str, row_id: int, needed: int, scope: str
) -> InsufficientFunds:
    cur.execute(batch.dialect.sql(query), {"id": row_id})
    row = cur.fetchone()
    available = int(row[0]) if row is not None and row[0] is not None else 0
    return InsufficientFunds(scope, needed, max(available, 0))


def record_hold(batch: Batch, step: Hold) -> None:
    """The hold row and its ledger entry, once its money is reserved."""
    batch.holds.append(
        {
            "request_id": step.request_id,
            "account_id": step.account_id,
            "token_id": step.token_id,
            "amount": step.amount_nano,
            "outlives_request": step.outlives_request,
            "now": batch.now,
        }
    )
    batch.entry(step.account_id, step.token_id, step.request_id, HOLD, step.amount_nano)


def charge_directly(batch: Batch, r: UsageRecord, cost: int) -> None:
    """A call whose lease was reclaimed meanwhile: charge the balance itself
    (the call's reserve went back with the lease)."""
    batch.accounts[r.account_id][1] += cost
    if r.token_id is not None:
        batch.tokens[r.token_id][1] += cost


def apply_charges(cur: Any, batch: Batch) -> None:
    """Write the closes' summed charges so far, one statement per row."""
    q = batch.dialect.sql
    if batch.accounts:
        cur.executemany(
            q(CHARGE_ACCOUNT),
            [
                {"held": held, "cost": cost, "id": i}
                for i, (held, cost) in sorted(batch.accounts.items())
            ],
        )
        batch.accounts.clear()
    if batch.tokens:
        cur.executemany(
            q(CHARGE_TOKEN),
            [
                {"held": held, "cost": cost, "now": batch.now, "id": i}
                for i, (held, cost) in sorted(batch.tokens.items())
            ],
        )
        batch.tokens.clear()


def usage_row(batch: Batch, r: UsageRecord) -> dict[str, Any]:
    u = r.usage
    row = {
        "request_id": r.request_id,
        "now": batch.dialect.time(r.created_at) if r.created_at else batch.now,
        "account_id": r.account_id,
        "token_id": r.token_id,
        "model": r.model,
        "endpoint": r.endpoint,
        "billing_mode": r.billing_mode,
        "method": r.method,
        "items": u.items,
        "unit_prices": batch.dialect.json(r.unit_prices),
        "cost_nano": r.cost_nano,
        "usage_source": u.source.value,
        "status": r.status,
        "channel_id": r.channel_id,
        "duration_ms": r.duration_ms,
        "detail": r.detail,
        "exceeded_hold": r.exceeded_hold,
        "attempts": r.attempts,
        "group_name": r.group_name,
        "multiplier": r.multiplier,
        "upstream_cost_nano": r.upstream_cost_nano,
    }
    for name in TOKEN_COLUMNS:
        row[name] = getattr(u, name)
    return row
