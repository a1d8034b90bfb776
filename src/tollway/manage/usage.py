"""Usage records: what each call was billed, newest first, paged by cursor;
and the spend of the billed calls per day, for a chart."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import case, func, select

from tollway.db.schema import usage_records
from tollway.gateway import Gateway
from tollway.timeutil import aware, iso
from tollway.types import NANO_PER_USD, TOKEN_CLASSES, nano_to_usd

MAX_PAGE = 1000
# The most records one chart reads: its days are capped too, so only a very
# busy gateway reaches it, and then the chart shows part of the spend.
MAX_SPEND_ROWS = 500_000


def usage_view(row: Any) -> dict[str, Any]:
    return {
        "id": row["id"],
        "request_id": row["request_id"],
        "created_at": iso(row["created_at"]),
        "account_id": row["account_id"],
        "token_id": row["token_id"],
        "model": row["model"],
        "endpoint": row["endpoint"],
        "billing_mode": row["billing_mode"],
        "method": row["method"],
        "tokens": {name: row[name] for name in TOKEN_CLASSES},
        # speech by characters read, transcription by milliseconds of audio heard
        "input_characters": row["input_characters"],
        "audio_input_ms": row["audio_input_ms"],
        "items": row["items"],
        "unit_prices_usd": row["unit_prices"],
        "cost_usd": nano_to_usd(row["cost_nano"]),
        "usage_source": row["usage_source"],
        "status": row["status"],
        "duration_ms": row["duration_ms"],
        "detail": row["detail"],
        "exceeded_hold": row["exceeded_hold"],
        "channel_id": row["channel_id"],
        "attempts": row["attempts"],
        "group": row["group_name"],
        "multiplier": row["multiplier"],
        "upstream_cost_usd": _usd(row["upstream_cost_nano"]),
    }


def _usd(nano: int | None) -> str | None:
    return nano_to_usd(nano) if nano is not None else None


def cost_nano(record: dict[str, Any]) -> int:
    """A usage record's ``cost_usd`` back in nano-USD, exactly. Not an input,
    so not held to the money inputs' maximum (a charge past its hold may pass it)."""
    text: str = record["cost_usd"]
    whole, _, frac = text.lstrip("-").partition(".")
    nano = int(whole) * NANO_PER_USD + int(frac.ljust(9, "0"))
    return -nano if text.startswith("-") else nano


async def list_usage(
    gw: Gateway,
    account_id: int | None,
    token_id: int | None = None,
    model: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    limit: int = 100,
    cursor: int | None = None,
) -> dict[str, Any]:
    limit = max(1, min(limit, MAX_PAGE))
    c = usage_records.c
    query = select(usage_records).order_by(c.id.desc()).limit(limit + 1)
    filters = [
        (account_id, lambda v: c.account_id == v),
        (token_id, lambda v: c.token_id == v),
        (model, lambda v: c.model == v),
        (since, lambda v: c.created_at >= v),
        (until, lambda v: c.created_at < v),
        (cursor, lambda v: c.id < v),
    ]
    for value, clause in filters:
        if value is not None:
            query = query.where(clause(value))
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    page = [usage_view(r) for r in rows[:limit]]
    next_cursor = str(page[-1]["id"]) if len(rows) > limit else None
    return {"data": page, "next_cursor": next_cursor}


def midnight(day: date) -> datetime:
    """The day's start in UTC, the days usage is counted in."""
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


async def spend_by_day(
    gw: Gateway,
    first_day: date,
    last_day: date,
    account_id: int | None,
    token_id: int | None = None,
    model: str | None = None,
) -> list[tuple[date, str, int]]:
    """(day, model, cost_nano) of each billed call from ``first_day`` to
    ``last_day`` (inclusive, UTC), of one account or all (None)."""
    c = usage_records.c
    query = (
        select(c.created_at, c.model, c.cost_nano)
        .where(c.created_at >= midnight(first_day))
        .where(c.created_at < midnight(last_day + timedelta(days=1)))
        .where(c.cost_nano != 0)
        .limit(MAX_SPEND_ROWS)
    )
    for value, column in ((account_id, c.account_id), (token_id, c.token_id), (model, c.model)):
        if value is not None:
            query = query.where(column == value)
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).all()
    return [(aware(at).date(), name, cost) for at, name, cost in rows]  # type: ignore[union-attr]


MARGIN_KEYS = ("model", "channel")


async def margins(
    gw: Gateway,
    by: str,
    since: datetime | None = None,
    until: datetime | None = None,
) -> list[dict[str, Any]]:
    """Revenue, upstream cost and margin of the calls billed, by model or by
    channel. The margin counts only calls whose channel records its cost."""
    c = usage_records.c
    key = c.model if by == "model" else c.channel_id
    known = c.upstream_cost_nano.is_not(None)
    query = (
        select(
            key.label("key"),
            func.count().label("calls"),
            func.coalesce(func.sum(c.cost_nano), 0).label("revenue"),
            func.count(c.upstream_cost_nano).label("costed"),
            func.coalesce(func.sum(c.upstream_cost_nano), 0).label("cost"),
            func.coalesce(func.sum(case((known, c.cost_nano), else_=0)), 0).label("costed_revenue"),
        )
        .where(c.cost_nano > 0)
        .group_by(key)
        .order_by(func.sum(c.cost_nano).desc())
    )
    if since is not None:
        query = query.where(c.created_at >= since)
    if until is not None:
        query = query.where(c.created_at < until)
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [_margin_row(by, gw, r) for r in rows]


def _margin_row(by: str, gw: Gateway, row: Any) -> dict[str, Any]:
    revenue, cost, costed_revenue = (int(row[k]) for k in ("revenue", "cost", "costed_revenue"))
    found: dict[str, Any] = {by: row["key"]}
    if by == "channel":
        channel = gw.state.all_channels.get(row["key"]) if row["key"] is not None else None
        found["channel_name"] = channel.name if channel is not None else None
    found.update(
        calls=int(row["calls"]),
        revenue_usd=nano_to_usd(revenue),
        calls_with_cost=int(row["costed"]),
        upstream_cost_usd=nano_to_usd(cost),
        margin_usd=nano_to_usd(costed_revenue - cost),
    )
    return found
