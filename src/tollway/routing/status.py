"""What routing writes down for every replica to see: a key the upstream
rejected is disabled with the upstream's words as its reason, and a channel
left with no enabled key is ``auto_disabled``; the last error a channel gave;
a passing test enabling it again."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import select, update

from tollway.db.schema import channels
from tollway.gateway import Gateway
from tollway.routing.failures import MAX_REASON_CHARS
from tollway.timeutil import utcnow

AUTO_DISABLED = "auto_disabled"
# A channel's last error is written at most this often (a failing upstream
# must not become a write per call).
ERROR_NOTE_S = 5.0


def keys_enabled(keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """A channel's keys, every one enabled again (reasons cleared)."""
    return [{**k, "enabled": True, "reason": None} for k in keys]


async def disable_key(gw: Gateway, channel_id: int, key_index: int, reason: str) -> None:
    """Disable one key of a channel; with none left the channel is auto-disabled."""
    reason = reason[:MAX_REASON_CHARS]
    async with gw.engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(channels.c.api_keys, channels.c.status)
                    .where(channels.c.id == channel_id)
                    .with_for_update()
                )
            )
            .mappings()
            .first()
        )
        if row is None or key_index >= len(row["api_keys"]):
            return
        keys = [dict(k) for k in row["api_keys"]]
        if not keys[key_index].get("enabled", True):
            return  # another call got here first
        keys[key_index].update(enabled=False, reason=reason)
        values: dict[str, object] = {
            "api_keys": keys,
            "last_error": reason,
            "last_error_at": utcnow(),
            "updated_at": utcnow(),
        }
        if row["status"] == "enabled" and not any(k.get("enabled", True) for k in keys):
            values.update(status=AUTO_DISABLED, status_reason=reason)
        await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
        await gw.state.changed(conn)
    await gw.state.reload()


async def note_error(gw: Gateway, channel_id: int, reason: str) -> None:
    """Keep the channel's last error (at most every ERROR_NOTE_S)."""
    noted, now = gw.router.errors_noted, time.monotonic()
    if now - noted.get(channel_id, -ERROR_NOTE_S) < ERROR_NOTE_S:
        return
    noted[channel_id] = now
    values = {"last_error": reason[:MAX_REASON_CHARS], "last_error_at": utcnow()}
    async with gw.engine.begin() as conn:
        await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))


async def enable_again(gw: Gateway, channel_id: int) -> bool:
    """A passing test: every key enabled, an auto-disabled channel enabled
    (one disabled by hand stays so). True if anything changed."""
    async with gw.engine.begin() as conn:
        row = (
            (
                await conn.execute(
                    select(channels.c.api_keys, channels.c.status).where(
                        channels.c.id == channel_id
                    )
                )
            )
            .mappings()
            .first()
        )
        if row is None:
            return False
        keys = keys_enabled(row["api_keys"])
        changed = keys != row["api_keys"] or row["status"] == AUTO_DISABLED
        if not changed:
            return False
        values: dict[str, object] = {"api_keys": keys, "updated_at": utcnow()}
        if row["status"] == AUTO_DISABLED:
            values.update(status="enabled", status_reason=None)
        await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
        await gw.state.changed(conn)
    await gw.state.reload()
    gw.router.health.forget(channel_id)
    return True
