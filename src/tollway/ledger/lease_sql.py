"""The lease steps' part of a batch (see ``tollway.ledger.leases``): a call
settled against a lease adds to its spent amount; a grow folds that into the
balance and reserves more; a return or revoke folds it and deletes the row."""

from __future__ import annotations

from typing import Any

from tollway.ledger.batch import Batch, apply_charges, charge_directly, reserve, usage_row
from tollway.ledger.leases import LEASE_SHARE
from tollway.ledger.records import InsufficientFunds, Settlement
from tollway.ledger.statements import (
    ACCOUNT_SPARE,
    LEASE_DELETE,
    LEASE_DELETE_STALE,
    LEASE_FOLD_ACCOUNT,
    LEASE_FOLD_TOKEN,
    LEASE_INSERT,
    LEASE_LOCK,
    LEASE_RAISE,
    LEASE_REGRANT,
    LEASE_RENEW,
    LEASE_SPEND,
    LEASES_OF_ACCOUNT_DELETE,
    LEASES_OF_TOKEN_DELETE,
    RAISE_ACCOUNT,
    RAISE_TOKEN,
    TOKEN_SPARE,
)
from tollway.ledger.steps import (
    SETTLE,
    EntryKind,
    Hold,
    LeaseClose,
    LeaseGrow,
    LeaseReturn,
    LeaseRevoke,
    LeaseTouch,
)


def lease_close(batch: Batch, step: LeaseClose, spends: dict[int, list[LeaseClose]]) -> Settlement:
    """Record the call; its charge joins its lease's ``spends`` (written
    together by ``apply_lease_spends``)."""
    r = step.record
    cost = r.cost_nano if step.kind is SETTLE else 0
    step.missing, step.raised = False, 0  # (a batch that failed is retried step by step)
    if step.lease_id is None:
        step.missing = True
        charge_directly(batch, r, cost)
    else:
        spends.setdefault(step.lease_id, []).append(step)
    batch.usage.append(usage_row(batch, r))
    if step.kind is SETTLE:
        batch.entry(r.account_id, r.token_id, r.request_id, SETTLE, -cost)
    return Settlement(cost)


def apply_lease_spends(cur: Any, batch: Batch, spends: dict[int, list[LeaseClose]]) -> None:
    q = batch.dialect.sql
    for lease_id, steps in sorted(spends.items()):
        cost = sum(st.record.cost_nano for st in steps if st.kind is SETTLE)
        args = {"cost": cost, "now": batch.now, "id": lease_id, "owner": steps[0].owner}
        cur.execute(q(LEASE_SPEND), args)
        row = cur.fetchone()
        if row is None:  # reclaimed: charge the account itself
            for st in steps:
                st.missing = True
                settled = st.kind is SETTLE
                charge_directly(batch, st.record, st.record.cost_nano * settled)
            continue
        over = int(row[1]) - int(row[0])
        if over > 0:
            _raise_lease(cur, batch, lease_id, steps, over)
    apply_charges(cur, batch)


def _raise_lease(cur: Any, batch: Batch, lease_id: int, steps: list[LeaseClose], over: int) -> None:
    """Charged above what the lease reserved: reserve that too."""
    q = batch.dialect.sql
    first = steps[0].record
    cur.execute(q(LEASE_RAISE), {"id": lease_id})
    cur.execute(q(RAISE_ACCOUNT), {"amount": over, "id": first.account_id})
    if first.token_id is not None:
        cur.execute(q(RAISE_TOKEN), {"amount": over, "id": first.token_id})
    steps[-1].raised = over
    batch.entry(first.account_id, first.token_id, None, EntryKind.LEASE, over)


def lease_grow(cur: Any, batch: Batch, step: LeaseGrow) -> InsufficientFunds | None:
    step.granted, step.folded, step.new_id = 0, 0, None  # (a failed batch is retried)
    lease_id, spent = _lock_lease(cur, batch, step)
    granted = _lease_size(cur, batch, step)
    if isinstance(granted, InsufficientFunds):
        return granted
    hold = Hold("", step.account_id, step.token_id, granted)
    short = reserve(cur, batch, hold)
    if short is not None and granted > step.need:
        hold.amount_nano = granted = step.need
        short = reserve(cur, batch, hold)
    if short is not None:
        return short
    if spent:
        args = {"spent": spent, "amount": spent, "now": batch.now}
        _fold_rows(cur, batch, step.account_id, step.token_id, args)
        batch.entry(step.account_id, step.token_id, None, EntryKind.RETURN, -spent)
    _write_lease(cur, batch, step, lease_id, spent, granted)
    step.granted, step.folded = granted, spent
    batch.entry(step.account_id, step.token_id, None, EntryKind.LEASE, granted)
    return None


def _lock_lease(cur: Any, batch: Batch, step: LeaseGrow) -> tuple[int | None, int]:
    """The lease's id (its row now locked) and what it has spent; None: a
    new lease (there was none, or the reconciler reclaimed it)."""
    if step.lease_id is None:
        return None, 0
    args = {"now": batch.now, "id": step.lease_id, "owner": step.owner}
    cur.execute(batch.dialect.sql(LEASE_LOCK), args)
    row = cur.fetchone()
    if row is None:
        return None, 0
    return step.lease_id, int(row[0])


def _lease_size(cur: Any, batch: Batch, step: LeaseGrow) -> int | InsufficientFunds:
    """How much to reserve: at least ``need``, up to ``want``, and no more
    than 1/LEASE_SHARE of what the account (and token) has to spare."""
    q = batch.dialect.sql
    cur.execute(q(ACCOUNT_SPARE), {"id": step.account_id, **batch.periods})
    row = cur.fetchone()
    if row is None or not row[1]:  # no such account, or disabled
        return InsufficientFunds("balance", step.need, 0)
    granted = _share(step, step.want, row[0], row[2])
    if step.token_id is not None:
        cur.execute(q(TOKEN_SPARE), {"id": step.token_id, **batch.periods})
        found = cur.fetchone()
        if found is not None:
            granted = _share(step, granted, *found)
    return granted


def _share(step: LeaseGrow, granted: int, *spares: int | None) -> int:
    """``granted``, cut to 1/LEASE_SHARE of each spare (None: no such cap),
    never below what the call needs."""
    for spare in spares:
        if spare is not None:
            granted = max(step.need, min(granted, int(spare) // LEASE_SHARE))
    return granted


def _write_lease(
    cur: Any, batch: Batch, step: LeaseGrow, lease_id: int | None, spent: int, granted: int
) -> None:
    q = batch.dialect.sql
    if lease_id is not None:
        cur.execute(q(LEASE_REGRANT), {"spent": spent, "granted": granted, "id": lease_id})
        return
    args = {
        "account_id": step.account_id,
        "token_id": step.token_id,
        "owner": step.owner,
        "amount": granted,
        "now": batch.now,
    }
    cur.execute(q(LEASE_INSERT), args)
    step.new_id = int(cur.fetchone()[0])


def lease_return(cur: Any, batch: Batch, step: LeaseReturn) -> int | None:
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


def lease_revoke(cur: Any, batch: Batch, step: LeaseRevoke) -> int:
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


def lease_touch(cur: Any, batch: Batch, step: LeaseTouch) -> None:
    step.missing = set()
    for lease_id in step.lease_ids:
        args = {"now": batch.now, "id": lease_id, "owner": step.owner}
        cur.execute(batch.dialect.sql(LEASE_RENEW), args)
        if cur.fetchone() is None:
            step.missing.add(lease_id)


def _fold(cur: Any, batch: Batch, row: Any) -> int:
    """Charge a deleted lease row's spent amount to the balance (and token)
    and free its reserve; returns the spent amount."""
    account_id, token_id, amount, spent = int(row[0]), row[1], int(row[2]), int(row[3])
    args = {"spent": spent, "amount": amount, "now": batch.now}
    _fold_rows(cur, batch, account_id, None if token_id is None else int(token_id), args)
    batch.entry(account_id, token_id, None, EntryKind.RETURN, -amount)
    return spent


def _fold_rows(
    cur: Any, batch: Batch, account_id: int, token_id: int | None, args: dict[str, Any]
) -> None:
    q = batch.dialect.sql
    args = {**args, **batch.periods}
    cur.execute(q(LEASE_FOLD_ACCOUNT), {**args, "id": account_id})
    if token_id is not None:
        cur.execute(q(LEASE_FOLD_TOKEN), {**args, "id": token_id})
