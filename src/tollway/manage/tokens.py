"""API keys ("tokens"): created with a billing mode and a price group, shown
once, hashed at rest."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import func, insert, select, update

from tollway.billing.modes import can_call, hybrid_refusal_message
from tollway.db.schema import leases, tokens
from tollway.errors import bad_request, not_found
from tollway.gateway import Gateway
from tollway.keys import display_prefix, hash_key, new_key
from tollway.manage import audit, checks
from tollway.manage.budgets import budget_fields
from tollway.manage.groups import account_groups
from tollway.state import AUTO_GROUP, DEFAULT_GROUP
from tollway.timeutil import aware, iso, utcnow
from tollway.types import DEFAULT_BILLING_MODE, MAX_NANO, MAX_USD, BillingMode, Model, nano_to_usd

UNSET: Any = object()


def check_mode(value: Any, allow_hybrid: bool) -> BillingMode:
    try:
        mode = BillingMode(value)
    except ValueError:
        choices = ", ".join(m.value for m in BillingMode)
        raise bad_request(
            f"Unknown billing mode {value!r}; choose one of: {choices}.",
            param="billing_mode",
            code="invalid_billing_mode",
        ) from None
    if mode is BillingMode.HYBRID and not allow_hybrid:
        raise bad_request(
            hybrid_refusal_message(), param="billing_mode", code="billing_mode_not_applicable"
        )
    return mode


def check_models(gw: Gateway, models: Any) -> list[str] | None:
    if models is None:
        return None
    if not isinstance(models, list) or not all(isinstance(m, str) for m in models):
        raise bad_request(
            "'models' must be a list of model names, or null for all.", param="models"
        )
    models = checks.names(models, "models")
    unknown = [m for m in models if gw.state.catalog.get(m) is None]
    if unknown:
        raise bad_request(
            f"Unknown models in the allowlist: {', '.join(unknown)}.",
            param="models",
            code="model_not_found",
        )
    return list(dict.fromkeys(models))


def first_callable(gw: Gateway, token: dict[str, Any], names: Iterable[str]) -> Model | None:
    """The first model the token's billing mode can call: of its allowlist when
    it has one, else of ``names``; None when none can be."""
    mode = BillingMode(token["billing_mode"])
    for name in token["models"] or names:
        model = gw.state.catalog.get(name)
        if model is not None and can_call(mode, model):
            return model
    return None


def check_quota(quota_nano: Any) -> int | None:
    """A quota in nano-USD (parsed by ``usd_to_nano``): 0 to the maximum, or None."""
    if quota_nano is None:
        return None
    if isinstance(quota_nano, bool) or not isinstance(quota_nano, int):
        raise bad_request("'quota_usd' must be an amount in USD or null.", param="quota_usd")
    if quota_nano < 0:
        raise bad_request("'quota_usd' cannot be negative.", param="quota_usd")
    if quota_nano > MAX_NANO:
        raise bad_request(f"'quota_usd' is beyond the maximum of {MAX_USD} USD.", param="quota_usd")
    return quota_nano


def check_name(name: Any) -> str:
    return checks.text(name, "name")


async def check_group(gw: Gateway, value: Any, account_id: int) -> str:
    """A token's price group: one its account may use, or ``auto`` when the
    operator's auto list holds one of them. None: ``default``, or the
    account's first group when ``default`` is not one of them."""
    allowed = await account_groups(gw, account_id)
    if value is None:
        return DEFAULT_GROUP if DEFAULT_GROUP in allowed else allowed[0]
    name = checks.text(value, "group")
    if name == AUTO_GROUP:
        if not any(g in allowed for g in gw.state.auto_groups):
            raise bad_request(
                f"No group of this account ({', '.join(sorted(allowed))[:200]}) is in the "
                f"operator's auto list, so a token cannot use '{AUTO_GROUP}'.",
                param="group",
                code="group_not_allowed",
            )
        return name
    if name not in gw.state.groups:
        raise bad_request(f"No group {name[:100]!r}.", param="group", code="group_not_found")
    if name not in allowed:
        raise bad_request(
            f"This account may use the groups {', '.join(sorted(allowed))[:200]}, not {name!r}.",
            param="group",
            code="group_not_allowed",
        )
    return name


async def create_token(
    gw: Gateway,
    account_id: int,
    name: str,
    billing_mode: Any = None,
    quota_nano: int | None = None,
    expires_at: datetime | None = None,
    models: Any = None,
    group: Any = None,
    limits: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A new token; ``limits`` may carry its rate limits (rpm_limit, tpm_limit,
    max_concurrent) and budget (budget_nano, budget_period)."""
    mode = (
        DEFAULT_BILLING_MODE
        if billing_mode is None
        else check_mode(billing_mode, gw.settings.allow_hybrid)
    )
    key = new_key()
    now = utcnow()
    values = {
        "account_id": account_id,
        "name": check_name(name),
        "key_hash": hash_key(key),
        "key_prefix": display_prefix(key),
        "billing_mode": mode.value,
        "quota_nano": check_quota(quota_nano),
        "used_nano": 0,
        "held_nano": 0,
        "expires_at": _check_time(expires_at),
        "models": check_models(gw, models),
        "group_name": await check_group(gw, group, account_id),
        **checks.limits(limits or {}),
        **checks.budget(limits or {}),
        "enabled": True,
        "deleted": False,
        "created_at": now,
        "updated_at": now,
    }
    async with gw.engine.begin() as conn:
        token_id = (
            await conn.execute(insert(tokens).values(values).returning(tokens.c.id))
        ).scalar_one()
        shown = {
            k: v for k, v in values.items() if k not in ("key_hash", "created_at", "updated_at")
        }
        await audit.record(conn, "token.create", f"token:{token_id}", shown)
    view = await get_token(gw, account_id, token_id)
    view["key"] = key
    return view


# Spent through leases and not yet folded into used_nano (tollway.leases).
_LEASE_SPENT = (
    select(func.coalesce(func.sum(leases.c.spent_nano), 0))
    .where(leases.c.token_id == tokens.c.id)
    .scalar_subquery()
    .label("lease_spent")
)
_LEASE_USED_AT = (
    select(func.max(leases.c.renewed_at))
    .where(leases.c.token_id == tokens.c.id)
    .scalar_subquery()
    .label("lease_used_at")
)


def token_view(row: Any) -> dict[str, Any]:
    """A token row selected with ``_LEASE_SPENT`` and ``_LEASE_USED_AT``."""
    quota = row["quota_nano"]
    used = int(row["used_nano"]) + int(row["lease_spent"])
    return {
        "id": row["id"],
        "account_id": row["account_id"],
        "name": row["name"],
        "key_prefix": row["key_prefix"],
        "billing_mode": row["billing_mode"],
        "quota_usd": nano_to_usd(quota) if quota is not None else None,
        "used_usd": nano_to_usd(used),
        "remaining_usd": nano_to_usd(max(quota - used, 0)) if quota is not None else None,
        "expires_at": iso(row["expires_at"]),
        "models": row["models"],
        "group": row["group_name"],
        **{name: row[name] for name in checks.LIMIT_FIELDS},
        **budget_fields(row, int(row["lease_spent"])),
        "enabled": row["enabled"],
        "created_at": iso(row["created_at"]),
        "last_used_at": iso(_latest(row["last_used_at"], row["lease_used_at"])),
    }


def _latest(*moments: datetime | None) -> datetime | None:
    known = [m for m in map(aware, moments) if m is not None]
    return max(known) if known else None


def _owned(account_id: int | None) -> Any:
    clause = tokens.c.deleted.is_(False)
    return clause if account_id is None else clause & (tokens.c.account_id == account_id)


async def list_tokens(gw: Gateway, account_id: int | None) -> list[dict[str, Any]]:
    """The account's tokens (all accounts' when account_id is None: admins)."""
    query = (
        select(tokens, _LEASE_SPENT, _LEASE_USED_AT).where(_owned(account_id)).order_by(tokens.c.id)
    )
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(query)).mappings().all()
    return [token_view(r) for r in rows]


async def get_token(gw: Gateway, account_id: int | None, token_id: int) -> dict[str, Any]:
    if not checks.can_exist(token_id):
        raise not_found(f"No token {token_id}.", "token_not_found")
    query = select(tokens, _LEASE_SPENT, _LEASE_USED_AT).where(
        _owned(account_id), tokens.c.id == token_id
    )
    async with gw.engine.connect() as conn:
        row = (await conn.execute(query)).mappings().first()
    if row is None:
        raise not_found(f"No token {token_id}.", "token_not_found")
    return token_view(row)


async def update_token(
    gw: Gateway, account_id: int | None, token_id: int, changes: dict[str, Any]
) -> dict[str, Any]:
    """Apply a PATCH: any of name, billing_mode, quota_nano, expires_at, models,
    group, enabled, rpm_limit, tpm_limit, max_concurrent, budget_nano, budget_period."""
    budget_changes = {k: changes[k] for k in BUDGET_CHANGES if k in changes}
    values = _checked_changes(gw, {k: v for k, v in changes.items() if k not in BUDGET_CHANGES})
    token = await get_token(gw, account_id, token_id)  # 404 unless it is theirs
    values.update(checks.budget(budget_changes, token["budget_period"]))
    if "group_name" in values:
        values["group_name"] = await check_group(gw, values["group_name"], token["account_id"])
    if values:
        values["updated_at"] = utcnow()
        async with gw.engine.begin() as conn:
            await conn.execute(update(tokens).where(tokens.c.id == token_id).values(values))
            await audit.record(conn, "token.update", f"token:{token_id}", values)
            await gw.state.changed(conn)
        # binds the next call on every process (a group may price it higher)
        if values.keys() & {"quota_nano", "enabled", "group_name", "budget_nano", "budget_period"}:
            await gw.spending_lowered(token_id=token_id)
        else:
            await gw.state.reload()
    return await get_token(gw, account_id, token_id)


BUDGET_CHANGES = ("budget_nano", "budget_period")


def _checked_changes(gw: Gateway, changes: dict[str, Any]) -> dict[str, Any]:
    checkers: dict[str, Callable[[Any], Any]] = {
        "name": check_name,
        "billing_mode": lambda v: check_mode(v, gw.settings.allow_hybrid).value,
        "quota_nano": check_quota,
        "expires_at": _check_time,
        "models": lambda v: check_models(gw, v),
        "group": lambda v: checks.text(v, "group"),  # and its account's: update_token
        "enabled": _check_bool,
        **{name: functools.partial(checks.limit, param=name) for name in checks.LIMIT_FIELDS},
    }
    unknown = set(changes) - set(checkers)
    if unknown:
        raise bad_request(f"Cannot change: {', '.join(sorted(unknown))}.")
    columns = {"group": "group_name"}
    return {columns.get(f, f): checkers[f](value) for f, value in changes.items()}


def _check_time(value: Any) -> datetime | None:
    if value is not None and not isinstance(value, datetime):
        raise bad_request("'expires_at' must be a time or null.", param="expires_at")
    moment = aware(value)
    try:
        return None if moment is None else moment.astimezone(UTC)
    except OverflowError:  # past year 9999 in UTC
        raise bad_request("'expires_at' is out of range.", param="expires_at") from None


def _check_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise bad_request("'enabled' must be true or false.", param="enabled")
    return value


async def delete_token(gw: Gateway, account_id: int | None, token_id: int) -> None:
    """Deleted tokens stop working at once; their usage records stay."""
    await get_token(gw, account_id, token_id)
    async with gw.engine.begin() as conn:
        await conn.execute(
            update(tokens)
            .where(tokens.c.id == token_id)
            .values(deleted=True, enabled=False, updated_at=utcnow())
        )
        await audit.record(conn, "token.delete", f"token:{token_id}")
        await gw.state.changed(conn)
    await gw.spending_lowered(token_id=token_id)  # its reserve back at once
