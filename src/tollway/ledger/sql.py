"""One batch of ledger steps as one database transaction, in plain SQL.

This is the hot path's only database work, so it is written against the
DB-API drivers directly (sqlite3, psycopg) rather than through SQLAlchemy,
whose statement building and (on SQLite) thread hand-off per statement cost
more than the writes themselves. A whole batch runs in one call on the
writer's connection, with statements written once and rows inserted with
executemany.

A batch applies closes (settle/release) and credits before holds, so a hold
sees the money its batch-mates just freed; per-account and per-token changes
of the closes are summed and applied once per row.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from tollway.ledger.batch import Batch, apply_charges, record_hold, reserve, usage_row
from tollway.ledger.budgets import period_params
from tollway.ledger.dialects import Dialect
from tollway.ledger.lease_sql import (
    apply_lease_spends,
    lease_close,
    lease_grow,
    lease_return,
    lease_revoke,
    lease_touch,
)
from tollway.ledger.records import (
    BalanceOutOfRange,
    InsufficientFunds,
    LedgerError,
    Settlement,
)
from tollway.ledger.statements import (
    AVAILABLE_BALANCE,
    CLOSE_HOLD,
    CREDIT_ACCOUNT,
    HOLD_ACCOUNT,
    HOLD_TOKEN,
    INSERT_HOLD,
    INSERT_LEDGER,
    INSERT_USAGE,
    RECORDED_COST,
    STATE_BUMP,
    UNHOLD_ACCOUNT,
    UNHOLD_TOKEN,
)
from tollway.ledger.steps import (
    SETTLE,
    Close,
    Credit,
    EntryKind,
    Hold,
    LeaseClose,
    LeaseGrow,
    LeaseReturn,
    LeaseRevoke,
    LeaseTouch,
    Step,
)
from tollway.types import MAX_NANO, MAX_USD

# The steps that update their account's row (a lease's calls touch only the
# lease row; see ``_lock_accounts``).
_ACCOUNT_STEPS = (Hold, Close, Credit, LeaseGrow, LeaseReturn, LeaseRevoke)

LeaseStep = LeaseGrow | LeaseReturn | LeaseTouch | LeaseRevoke


@dataclass
class _Plan:
    """The steps left for after the closes and credits, by where they go."""

    holds_by_account: dict[int, list[tuple[int, Hold]]] = field(default_factory=dict)
    spends: dict[int, list[LeaseClose]] = field(default_factory=dict)
    later: list[tuple[int, LeaseStep]] = field(default_factory=list)


def run_batch(conn: Any, dialect: Dialect, steps: Sequence[Step], now: datetime) -> list[Any]:
    """Apply the steps in one transaction (the caller begins and commits it).
    Returns one result per step: None or InsufficientFunds for a hold, a
    Settlement for a close, the new balance for a credit, or a LedgerError."""
    cur = conn.cursor()
    batch = Batch(dialect, dialect.time(now), periods=period_params(dialect, now))
    _lock_accounts(cur, dialect, steps)
    results: list[Any] = [None] * len(steps)
    plan = _closes_and_credits(cur, batch, steps, results)
    apply_charges(cur, batch)
    apply_lease_spends(cur, batch, plan.spends)
    for group in plan.holds_by_account.values():
        if len(group) > 1 and _hold_together(cur, batch, [hold for _, hold in group]):
            continue
        for i, hold in group:
            results[i] = _hold(cur, batch, hold)
    for i, step in plan.later:
        results[i] = _lease_step(cur, batch, step)
    _insert_rows(cur, batch)
    return results


def _lock_accounts(cur: Any, dialect: Dialect, steps: Sequence[Step]) -> None:
    """Lock every account the batch will update first, in id order, so two
    replicas' batches never wait on each other in a cycle. A token is only
    ever locked by a transaction that holds its account's lock, so ordering
    the account locks is enough; lease rows, which only their owner updates,
    are taken after. A lease's calls touch only the lease row; their rare
    account updates (a charge above the lease, a reclaimed lease) are left
    out: a deadlock there fails the batch, whose steps are then retried one
    by one."""
    accounts = {s.account_id for s in steps if isinstance(s, _ACCOUNT_STEPS)}
    if accounts:
        dialect.lock_rows(cur, "accounts", list(accounts))


def _closes_and_credits(cur: Any, batch: Batch, steps: Sequence[Step], results: list[Any]) -> _Plan:
    """Apply the closes and credits in order (a credit first writes the
    charges before it); gather the rest."""
    plan = _Plan()
    for i, step in enumerate(steps):
        if isinstance(step, Close):
            results[i] = _close(cur, batch, step)
        elif isinstance(step, LeaseClose):
            results[i] = lease_close(batch, step, plan.spends)
        elif isinstance(step, Credit):
            apply_charges(cur, batch)
            results[i] = _credit(cur, batch, step)
        elif isinstance(step, Hold):
            plan.holds_by_account.setdefault(step.account_id, []).append((i, step))
        else:
            plan.later.append((i, step))
    return plan


def _lease_step(cur: Any, batch: Batch, step: LeaseStep) -> Any:
    if isinstance(step, LeaseGrow):
        return lease_grow(cur, batch, step)
    if isinstance(step, LeaseReturn):
        return lease_return(cur, batch, step)
    if isinstance(step, LeaseRevoke):
        return lease_revoke(cur, batch, step)
    lease_touch(cur, batch, step)
    return None


def _insert_rows(cur: Any, batch: Batch) -> None:
    q = batch.dialect.sql
    if batch.revoked:
        # (last, once every row the batch locks is locked: replicas' batches
        # and management edits take this row after theirs)
        cur.execute(q(STATE_BUMP))
    if batch.holds:
        cur.executemany(q(INSERT_HOLD), batch.holds)
    if batch.usage:
        cur.executemany(q(INSERT_USAGE), batch.usage)
    if batch.entries:
        cur.executemany(q(INSERT_LEDGER), batch.entries)


def _close(cur: Any, batch: Batch, step: Close) -> Settlement | LedgerError:
    r = step.record
    q = batch.dialect.sql
    if r.request_id in batch.closed:
        return Settlement(batch.closed[r.request_id], already_settled=True)
    state = "settled" if step.kind is SETTLE else "released"
    cur.execute(q(CLOSE_HOLD), {"state": state, "now": batch.now, "request_id": r.request_id})
    row = cur.fetchone()
    if row is None:
        cur.execute(q(RECORDED_COST), {"request_id": r.request_id})
        found = cur.fetchone()
        if found is None:
            return LedgerError(f"no open hold for request {r.request_id}")
        return Settlement(int(found[0]), already_settled=True)
    held, cost = int(row[0]), r.cost_nano
    batch.closed[r.request_id] = cost
    account = batch.accounts[r.account_id]
    account[0] += held
    account[1] += cost
    if r.token_id is not None:
        token = batch.tokens[r.token_id]
        token[0] += held
        token[1] += cost
    batch.usage.append(usage_row(batch, r))
    amount = -cost if step.kind is SETTLE else -held
    batch.entry(r.account_id, r.token_id, r.request_id, step.kind, amount)
    return Settlement(cost)


def _credit(cur: Any, batch: Batch, step: Credit) -> int | LedgerError:
    amount = step.amount_nano
    out_of_range = BalanceOutOfRange(f"the balance would pass the maximum of {MAX_USD} USD")
    if abs(amount) > MAX_NANO:
        return out_of_range
    bounds = {"lowest": -MAX_NANO - amount, "highest": MAX_NANO - amount}
    cur.execute(
        batch.dialect.sql(CREDIT_ACCOUNT), {"amount": amount, "id": step.account_id, **bounds}
    )
    row = cur.fetchone()
    if row is None:
        cur.execute(batch.dialect.sql(AVAILABLE_BALANCE), {"id": step.account_id})
        known = cur.fetchone() is not None
        return out_of_range if known else LedgerError(f"no account {step.account_id}")
    kind = EntryKind.CREDIT if step.amount_nano >= 0 else EntryKind.DEBIT
    batch.entry(step.account_id, None, None, kind, step.amount_nano, step.reason)
    return int(row[0])


def _hold(cur: Any, batch: Batch, step: Hold) -> InsufficientFunds | None:
    short = reserve(cur, batch, step)
    if short is None:
        record_hold(batch, step)
    return short


def _hold_together(cur: Any, batch: Batch, group: list[Hold]) -> bool:
    """One account's holds at once, when they all fit: two statements instead
    of two per call. If they do not all fit, nothing is changed and the caller
    goes one by one, so exactly the ones that fit are held."""
    q = batch.dialect.sql
    account_id = group[0].account_id
    total = sum(h.amount_nano for h in group)
    cur.execute(q(HOLD_ACCOUNT), {"amount": total, "id": account_id, **batch.periods})
    if cur.fetchone() is None:
        return False
    per_token: dict[int, int] = {}
    for h in group:
        if h.token_id is not None:
            per_token[h.token_id] = per_token.get(h.token_id, 0) + h.amount_nano
    held: list[tuple[int, int]] = []
    for token_id, amount in sorted(per_token.items()):
        cur.execute(q(HOLD_TOKEN), {"amount": amount, "id": token_id, **batch.periods})
        if cur.fetchone() is None:
            for done_id, done_amount in held:
                cur.execute(q(UNHOLD_TOKEN), {"amount": done_amount, "id": done_id})
            cur.execute(q(UNHOLD_ACCOUNT), {"amount": total, "id": account_id})
            return False
        held.append((token_id, amount))
    for h in group:
        record_hold(batch, h)
    return True
