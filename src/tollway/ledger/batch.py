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
    ACCOUNT_BUDGET_LEFT,
    AVAILABLE_BALANCE,
    AVAILABLE_QUOTA,
    CHARGE_ACCOUNT,
    CHARGE_TOKEN,
    HOLD_ACCOUNT,
    HOLD_TOKEN,
    TOKEN_BUDGET_LEFT,
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
    periods: dict[str, Any] = field(default_factory=dict)  # budget period starts (budgets.py)

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
    args = {"amount": step.amount_nano, "id": step.account_id, **batch.periods}
    cur.execute(q(HOLD_ACCOUNT), args)
    if cur.fetchone() is None:
        return short_of(cur, batch, step.amount_nano, step.account_id)
    if step.token_id is not None:
        cur.execute(q(HOLD_TOKEN), {**args, "id": step.token_id})
        if cur.fetchone() is None:
            cur.execute(q(UNHOLD_ACCOUNT), args)
            return short_of(cur, batch, step.amount_nano, step.account_id, step.token_id)
    return None


def short_of(
    cur: Any, batch: Batch, needed: int, account_id: int, token_id: int | None = None
) -> InsufficientFunds:
    """Why ``needed`` did not fit the account (or, given, the token): its
    balance (quota) or its budget, whichever leaves less."""
    if token_id is None:
        scopes = (("balance", AVAILABLE_BALANCE), ("account_budget", ACCOUNT_BUDGET_LEFT))
        row_id = account_id
    else:
        scopes = (("token_quota", AVAILABLE_QUOTA), ("token_budget", TOKEN_BUDGET_LEFT))
        row_id = token_id
    found = []
    for scope, query in scopes:
        cur.execute(batch.dialect.sql(query), {"id": row_id, **batch.periods})
        row = cur.fetchone()
        if row is not None and row[0] is not None:
            found.append((int(row[0]), scope, row[1] if len(row) > 1 else None))
    if not found:
        return InsufficientFunds(scopes[0][0], needed, 0)
    available, scope, period = min(found)
    return InsufficientFunds(scope, needed, max(available, 0), period)


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
                {"held": held, "spent": cost, "id": i, **batch.periods}
                for i, (held, cost) in sorted(batch.accounts.items())
            ],
        )
        batch.accounts.clear()
    if batch.tokens:
        cur.executemany(
            q(CHARGE_TOKEN),
            [
                {"held": held, "spent": cost, "now": batch.now, "id": i, **batch.periods}
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
