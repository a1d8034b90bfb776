"""Sending due events: POST the payload as JSON, signed (signing.py), and
record how it went. A 2xx is delivered; anything else is tried again after
2, 4, 8 … seconds (at most an hour apart), MAX_ATTEMPTS times in all, then
recorded as failed. An event is claimed before it is sent (its next attempt
moved past the send's timeout), so two replicas never send it at once."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import httpx
import orjson
from sqlalchemy import select, update

from tollway.alerts.signing import EVENT_HEADER, SIGNATURE_HEADER, signature
from tollway.db.schema import webhook_events, webhooks
from tollway.gateway import Gateway
from tollway.timeutil import utcnow

MAX_ATTEMPTS = 8
SEND_TIMEOUT_S = 5.0
CLAIM_S = 30  # longer than a send
BATCH = 50


async def deliver_due(gw: Gateway, client: httpx.AsyncClient) -> int:
    """Send the events whose time has come; returns how many were delivered."""
    now = utcnow()
    e, w = webhook_events.c, webhooks.c
    query = (
        select(e.id, e.event, e.payload, e.attempts, w.url, w.secret)
        .join(webhooks, w.id == e.webhook_id)
        .where(e.status == "pending", e.next_at <= now)
        .order_by(e.next_at)
        .limit(BATCH)
    )
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    delivered = 0
    for row in rows:
        if await _claim(gw, row["id"], now):
            delivered += await _send(gw, client, row)
    return delivered


async def _claim(gw: Gateway, event_id: int, now: Any) -> bool:
    e = webhook_events.c
    claim = (
        update(webhook_events)
        .where(e.id == event_id, e.status == "pending", e.next_at <= now)
        .values(next_at=now + timedelta(seconds=CLAIM_S))
    )
    async with gw.engine.begin() as conn:
        return (await conn.execute(claim)).rowcount == 1


async def _send(gw: Gateway, client: httpx.AsyncClient, row: Any) -> int:
    body = orjson.dumps(row["payload"])
    headers = {
        "content-type": "application/json",
        EVENT_HEADER: row["event"],
        SIGNATURE_HEADER: signature(row["secret"], int(time.time()), body),
    }
    error = None
    try:
        got = await client.post(row["url"], content=body, headers=headers, timeout=SEND_TIMEOUT_S)
        if not 200 <= got.status_code < 300:
            error = f"HTTP {got.status_code}"
    except httpx.HTTPError as exc:
        error = f"{exc.__class__.__name__}: {exc}"[:500]
    await _record(gw, row, error)
    return error is None


async def _record(gw: Gateway, row: Any, error: str | None) -> None:
    now = utcnow()
    attempts = row["attempts"] + 1
    values: dict[str, Any] = {"attempts": attempts, "last_error": error}
    if error is None:
        values.update(status="delivered", delivered_at=now)
    elif attempts >= MAX_ATTEMPTS:
        values["status"] = "failed"
    else:
        values["next_at"] = now + timedelta(seconds=min(2**attempts, 3600))
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(webhook_events).where(webhook_events.c.id == row["id"]).values(values)
        )
