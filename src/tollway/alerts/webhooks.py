"""An account's webhooks: where its alerts go, which events, at which budget
thresholds, below which balance. Managed through /api/webhooks and the CLI."""

from __future__ import annotations

import secrets
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import delete, insert, select, update

from tollway.db.schema import webhook_events, webhooks
from tollway.errors import bad_request, not_found
from tollway.gateway import Gateway
from tollway.manage import checks
from tollway.timeutil import iso, utcnow
from tollway.types import MAX_NANO, nano_to_usd

EVENTS = ("budget.threshold", "balance.low")
DEFAULT_THRESHOLDS = [50, 80, 100]
MAX_WEBHOOKS = 20
MAX_URL_CHARS = 2000


def check_url(value: Any) -> str:
    url = checks.text(value, "url", MAX_URL_CHARS)
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise bad_request("'url' must be an http or https URL.", param="url")
    return url


def check_events(value: Any) -> list[str]:
    names = checks.names(value, "events", max_items=len(EVENTS))
    unknown = set(names) - set(EVENTS)
    if unknown or not names:
        raise bad_request(f"'events' must list some of: {', '.join(EVENTS)}.", param="events")
    return sorted(set(names))


def check_thresholds(value: Any) -> list[int]:
    if not isinstance(value, list) or not 1 <= len(value) <= 10:
        raise bad_request("'thresholds' must be a list of 1 to 10 percentages.", param="thresholds")
    return sorted({checks.whole_number(v, "thresholds", 1, 1000) for v in value})


def check_low_balance(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_NANO:
        raise bad_request(
            "'low_balance_usd' must be an amount in USD or null.", param="low_balance_usd"
        )
    return value


async def create_webhook(gw: Gateway, account_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    """A new webhook; its signing secret is returned this once (``whsec_…``)."""
    values = {
        "account_id": account_id,
        "url": check_url(fields.get("url")),
        "events": check_events(fields.get("events", list(EVENTS))),
        "thresholds": check_thresholds(fields.get("thresholds", DEFAULT_THRESHOLDS)),
        "low_balance_nano": check_low_balance(fields.get("low_balance_nano")),
        "secret": "whsec_" + secrets.token_urlsafe(32),
        "enabled": True,
        "created_at": utcnow(),
    }
    async with gw.engine.begin() as conn:
        count = len((await conn.execute(select(webhooks.c.id).where(_owned(account_id)))).all())
        if count >= MAX_WEBHOOKS:
            raise bad_request(f"An account may have at most {MAX_WEBHOOKS} webhooks.")
        found = await conn.execute(insert(webhooks).values(values).returning(webhooks.c.id))
        webhook_id = found.scalar_one()
    view = await get_webhook(gw, account_id, webhook_id)
    view["secret"] = values["secret"]
    return view


def _owned(account_id: int | None) -> Any:
    return webhooks.c.id.is_not(None) if account_id is None else webhooks.c.account_id == account_id


def webhook_view(row: Any) -> dict[str, Any]:
    low = row["low_balance_nano"]
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "url": row["url"],
        "events": row["events"],
        "thresholds": row["thresholds"],
        "low_balance_usd": None if low is None else nano_to_usd(low),
        "enabled": row["enabled"],
        "created_at": iso(row["created_at"]),
    }


async def list_webhooks(gw: Gateway, account_id: int | None) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        query = select(webhooks).where(_owned(account_id)).order_by(webhooks.c.id)
        rows = (await conn.execute(query)).mappings().all()
    return [webhook_view(r) for r in rows]


async def get_webhook(gw: Gateway, account_id: int | None, webhook_id: int) -> dict[str, Any]:
    if not checks.can_exist(webhook_id):
        raise not_found(f"No webhook {webhook_id}.", "webhook_not_found")
    async with gw.engine.connect() as conn:
        query = select(webhooks).where(_owned(account_id), webhooks.c.id == webhook_id)
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise not_found(f"No webhook {webhook_id}.", "webhook_not_found")
    return webhook_view(row)


async def update_webhook(
    gw: Gateway, account_id: int | None, webhook_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    checkers = {
        "url": check_url,
        "events": check_events,
        "thresholds": check_thresholds,
        "low_balance_nano": check_low_balance,
        "enabled": lambda v: checks.flag(v, "enabled"),
    }
    unknown = set(changes) - set(checkers)
    if unknown:
        raise bad_request(f"Cannot change: {', '.join(sorted(unknown))}.")
    values = {name: checkers[name](value) for name, value in changes.items()}
    await get_webhook(gw, account_id, webhook_id)
    if values:
        async with gw.engine.begin() as conn:
            await conn.execute(update(webhooks).where(webhooks.c.id == webhook_id).values(values))
    return await get_webhook(gw, account_id, webhook_id)


async def delete_webhook(gw: Gateway, account_id: int | None, webhook_id: int) -> None:
    await get_webhook(gw, account_id, webhook_id)
    async with gw.engine.begin() as conn:
        await conn.execute(delete(webhook_events).where(webhook_events.c.webhook_id == webhook_id))
        await conn.execute(delete(webhooks).where(webhooks.c.id == webhook_id))


async def list_events(
    gw: Gateway, account_id: int | None, webhook_id: int, limit: int = 50
) -> list[dict[str, Any]]:
    """The webhook's events, newest first, with how their delivery went."""
    await get_webhook(gw, account_id, webhook_id)
    e = webhook_events.c
    query = select(webhook_events).where(e.webhook_id == webhook_id).order_by(e.id.desc())
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query.limit(limit))).mappings().all()
    return [
        {
            "id": r["id"],
            "event": r["event"],
            "payload": r["payload"],
            "status": r["status"],
            "attempts": r["attempts"],
            "last_error": r["last_error"],
            "created_at": iso(r["created_at"]),
            "delivered_at": iso(r["delivered_at"]),
        }
        for r in rows
    ]
