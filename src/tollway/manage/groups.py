"""Price groups (SPEC §8): every price a token of a group sees or pays is the
catalog price x the group's multiplier.

A group is a name, a multiplier (a decimal string, never a float: "0.8"), a
description and, when it takes part in the operator's auto list, an
``auto_rank`` (lower first): a token of group ``auto`` walks that list,
keeping the groups its account may use, and the first with a channel for the
call wins. ``default`` (x1 unless edited) always exists. An account lists the
groups its tokens may use (none listed: ``default``); a token names one of
them, or ``auto``.

Groups are created and edited, not renamed or deleted: tokens, accounts,
channels and usage records name them.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from tollway.db.schema import accounts, groups
from tollway.endpoints import MeteredEndpoint, serving
from tollway.errors import ApiError, bad_request, forbidden, not_found
from tollway.gateway import Gateway
from tollway.manage import audit, checks
from tollway.state import AUTO_GROUP, DEFAULT_GROUP, Group, TokenInfo
from tollway.timeutil import iso, utcnow
from tollway.types import (
    BillingMethod,
    BillingMode,
    Model,
)

NAME = re.compile(r"[A-Za-z0-9_.-]{1,64}")
MAX_AUTO_RANK = 1_000_000
MAX_ACCOUNT_GROUPS = 100
FIELDS = frozenset({"name", "multiplier", "description", "auto_rank"})
EDITABLE = FIELDS - {"name"}


# Checks: each bad value is a 400 naming its field.


def check_name(value: Any) -> str:
    if not isinstance(value, str) or NAME.fullmatch(value) is None:
        raise bad_request(
            "'name' must be 1 to 64 characters of letters, digits, '_', '.' and '-'.",
            param="name",
        )
    if value == AUTO_GROUP:
        raise bad_request(
            f"'{AUTO_GROUP}' is reserved: a token of group '{AUTO_GROUP}' walks the auto list.",
            param="name",
        )
    return value


def check_auto_rank(value: Any) -> int | None:
    if value is None:
        return None
    return checks.whole_number(value, "auto_rank", 0, MAX_AUTO_RANK)


def check_description(value: Any) -> str | None:
    if value is None:
        return None
    return checks.text(value, "description", checks.MAX_TEXT_CHARS, blank=True) or None


def check_member_groups(gw: Gateway, value: Any, param: str = "groups") -> list[str]:
    """An account's groups: a non-empty list of existing groups ('auto' is a
    token's choice, not a group)."""
    if not isinstance(value, list) or not 1 <= len(value) <= MAX_ACCOUNT_GROUPS:
        raise bad_request(
            f"'{param}' must be a list of 1 to {MAX_ACCOUNT_GROUPS} group names.", param=param
        )
    names = checks.names(value, param)
    if AUTO_GROUP in names:
        raise bad_request(
            f"'{AUTO_GROUP}' is not a group an account can have: give its tokens group "
            f"'{AUTO_GROUP}' to walk the auto list.",
            param=param,
        )
    unknown = [n for n in names if n not in gw.state.groups]
    if unknown:
        raise bad_request(
            f"Unknown groups: {', '.join(unknown)[:200]}. Create them first (POST /api/groups).",
            param=param,
        )
    return list(dict.fromkeys(names))


def _checked(fields: Any, partial: bool) -> dict[str, Any]:
    if not isinstance(fields, dict):
        raise bad_request("A group is a JSON object.")
    allowed = EDITABLE if partial else FIELDS
    if partial and "name" in fields:
        raise bad_request("A group's name cannot be changed.", param="name")
    unknown = set(fields) - allowed
    if unknown:
        raise bad_request(f"Unknown group fields: {', '.join(sorted(unknown))[:200]}.")
    if not partial:
        missing = [f for f in ("name", "multiplier") if f not in fields]
        if missing:
            raise bad_request(
                f"A group needs {' and '.join(map(repr, missing))}.", param=missing[0]
            )
    check = {
        "name": check_name,
        "multiplier": checks.multiplier,
        "description": check_description,
        "auto_rank": check_auto_rank,
    }
    return {name: check[name](value) for name, value in fields.items()}


# The service: create, read, edit.


def group_view(row: Any) -> dict[str, Any]:
    return {
        "name": row["name"],
        "multiplier": row["multiplier"],
        "description": row["description"],
        "auto_rank": row["auto_rank"],
        "created_at": iso(row["created_at"]),
    }


def _group_not_found(name: str) -> ApiError:
    return not_found(f"No group {name[:100]!r}.", "group_not_found", param="name")


async def create_group(gw: Gateway, fields: Any) -> dict[str, Any]:
    values = {"description": None, "auto_rank": None, **_checked(fields, partial=False)}
    values["created_at"] = utcnow()
    exists = ApiError(
        409, f"Group '{values['name']}' exists; change it with PATCH.", "group_exists"
    )
    if values["name"] in gw.state.groups:
        raise exists
    try:
        async with gw.engine.begin() as conn:
            await conn.execute(insert(groups).values(values))
            await audit.record(conn, "group.create", f"group:{values['name']}", values)
            await gw.state.changed(conn)
    except IntegrityError:  # made meanwhile (elsewhere)
        raise exists from None
    await gw.state.reload()
    return await get_group(gw, values["name"])


async def get_group(gw: Gateway, name: str) -> dict[str, Any]:
    async with gw.engine.connect() as conn:
        row = (await conn.execute(select(groups).where(groups.c.name == name))).mappings().first()
    if row is None:
        raise _group_not_found(name)
    return group_view(row)


async def list_groups(gw: Gateway) -> list[dict[str, Any]]:
    """``default`` first, then the auto list in its order, then the rest by name."""
    async with gw.engine.connect() as conn:
        rows = (await conn.execute(select(groups))).mappings().all()
    views = [group_view(r) for r in rows]

    def order(view: dict[str, Any]) -> tuple[bool, bool, int, str]:
        rank = view["auto_rank"]
        return (view["name"] != DEFAULT_GROUP, rank is None, rank or 0, view["name"])

    return sorted(views, key=order)


async def update_group(gw: Gateway, name: str, fields: Any) -> dict[str, Any]:
    """Edit a group's multiplier, description or auto_rank (null: out of the
    auto list). A new multiplier applies from the next call, and the edit
    answers once every process has taken it in (it may raise prices)."""
    values = _checked(fields, partial=True)
    await get_group(gw, name)  # 404
    if values:
        async with gw.engine.begin() as conn:
            await conn.execute(update(groups).where(groups.c.name == name).values(values))
            await audit.record(conn, "group.update", f"group:{name}", values)
            await gw.state.changed(conn)
        await gw.state.reload()
        if values.keys() & {"multiplier", "auto_rank"}:
            await gw.state.until_seen()
    return await get_group(gw, name)


# What a token's prices are multiplied by.


async def account_groups(gw: Gateway, account_id: int) -> tuple[str, ...]:
    """The groups the account's tokens may use, as listed (none: ``default``)."""
    async with gw.engine.connect() as conn:
        found = await conn.execute(select(accounts.c.groups).where(accounts.c.id == account_id))
        listed = found.scalar()
    return tuple(listed or (DEFAULT_GROUP,))


async def token_info(gw: Gateway, token: dict[str, Any]) -> TokenInfo:
    """A token as the router reads its group (a token view in)."""
    return TokenInfo(
        id=token["id"],
        account_id=token["account_id"],
        name=token["name"],
        billing_mode=BillingMode(token["billing_mode"]),
        quota_nano=None,
        expires_at=None,
        models=None,
        enabled=token["enabled"],
        account_enabled=True,
        group=token["group"],
        account_groups=frozenset(await account_groups(gw, token["account_id"])),
    )


def call_group(
    gw: Gateway,
    token: TokenInfo,
    model: Model,
    method: BillingMethod | None,
    endpoint: MeteredEndpoint | None = None,
) -> Group:
    """The group a call of ``token`` to ``model`` by ``method`` is priced in,
    as the relay routes it: the token's own, or for ``auto`` the first of the
    auto list its account may use that has a channel for the call (else the
    first of them). A 403 ``group_not_allowed`` where the relay gives one."""
    walked = gw.router.groups_of(gw.state, token)
    endpoint = endpoint or serving(model.kind)
    if len(walked) > 1 and method is not None and endpoint is not None:
        try:
            return gw.router.route(gw.state, token, model, upstream_path(endpoint), (method,)).group
        except ApiError:  # no channel serves it now: the call would be refused
            pass
    if not walked:  # in the auto list, but not loaded here yet
        raise forbidden("No price group of this token's account is known yet.", "group_not_allowed")
    return walked[0]


def upstream_path(endpoint: MeteredEndpoint) -> str:
    """The provider endpoint a /v1 route forwards to, as channels name it:
    "POST /v1/chat/completions" -> "chat/completions" (a remix: "videos")."""
    return endpoint.route.split("/v1/", 1)[1].split("/{", 1)[0]
