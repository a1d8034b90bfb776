"""Which alerts are due: every so often, for each enabled webhook, its
account's and tokens' budget use against the webhook's thresholds, and its
account's balance against its low mark. An event is written once per key
(a threshold once per budget period, a low balance once per UTC day),
whichever replica sees it first: the key is unique in ``webhook_events``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, insert, select
from sqlalchemy.exc import IntegrityError

from tollway.db.schema import accounts, leases, tokens, webhook_events, webhooks
from tollway.gateway import Gateway
from tollway.ledger.budgets import next_reset, period_start, used_this_period
from tollway.timeutil import iso, utcnow
from tollway.types import nano_to_usd

# An event due: (webhook id, event name, its once-only key, its payload).
Due = tuple[int, str, str, dict[str, Any]]


async def scan(gw: Gateway) -> int:
    """Write the events now due; returns how many were new."""
    now = utcnow()
    async with gw.engine.connect() as conn:
        hooks = (await conn.execute(select(webhooks).where(webhooks.c.enabled))).mappings().all()
        due: list[Due] = []
        for hook in hooks:
            account = await _account(conn, hook["account_id"])
            if account is None:
                continue
            if "budget.threshold" in hook["events"]:
                for row in [account, *await _budgeted_tokens(conn, hook["account_id"])]:
                    due += _thresholds(hook, row, now)
            if "balance.low" in hook["events"]:
                due += _low_balance(hook, account, now)
    return await _write(gw, due, now)


async def _account(conn: Any, account_id: int) -> Any:
    spent = _spent(leases.c.account_id == accounts.c.id)
    query = select(accounts, spent).where(accounts.c.id == account_id)
    return (await conn.execute(query)).mappings().first()


async def _budgeted_tokens(conn: Any, account_id: int) -> list[Any]:
    spent = _spent(leases.c.token_id == tokens.c.id)
    query = select(tokens, spent).where(
        tokens.c.account_id == account_id,
        tokens.c.budget_nano.is_not(None),
        tokens.c.deleted.is_(False),
    )
    return list((await conn.execute(query)).mappings().all())


def _spent(where: Any) -> Any:
    """What leases have spent and not yet folded in (it counts this period)."""
    total = select(func.coalesce(func.sum(leases.c.spent_nano), 0)).where(where)
    return total.scalar_subquery().label("lease_spent")


def _thresholds(hook: Any, row: Any, now: datetime) -> list[Due]:
    budget, period = row["budget_nano"], row["budget_period"]
    if budget is None or period is None or budget <= 0:
        return []
    started = row["budget_period_start"]
    used = used_this_period(int(row["budget_used_nano"]), started, period, now)
    used += int(row["lease_spent"])
    kind = "account" if "username" in row else "token"
    start = period_start(period, now)
    due = []
    for threshold in hook["thresholds"]:
        if used * 100 >= budget * threshold:
            key = f"budget:{kind}:{row['id']}:{start.date().isoformat()}:{threshold}"
            payload = {
                "event": "budget.threshold",
                "account_id": row["id"] if kind == "account" else row["account_id"],
                "token_id": row["id"] if kind == "token" else None,
                "threshold_percent": threshold,
                "budget_usd": nano_to_usd(budget),
                "used_usd": nano_to_usd(used),
                "period": period,
                "period_start": iso(start),
                "resets_at": iso(next_reset(period, now)),
            }
            due.append((hook["id"], "budget.threshold", key, payload))
    return due


def _low_balance(hook: Any, account: Any, now: datetime) -> list[Due]:
    low = hook["low_balance_nano"]
    balance = int(account["balance_nano"]) - int(account["lease_spent"])
    if low is None or balance >= low:
        return []
    key = f"balance.low:{account['id']}:{now.date().isoformat()}"
    payload = {
        "event": "balance.low",
        "account_id": account["id"],
        "balance_usd": nano_to_usd(balance),
        "low_balance_usd": nano_to_usd(low),
    }
    return [(hook["id"], "balance.low", key, payload)]


async def _write(gw: Gateway, due: list[Due], now: datetime) -> int:
    if not due:
        return 0
    async with gw.engine.connect() as conn:
        known = await conn.execute(
            select(webhook_events.c.webhook_id, webhook_events.c.event_key).where(
                webhook_events.c.event_key.in_([key for _, _, key, _ in due])
            )
        )
        seen = {(r[0], r[1]) for r in known}
    written = 0
    for webhook_id, event, key, payload in due:
        if (webhook_id, key) in seen:
            continue
        payload = {**payload, "at": iso(now)}
        row = {
            "webhook_id": webhook_id, "event": event, "event_key": key, "payload": payload,
            "status": "pending", "attempts": 0, "next_at": now, "created_at": now,
        }  # fmt: skip
        try:
            async with gw.engine.begin() as conn:
                await conn.execute(insert(webhook_events).values(row))
            written += 1
        except IntegrityError:  # another replica wrote it first
            continue
    return written
