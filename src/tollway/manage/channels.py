"""Upstream channels: where calls for which models are forwarded."""

from __future__ import annotations

from typing import Any

from sqlalchemy import delete, insert, select, update

from tollway.db.schema import channels
from tollway.errors import bad_request, not_found
from tollway.gateway import Gateway
from tollway.manage import checks
from tollway.providers import PROVIDERS
from tollway.timeutil import iso, utcnow

# A channel's priority: higher is tried first.
MAX_PRIORITY = 1_000_000


def channel_types() -> list[str]:
    """The upstream APIs a channel can speak, by the name its ``type`` takes."""
    return list(PROVIDERS)


def _check(fields: dict[str, Any], partial: bool) -> dict[str, Any]:
    allowed = {"name", "type", "base_url", "api_key", "models", "priority", "enabled"}
    unknown = set(fields) - allowed
    if unknown:
        raise bad_request(f"Unknown channel fields: {', '.join(sorted(unknown))[:200]}.")
    required = {"name", "type", "base_url", "api_key", "models"}
    missing = set() if partial else required - set(fields)
    if missing:
        raise bad_request(f"Missing channel fields: {', '.join(sorted(missing))}.")
    checked = dict(fields)
    kind = fields.get("type")
    if "type" in fields and (not isinstance(kind, str) or kind not in PROVIDERS):
        raise bad_request(
            f"Unknown channel type {str(fields['type'])[:50]!r}; known: {', '.join(PROVIDERS)}.",
            param="type",
        )
    if "name" in fields:
        checked["name"] = checks.text(fields["name"], "name")
    for name in ("base_url", "api_key"):
        if name in fields:
            checked[name] = checks.text(fields[name], name, checks.MAX_TEXT_CHARS)
    if "base_url" in fields and not checked["base_url"].startswith(("http://", "https://")):
        raise bad_request("'base_url' must start with http:// or https://.", param="base_url")
    if "models" in fields:
        models = fields["models"]
        if (
            not isinstance(models, list)
            or not models
            or not all(isinstance(m, str) for m in models)
        ):
            raise bad_request(
                "'models' must be a non-empty list of model names ('*' for all).", param="models"
            )
        checked["models"] = checks.names(models, "models")
    if "priority" in fields:
        checks.whole_number(fields["priority"], "priority", -MAX_PRIORITY, MAX_PRIORITY)
    if "enabled" in fields and not isinstance(fields["enabled"], bool):
        raise bad_request("'enabled' must be true or false.", param="enabled")
    return checked


def channel_view(row: Any) -> dict[str, Any]:
    key = row["api_key"]
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "base_url": row["base_url"],
        "api_key": f"{key[:3]}...{key[-4:]}" if len(key) > 8 else "***",
        "models": row["models"],
        "priority": row["priority"],
        "enabled": row["enabled"],
        "created_at": iso(row["created_at"]),
    }


async def create_channel(gw: Gateway, fields: dict[str, Any]) -> dict[str, Any]:
    values = {
        "priority": 0,
        "enabled": True,
        **_check(fields, partial=False),
        "created_at": utcnow(),
    }
    async with gw.engine.begin() as conn:
        new_id = (
            await conn.execute(insert(channels).values(values).returning(channels.c.id))
        ).scalar_one()
        await gw.state.changed(conn)
    await gw.state.reload()
    return await get_channel(gw, new_id)


async def get_channel(gw: Gateway, channel_id: int) -> dict[str, Any]:
    if not checks.can_exist(channel_id):
        raise not_found(f"No channel {channel_id}.", "channel_not_found")
    async with gw.engine.connect() as conn:
        row = (
            (await conn.execute(select(channels).where(channels.c.id == channel_id)))
            .mappings()
            .first()
        )
    if row is None:
        raise not_found(f"No channel {channel_id}.", "channel_not_found")
    return channel_view(row)


async def list_channels(gw: Gateway) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(channels).order_by(channels.c.id))).mappings().all()
    return [channel_view(r) for r in rows]


async def update_channel(gw: Gateway, channel_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    values = _check(fields, partial=True)
    await get_channel(gw, channel_id)
    if values:
        async with gw.engine.begin() as conn:
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            await gw.state.changed(conn)
        await gw.state.reload()
    return await get_channel(gw, channel_id)


async def delete_channel(gw: Gateway, channel_id: int) -> None:
    await get_channel(gw, channel_id)
    async with gw.engine.begin() as conn:
        await conn.execute(delete(channels).where(channels.c.id == channel_id))
        await gw.state.changed(conn)
    await gw.state.reload()
