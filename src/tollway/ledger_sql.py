"""One batch of ledger steps as one database transaction, in plain SQL.

This is the hot path's only database work, so it is written against the
DB-API drivers directly (sqlite3, psycopg) rather than through SQLAlchemy:
profiling showed a quarter of the gateway's time spent building SQLAlchemy
statements and, on SQLite, a thread hand-off per statement (aiosqlite). Here
a whole batch runs in one call on the writer thread, with statements written
once and rows inserted with executemany.

A batch applies closes (settle/release) and credits before holds, so a hold
sees the money its batch-mates just freed; per-account and per-token changes
of the closes are summed and applied once per row.
"""

from __future__ import annotations

import contextlib
import re
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from tollway.ledger_steps import (
    BalanceOutOfRange,
    Close,
    Credit,
    Hold,
    InsufficientFunds,
    LeaseClose,
    LeaseGrow,
    LeaseReturn,
    LeaseRevoke,
    LeaseTouch,
    LedgerError,
    Settlement,
    Step,
    UsageRecord,
)
from tollway.types import MAX_NANO, MAX_USD, TOKEN_CLASSES

TOKEN_COLUMNS = TOKEN_CLASSES


# A lease takes at most this share of what an account (or token) has to
# spare, so other workers still find money to hold against.
LEASE_SHARE = 8


class Dialect(Protocol):
    name: str

    def sql(self, text: str) -> str: ...

    def time(self, moment: datetime) -> Any: ...

    def json(self, value: Any) -> Any: ...

    def pipeline(self, conn: Any) -> Any: ...

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None: ...


class SqliteDialect:
    name = "sqlite"

    def sql(self, text: str) -> str:
        return text

    def time(self, moment: datetime) -> Any:
        # the format SQLAlchemy's SQLite DateTime reads back (stored as UTC)
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")

    def json(self, value: Any) -> Any:
        import orjson

        return orjson.dumps(value).decode()

    def pipeline(self, conn: Any) -> Any:
        return contextlib.nullcontext()

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None:
        return None  # BEGIN IMMEDIATE already holds the one write lock


class PostgresDialect:
    name = "postgresql"

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def sql(self, text: str) -> str:
        found = self._cache.get(text)
        if found is None:
            found = re.sub(r"(?<!:):(\w+)", r"%(\1)s", text)
            self._cache[text] = found
        return found

    def time(self, moment: datetime) -> Any:
        return moment

    def json(self, value: Any) -> Any:
        from psycopg.types.json import Json

        return Json(value)

    def pipeline(self, conn: Any) -> Any:
        # Statements whose results are not read right away (charges, inserts)
        # go out without waiting for each one's answer.
        return conn.pipeline()

    def lock_rows(self, cursor: Any, table: str, ids: list[int]) -> None:
        # Every batch locks its rows in id order, so two replicas' batches
        # never wait on each other in a cycle.
        if ids:
            cursor.execute(
                f"SELECT id FROM {table} WHERE id = ANY(%(ids)s) ORDER BY id FOR UPDATE",
                {"ids": sorted(ids)},
            )


HOLD_ACCOUNT = """UPDATE accounts SET held_nano = held_nano + :amount
WHERE id = :id AND enabled AND balance_nano - held_nano >= :amount RETURNING id"""
HOLD_TOKEN = """UPDATE tokens SET held_nano = held_nano + :amount
WHERE id = :id AND (quota_nano IS NULL OR quota_nano - used_nano - held_nano >= :amount)
RETURNING id"""
UNHOLD_ACCOUNT = "UPDATE accounts SET held_nano = held_nano - :amount WHERE id = :id"
UNHOLD_TOKEN = "UPDATE tokens SET held_nano = held_nano - :amount WHERE id = :id"
AVAILABLE_BALANCE = "SELECT balance_nano - held_nano FROM accounts WHERE id = :id"
AVAILABLE_QUOTA = "SELECT quota_nano - used_nano - held_nano FROM tokens WHERE id = :id"
CLOSE_HOLD = """UPDATE holds SET state = :state, closed_at = :now
WHERE request_id = :request_id AND state = 'open' RETURNING amount_nano"""
RECORDED_COST = "SELECT cost_nano FROM usage_records WHERE request_id = :request_id"
CHARGE_ACCOUNT = """UPDATE accounts SET held_nano = held_nano - :held,
balance_nano = balance_nano - :cost WHERE id = :id"""
CHARGE_TOKEN = """UPDATE tokens SET held_nano = held_nano - :held, used_nano = used_nano + :cost,
last_used_at = :now WHERE id = :id"""
# The balance stays within +-MAX_NANO: checked against bounds computed in
# Python, so the database never adds past 64 bits (SQLite would turn the
# column into a float, PostgreSQL would fail the batch).
CREDIT_ACCOUNT = """UPDATE accounts SET balance_nano = balance_nano + :amount
WHERE id = :id AND balance_nano BETWEEN :lowest AND :highest
RETURNING balance_nano - COALESCE((SELECT SUM(spent_nano) FROM leases WHERE account_id = :id), 0)"""
LEASE_SPEND = """UPDATE leases SET spent_nano = spent_nano + :cost, renewed_at = :now
WHERE id = :id AND owner = :owner RETURNING amount_nano, spent_nano"""
LEASE_RAISE = "UPDATE leases SET amount_nano = spent_nano WHERE id = :id"
RAISE_ACCOUNT = "UPDATE accounts SET held_nano = held_nano + :amount WHERE id = :id"
RAISE_TOKEN = "UPDATE tokens SET held_nano = held_nano + :amount WHERE id = :id"
LEASE_LOCK = """UPDATE leases SET renewed_at = :now WHERE id = :id AND owner = :owner
RETURNING spent_nano"""
LEASE_FOLD_ACCOUNT = """UPDATE accounts SET balance_nano = balance_nano - :spent,
held_nano = held_nano - :amount WHERE id = :id"""
LEASE_FOLD_TOKEN = """UPDATE tokens SET used_nano = used_nano + :spent,
held_nano = held_nano - :amount, last_used_at = :now WHERE id = :id"""
LEASE_REGRANT = """UPDATE leases SET amount_nano = amount_nano - :spent + :granted,
spent_nano = spent_nano - :spent WHERE id = :id"""
LEASE_INSERT = """INSERT INTO leases (account_id, token_id, owner, amount_nano, spent_nano,
created_at, renewed_at) VALUES (:account_id, :token_id, :owner, :amount, 0, :now, :now)
RETURNING id"""
LEASE_DELETE = """DELETE FROM leases WHERE id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASE_DELETE_STALE = """DELETE FROM leases WHERE id = :id AND renewed_at < :before
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASE_RENEW = """UPDATE leases SET renewed_at = :now WHERE id = :id AND owner = :owner
RETURNING id"""
LEASES_OF_ACCOUNT_DELETE = """DELETE FROM leases WHERE account_id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
LEASES_OF_TOKEN_DELETE = """DELETE FROM leases WHERE token_id = :id
RETURNING account_id, token_id, amount_nano, spent_nano"""
STATE_BUMP = "UPDATE state_version SET version = version + 1 WHERE id = 1"
ACCOUNT_SPARE = "SELECT balance_nano - held_nano, enabled FROM accounts WHERE id = :id"
TOKEN_SPARE = "SELECT quota_nano - used_nano - held_nano FROM tokens WHERE id = :id"
INSERT_HOLD = """INSERT INTO holds (request_id, account_id, token_id, amount_nano, state,
created_at) VALUES (:request_id, :account_id, :token_id, :amount, 'open', :now)"""
INSERT_LEDGER = """INSERT INTO ledger (created_at, account_id, token_id, request_id, kind,
amount_nano, reason) VALUES (:now, :account_id, :token_id, :request_id, :kind, :amount, :reason)"""
INSERT_USAGE = f"""INSERT INTO usage_records (request_id, created_at, account_id, token_id, model,
endpoint, billing_mode, method, {", ".join(TOKEN_COLUMNS)}, items, unit_prices, cost_nano,
usage_source, status, channel_id, duration_ms, detail, exceeded_hold) VALUES (:request_id, :now,
:account_id, :token_id, :model, :endpoint, :billing_mode, :method,
{", ".join(":" + c for c in TOKEN_COLUMNS)}, :items, :unit_prices, :cost_nano, :usage_source,
:status, :channel_id, :duration_ms, :detail, :exceeded_hold)"""


@dataclass
class _Batch:
    """What a batch will write once every step is decided."""

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
        kind: str,
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


def run_batch(conn: Any, dialect: Dialect, steps: Sequence[Step], now: datetime) -> list[Any]:
    """Apply the steps in one transaction (the caller begins and commits it).
    Returns one result per step: None or InsufficientFunds for a hold, a
    Settlement for a close, the new balance for a credit, or a LedgerError."""
    cur = conn.cursor()
    batch = _Batch(dialect, dialect.time(now))
    q = dialect.sql
    # A token is only ever locked by a transaction that holds its account's
    # lock, so ordering the account locks is enough to rule out deadlocks.
    # Every account a batch will update is locked first, in id order, so two
    # replicas' batches never wait on each other in a cycle (lease rows, which
    # only their owner updates, are taken after). A lease's calls touch only
    # the lease row; their rare account updates (a charge above the lease, a
    # reclaimed lease) are left out: a deadlock there fails the batch, whose
    # steps are then retried one by one.
    accounts = {
        s.account_id
        for s in steps
        if isinstance(s, (Hold, Close, Credit, LeaseGrow, LeaseReturn, LeaseRevoke))
    }
    if accounts:
        dialect.lock_rows(cur, "accounts", list(accounts))
    results: list[Any] = [None] * len(steps)
    holds_by_account: dict[int, list[tuple[int, Hold]]] = {}
    spends: dict[int, list[LeaseClose]] = {}
    later: list[tuple[int, LeaseGrow | LeaseReturn | LeaseTouch | LeaseRevoke]] = []
    for i, step in enumerate(steps):
        if isinstance(step, Close):
            results[i] = _close(cur, batch, step)
        elif isinstance(step, LeaseClose):
            results[i] = _lease_close(batch, step, spends)
        elif isinstance(step, Credit):
            _apply_charges(cur, batch)
            results[i] = _credit(cur, batch, step)
        elif isinstance(step, Hold):
            holds_by_account.setdefault(step.account_id, []).append((i, step))
        else:
            later.append((i, step))
    _apply_charges(cur, batch)
    _apply_lease_spends(cur, batch, spends)
    for group in holds_by_account.values():
        if len(group) > 1 and _hold_together(cur, batch, [hold for _, hold in group]):
            continue
        for i, hold in group:
            results[i] = _hold(cur, batch, hold)
    for i, step in later:
        if isinstance(step, LeaseGrow):
            results[i] = _lease_grow(cur, batch, step)
        elif isinstance(step, LeaseReturn):
            results[i] = _lease_return(cur, batch, step)
        elif isinstance(step, LeaseRevoke):
            results[i] = _lease_revoke(cur, batch, step)
        else:
            step.missing = set()
            for lease_id in step.lease_ids:
                args = {"now": batch.now, "id": lease_id, "owner": step.owner}
                cur.execute(q(LEASE_RENEW), args)
                if cur.fetchone() is None:
                    step.missing.add(lease_id)
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
    return results


def _close(cur: Any, batch: _Batch, step: Close) -> Settlement | LedgerError:
    r = step.record
    q = batch.dialect.sql
    if r.request_id in batch.closed:
        return Settlement(batch.closed[r.request_id], already_settled=True)
    state = "settled" if step.kind == "settle" else "released"
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
    batch.usage.append(_usage_row(batch, r))
    amount = -cost if step.kind == "settle" else -held
    batch.entry(r.account_id, r.token_id, r.request_id, step.kind, amount)
    return Settlement(cost)


def _lease_close(
    batch: _Batch, step: LeaseClose, spends: dict[int, list[LeaseClose]]
) -> Settlement:
    r = step.record
    cost = r.cost_nano if step.kind == "settle" else 0
    step.missing, step.raised = False, 0  # (a batch that failed is retried step by step)
    if step.lease_id is None:
        step.missing = True
        _charge_directly(batch, r, cost)
    else:
        spends.setdefault(step.lease_id, []).append(step)
    batch.usage.append(_usage_row(batch, r))
    if step.kind == "settle":
        batch.entry(r.account_id, r.token_id, r.request_id, "settle", -cost)
    return Settlement(cost)


def _charge_directly(batch: _Batch, r: UsageRecord, cost: int) -> None:
    """A call whose lease was reclaimed meanwhile: charge the balance itself
    (the call's reserve went back with the lease)."""
    batch.accounts[r.account_id][1] += cost
    if r.token_id is not None:
        batch.tokens[r.token_id][1] += cost


def _apply_lease_spends(cur: Any, batch: _Batch, spends: dict[int, list[LeaseClose]]) -> None:
    q = batch.dialect.sql
    for lease_id, steps in sorted(spends.items()):
        cost = sum(st.record.cost_nano for st in steps if st.kind == "settle")
        args = {"cost": cost, "now": batch.now, "id": lease_id, "owner": steps[0].owner}
        cur.execute(q(LEASE_SPEND), args)
        row = cur.fetchone()
        if row is None:  # reclaimed: charge the account itself
            for st in steps:
                st.missing = True
                _charge_directly(batch, st.record, st.record.cost_nano * (st.kind == "settle"))
            continue
        over = int(row[1]) - int(row[0])
        if over > 0:  # charged above what the lease reserved: reserve that too
            first = steps[0].record
            cur.execute(q(LEASE_RAISE), {"id": lease_id})
            cur.execute(q(RAISE_ACCOUNT), {"amount": over, "id": first.account_id})
            if first.token_id is not None:
                cur.execute(q(RAISE_TOKEN), {"amount": over, "id": first.token_id})
            steps[-1].raised = over
            batch.entry(first.account_id, first.token_id, None, "lease", over)
    _apply_charges(cur, batch)


def _lease_grow(cur: Any, batch: _Batch, step: LeaseGrow) -> InsufficientFunds | None:
    q = batch.dialect.sql
    step.granted, step.folded, step.new_id = 0, 0, None  # (a failed batch is retried)
    spent = 0
    lease_id = step.lease_id
    if lease_id is not None:
        cur.execute(q(LEASE_LOCK), {"now": batch.now, "id": lease_id, "owner": step.owner})
        row = cur.fetchone()
        if row is None:  # reclaimed by the reconciler: start a new one
            lease_id = None
        else:
            spent = int(row[0])
    cur.execute(q(ACCOUNT_SPARE), {"id": step.account_id})
    row = cur.fetchone()
    if row is None or not row[1]:
        return InsufficientFunds("balance", step.need, 0)
    spare = int(row[0])
    granted = max(step.need, min(step.want, spare // LEASE_SHARE))
    token_spare = None
    if step.token_id is not None:
        cur.execute(q(TOKEN_SPARE), {"id": step.token_id})
        found = cur.fetchone()
        if found is not None and found[0] is not None:
            token_spare = int(found[0])
            granted = max(step.need, min(granted, token_spare // LEASE_SHARE))
    hold = Hold("", step.account_id, step.token_id, granted)
    short = _reserve(cur, batch, hold)
    if short is not None and granted > step.need:
        hold.amount_nano = granted = step.need
        short = _reserve(cur, batch, hold)
    if short is not None:
        return short
    if spent:
        args = {"spent": spent, "amount": spent, "now": batch.now}
        cur.execute(q(LEASE_FOLD_ACCOUNT), {**args, "id": step.account_id})
        if step.token_id is not None:
            cur.execute(q(LEASE_FOLD_TOKEN), {**args, "id": step.token_id})
        batch.entry(step.account_id, step.token_id, None, "return", -spent)
    if lease_id is None:
        cur.execute(
            q(LEASE_INSERT),
            {
                "account_id": step.account_id,
                "token_id": step.token_id,
                "owner": step.owner,
                "amount": granted,
                "now": batch.now,
            },
        )
        step.new_id = int(cur.fetchone()[0])
    else:
        cur.execute(q(LEASE_REGRANT), {"spent": spent, "granted": granted, "id": lease_id})
    step.granted, step.folded = granted, spent
    batch.entry(step.account_id, step.token_id, None, "lease", granted)
    return None


def _reserve(cur: Any, batch: _Batch, step: Hold) -> InsufficientFunds | None:
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


def _lease_return(cur: Any, batch: _Batch, step: LeaseReturn) -> int | None:
    """Returns the spent amount folded into the balance, None if no such
    (stale) lease."""
    q = batch.dialect.sql
    if step.stale_before is None:
        cur.execute(q(LEASE_DELETE), {"id": step.lease_id})
    else:
        before = batch.dialect.time(step.stale_before)
        cur.execute(q(LEASE_DELETE_STALE), {"id": step.lease_id, "before": before})
    row = cur.fetchone()
    if row is None:
        return None
    return _fold(cur, batch, row)


def _lease_revoke(cur: Any, batch: _Batch, step: LeaseRevoke) -> int:
    """Returns how many leases were returned (whoever held them)."""
    q = batch.dialect.sql
    if step.token_id is None:
        cur.execute(q(LEASES_OF_ACCOUNT_DELETE), {"id": step.account_id})
    else:
        cur.execute(q(LEASES_OF_TOKEN_DELETE), {"id": step.token_id})
    rows = cur.fetchall()
    for row in rows:
        _fold(cur, batch, row)
    step.returned = len(rows)
    batch.revoked = batch.revoked or bool(rows)
    return step.returned


def _fold(cur: Any, batch: _Batch, row: Any) -> int:
    """Charge a deleted lease row's spent amount to the balance (and token)
    and free its reserve; returns the spent amount."""
    q = batch.dialect.sql
    account_id, token_id, amount, spent = int(row[0]), row[1], int(row[2]), int(row[3])
    args = {"spent": spent, "amount": amount, "now": batch.now}
    cur.execute(q(LEASE_FOLD_ACCOUNT), {**args, "id": account_id})
    if token_id is not None:
        cur.execute(q(LEASE_FOLD_TOKEN), {**args, "id": int(token_id)})
    batch.entry(account_id, token_id, None, "return", -amount)
    return spent


def _apply_charges(cur: Any, batch: _Batch) -> None:
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


def _credit(cur: Any, batch: _Batch, step: Credit) -> int | LedgerError:
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
    kind = "credit" if step.amount_nano >= 0 else "debit"
    batch.entry(step.account_id, None, None, kind, step.amount_nano, step.reason)
    return int(row[0])


def _hold(cur: Any, batch: _Batch, step: Hold) -> InsufficientFunds | None:
    short = _reserve(cur, batch, step)
    if short is None:
        _held(batch, step)
    return short


def _hold_together(cur: Any, batch: _Batch, group: list[Hold]) -> bool:
    """One account's holds at once, when they all fit: two statements instead
    of two per call. If they do not all fit, nothing is changed and the caller
    goes one by one, so exactly the ones that fit are held."""
    q = batch.dialect.sql
    account_id = group[0].account_id
    total = sum(h.amount_nano for h in group)
    cur.execute(q(HOLD_ACCOUNT), {"amount": total, "id": account_id})
    if cur.fetchone() is None:
        return False
    per_token: dict[int, int] = {}
    for h in group:
        if h.token_id is not None:
            per_token[h.token_id] = per_token.get(h.token_id, 0) + h.amount_nano
    held: list[tuple[int, int]] = []
    for token_id, amount in sorted(per_token.items()):
        cur.execute(q(HOLD_TOKEN), {"amount": amount, "id": token_id})
        if cur.fetchone() is None:
            for done_id, done_amount in held:
                cur.execute(q(UNHOLD_TOKEN), {"amount": done_amount, "id": done_id})
            cur.execute(q(UNHOLD_ACCOUNT), {"amount": total, "id": account_id})
            return False
        held.append((token_id, amount))
    for h in group:
        _held(batch, h)
    return True


def _held(batch: _Batch, step: Hold) -> None:
    batch.holds.append(
        {
            "request_id": step.request_id,
            "account_id": step.account_id,
            "token_id": step.token_id,
            "amount": step.amount_nano,
            "now": batch.now,
        }
    )
    batch.entry(step.account_id, step.token_id, step.request_id, "hold", step.amount_nano)


def _short(
    cur: Any, batch: _Batch, query: str, row_id: int, needed: int, scope: str
) -> InsufficientFunds:
    cur.execute(batch.dialect.sql(query), {"id": row_id})
    row = cur.fetchone()
    available = int(row[0]) if row is not None and row[0] is not None else 0
    return InsufficientFunds(scope, needed, max(available, 0))


def _usage_row(batch: _Batch, r: UsageRecord) -> dict[str, Any]:
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
    }
    for name in TOKEN_COLUMNS:
        row[name] = getattr(u, name)
    return row
