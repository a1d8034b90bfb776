"""Upstream channels: which upstream accounts serve which models, methods and
price groups, with what keys, in what order (SPEC §8).

A channel is stored with its keys (each enabled on its own, each encrypted:
key_vault.py) and shown without them: a key appears only as its last four
characters. ``status`` is
``enabled``, ``disabled`` (by hand) or ``auto_disabled`` (the upstream
rejected every key: routing/status.py); enabling it again by hand enables
its keys again. ``health`` is this process's view of its recent calls.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, insert, select, update

from tollway.catalog.schema import PerCallEntry, PerUseEntry
from tollway.db.schema import channels
from tollway.errors import bad_request, not_found
from tollway.gateway import Gateway
from tollway.key_vault import KeyUnreadable, KeyVault
from tollway.manage import audit, checks
from tollway.providers import PROVIDERS
from tollway.routing.status import AUTO_DISABLED, keys_enabled
from tollway.state import DEFAULT_GROUP
from tollway.timeutil import iso, utcnow
from tollway.types import BillingMethod

# A channel's priority: higher is tried first.
MAX_PRIORITY = 1_000_000
MAX_WEIGHT = 1_000_000
MAX_KEYS = 100
KEY_STRATEGIES = ("round_robin", "random")
STATUSES = ("enabled", "disabled")  # what an admin may set (auto_disabled is routing's)
METHODS = tuple(m.value for m in BillingMethod)
FIELDS = frozenset(
    {
        "name",
        "type",
        "base_url",
        "api_key",
        "api_keys",
        "key_strategy",
        "models",
        "model_mapping",
        "priority",
        "weight",
        "groups",
        "methods",
        "enabled",
        "status",
        "cost",
    }
)
REQUIRED = ("name", "type", "base_url", "models")


def group_names(gw: Gateway) -> list[str]:
    """The price groups a channel may serve, ``default`` first."""
    return sorted(gw.state.groups, key=lambda g: (g != DEFAULT_GROUP, g))


def channel_types() -> list[str]:
    """The upstream APIs a channel can speak, by the name its ``type`` takes."""
    return list(PROVIDERS)


def _check(gw: Gateway, fields: dict[str, Any], partial: bool) -> dict[str, Any]:
    """The columns to store for ``fields`` (all of them when creating)."""
    unknown = set(fields) - FIELDS
    if unknown:
        raise bad_request(f"Unknown channel fields: {', '.join(sorted(unknown))[:200]}.")
    missing = set() if partial else {f for f in REQUIRED if f not in fields}
    if not partial and "api_key" not in fields and "api_keys" not in fields:
        missing.add("api_key")
    if missing:
        raise bad_request(f"Missing channel fields: {', '.join(sorted(missing))}.")
    if "api_key" in fields and "api_keys" in fields:
        raise bad_request("Send 'api_key' or 'api_keys', not both.", param="api_keys")
    if "enabled" in fields and "status" in fields:
        raise bad_request("Send 'enabled' or 'status', not both.", param="status")
    values: dict[str, Any] = {}
    for name, value in fields.items():
        column, checked = _field(gw, name, value)
        values[column] = checked
    return values


def _field(gw: Gateway, name: str, value: Any) -> tuple[str, Any]:
    """One field's column and checked value."""
    if name == "type":
        if not isinstance(value, str) or value not in PROVIDERS:
            raise bad_request(
                f"Unknown channel type {str(value)[:50]!r}; known: {', '.join(PROVIDERS)}.",
                param="type",
            )
        return name, value
    if name == "name":
        return name, checks.text(value, "name")
    if name == "base_url":
        url = checks.text(value, name, checks.MAX_TEXT_CHARS)
        if not url.startswith(("http://", "https://")):
            raise bad_request("'base_url' must start with http:// or https://.", param=name)
        return name, url
    if name in ("api_key", "api_keys"):
        keys = [value] if name == "api_key" else value
        return "api_keys", _keys(gw.state.key_vault, keys, name)
    if name == "key_strategy":
        return name, _one_of(value, name, KEY_STRATEGIES)
    if name == "models":
        if not isinstance(value, list) or not value:
            raise bad_request(
                "'models' must be a non-empty list of model names ('*' for all).", param=name
            )
        return name, checks.names(value, name)
    if name == "model_mapping":
        return name, _mapping(value)
    if name == "priority":
        return name, checks.whole_number(value, name, -MAX_PRIORITY, MAX_PRIORITY)
    if name == "weight":
        return name, checks.whole_number(value, name, 0, MAX_WEIGHT)
    if name == "groups":
        return name, _groups(gw, value)
    if name == "methods":
        return name, _methods(value)
    if name == "enabled":
        if not isinstance(value, bool):
            raise bad_request("'enabled' must be true or false.", param=name)
        return "status", "enabled" if value else "disabled"
    if name == "status":
        return name, _one_of(value, name, STATUSES)
    return "cost", _cost(gw, value)


def _keys(vault: KeyVault, value: Any, param: str) -> list[dict[str, Any]]:
    """The keys as stored: each encrypted (key_vault.py)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_KEYS:
        raise bad_request(f"'{param}' must be a list of 1 to {MAX_KEYS} keys.", param=param)
    keys = [checks.text(k, param, checks.MAX_TEXT_CHARS) for k in value]
    if len(set(keys)) != len(keys):
        raise bad_request(f"'{param}' lists a key twice.", param=param)
    return [{"key": vault.seal(k), "enabled": True, "reason": None} for k in keys]


def _one_of(value: Any, param: str, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value not in allowed:
        raise bad_request(f"'{param}' must be one of: {', '.join(allowed)}.", param=param)
    return value


def _mapping(value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or len(value) > checks.MAX_LIST_ITEMS:
        raise bad_request(
            f"'model_mapping' must be an object of at most {checks.MAX_LIST_ITEMS} "
            "catalog model ids to upstream model names.",
            param="model_mapping",
        )
    return {
        checks.text(k, "model_mapping"): checks.text(v, "model_mapping") for k, v in value.items()
    }


def _groups(gw: Gateway, value: Any) -> list[str]:
    if not isinstance(value, list) or not value:
        raise bad_request("'groups' must be a non-empty list of group names.", param="groups")
    found = checks.names(value, "groups")
    unknown = [g for g in found if g not in gw.state.groups]
    if unknown:
        raise bad_request(
            f"Unknown groups: {', '.join(unknown)[:200]}. Create them first (POST /api/groups).",
            param="groups",
        )
    return list(dict.fromkeys(found))


def _methods(value: Any) -> list[str]:
    if (
        not isinstance(value, list)
        or not value
        or not all(isinstance(m, str) and m in METHODS for m in value)
    ):
        raise bad_request(
            f"'methods' must be a non-empty list of: {', '.join(METHODS)}.", param="methods"
        )
    return list(dict.fromkeys(value))


def _cost(gw: Gateway, value: Any) -> dict[str, Any] | None:
    """What the upstream charges the operator: null, {"multiplier": "0.7"}
    (of catalog prices) or {"prices": {model id: {per_use?, per_call?}}}."""
    if value is None:
        return None
    if not isinstance(value, dict) or len(value) != 1 or not {"multiplier", "prices"} & set(value):
        raise bad_request(
            '\'cost\' must be null, {"multiplier": "0.7"} or {"prices": {model: prices}}.',
            param="cost",
        )
    if "multiplier" in value:
        return {"multiplier": checks.multiplier(value["multiplier"], "cost.multiplier")}
    prices = value["prices"]
    if not isinstance(prices, dict) or not 1 <= len(prices) <= checks.MAX_LIST_ITEMS:
        raise bad_request("'cost.prices' must be an object of model ids to prices.", param="cost")
    checked: dict[str, Any] = {}
    for model_id, entry in prices.items():
        model = gw.state.catalog.get(model_id) if isinstance(model_id, str) else None
        if model is None:
            raise bad_request(f"'cost.prices': no model {str(model_id)[:100]!r}.", param="cost")
        checked[model.id] = _model_prices(entry, model.id)
    return {"prices": checked}


def _model_prices(entry: Any, model_id: str) -> dict[str, Any]:
    if not isinstance(entry, dict) or not entry or set(entry) - {"per_use", "per_call"}:
        raise bad_request(
            f"'cost.prices.{model_id}' must hold per_use and/or per_call prices.", param="cost"
        )
    checked: dict[str, Any] = {}
    try:
        if "per_use" in entry:
            per_use = PerUseEntry.model_validate(entry["per_use"])
            checked["per_use"] = per_use.model_dump(mode="json", exclude_none=True)
        if "per_call" in entry:
            per_call = PerCallEntry.model_validate(entry["per_call"])
            checked["per_call"] = per_call.model_dump(mode="json", exclude_none=True)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise bad_request(
            f"'cost.prices.{model_id}': {where}: {problem['msg']}"[:300], param="cost"
        ) from None
    return checked


def channel_view(gw: Gateway, row: Any) -> dict[str, Any]:
    keys = row["api_keys"]
    health = gw.router.health.view(row["id"])
    cooling = health.pop("cooling_down_s")
    health["cooling_until"] = iso(utcnow() + timedelta(seconds=cooling)) if cooling else None
    return {
        "id": row["id"],
        "name": row["name"],
        "type": row["type"],
        "base_url": row["base_url"],
        "keys": [
            {
                "hint": _hint(gw.state.key_vault, k["key"]),
                "enabled": k.get("enabled", True),
                "reason": k.get("reason"),
            }
            for k in keys
        ],
        "key_strategy": row["key_strategy"],
        "models": row["models"],
        "model_mapping": row["model_mapping"],
        "priority": row["priority"],
        "weight": row["weight"],
        "groups": row["groups"],
        "methods": row["methods"],
        "status": row["status"],
        "status_reason": row["status_reason"],
        "enabled": row["status"] == "enabled",
        "last_error": row["last_error"],
        "last_error_at": iso(row["last_error_at"]) if row["last_error_at"] else None,
        "cost": row["cost"],
        "health": health,
        "created_at": iso(row["created_at"]),
        "updated_at": iso(row["updated_at"]) if row["updated_at"] else None,
    }


def _hint(vault: KeyVault, stored: str) -> str:
    """The key's last four characters (a key no secret decrypts says so)."""
    try:
        key = vault.open(stored)
    except KeyUnreadable:
        return "(cannot be decrypted)"
    return f"...{key[-4:]}" if len(key) > 8 else "***"


async def create_channel(gw: Gateway, fields: dict[str, Any]) -> dict[str, Any]:
    now = utcnow()
    values = {
        "priority": 0,
        "weight": 1,
        "key_strategy": "round_robin",
        "model_mapping": {},
        "groups": [DEFAULT_GROUP],
        "methods": list(METHODS),
        "status": "enabled",
        **_check(gw, fields, partial=False),
        "created_at": now,
        "updated_at": now,
    }
    async with gw.engine.begin() as conn:
        new_id = (
            await conn.execute(insert(channels).values(values).returning(channels.c.id))
        ).scalar_one()
        await audit.record(conn, "channel.create", f"channel:{new_id}", _audited(values))
        await gw.state.changed(conn)
    await gw.state.reload()
    return await get_channel(gw, new_id)


def _audited(values: dict[str, Any]) -> dict[str, Any]:
    """A channel change as the audit log keeps it: keys only as their count."""
    shown = {k: v for k, v in values.items() if k not in ("created_at", "updated_at")}
    if "api_keys" in shown:
        shown["api_keys"] = f"{len(shown['api_keys'])} key(s)"
    return shown


async def channel_row(gw: Gateway, channel_id: int) -> Any:
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
    return row


async def get_channel(gw: Gateway, channel_id: int) -> dict[str, Any]:
    return channel_view(gw, await channel_row(gw, channel_id))


async def list_channels(gw: Gateway) -> list[dict[str, Any]]:
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(channels).order_by(channels.c.id))).mappings().all()
    return [channel_view(gw, r) for r in rows]


async def update_channel(gw: Gateway, channel_id: int, fields: dict[str, Any]) -> dict[str, Any]:
    values = _check(gw, fields, partial=True)
    row = await channel_row(gw, channel_id)
    if values.get("status") == "enabled":
        values["status_reason"] = None
        if row["status"] == AUTO_DISABLED:  # by hand after the upstream rejected its keys
            keys = values.get("api_keys", row["api_keys"])
            values["api_keys"] = keys_enabled(keys)
    if "api_keys" in values and "status" not in values and row["status"] == AUTO_DISABLED:
        values.update(status="enabled", status_reason=None)  # new keys: worth a try
    if values.get("status") == "disabled":
        values["status_reason"] = "disabled by an admin"
    if values:
        values["updated_at"] = utcnow()
        async with gw.engine.begin() as conn:
            await conn.execute(update(channels).where(channels.c.id == channel_id).values(values))
            await audit.record(conn, "channel.update", f"channel:{channel_id}", _audited(values))
            await gw.state.changed(conn)
        await gw.state.reload()
        gw.router.health.forget(channel_id)
    return await get_channel(gw, channel_id)


async def delete_channel(gw: Gateway, channel_id: int) -> None:
    await channel_row(gw, channel_id)
    async with gw.engine.begin() as conn:
        await conn.execute(delete(channels).where(channels.c.id == channel_id))
        await audit.record(conn, "channel.delete", f"channel:{channel_id}")
        await gw.state.changed(conn)
    await gw.state.reload()
