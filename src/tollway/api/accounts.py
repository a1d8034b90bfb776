"""/api/me and the admin's /api/users (create, list, credit/debit, edit: enabled,
password, price groups, rate limits, budget)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollway.api.deps import (
    Admin,
    Caller,
    PathId,
    gateway,
    json_body,
    money_nano,
    optional_money_nano,
)
from tollway.errors import bad_request
from tollway.manage import accounts as service
from tollway.manage import checks
from tollway.manage.groups import check_member_groups

router = APIRouter()
MIN_PASSWORD_CHARS = 8
MAX_PASSWORD_CHARS = 1000


@router.get("/me")
async def me(
    request: Request,
    caller: Caller,
) -> dict[str, Any]:
    gw = gateway(request)
    view = await service.account_view(gw, caller.id)
    view["recent_credits"] = await service.credits_of(gw, caller.id, limit=10)
    return view


@router.post("/users", status_code=201)
async def create_user(request: Request, _: Admin) -> dict[str, Any]:
    body = await json_body(request)
    username, password, role = body.get("username"), body.get("password"), body.get("role", "user")
    if not isinstance(username, str):
        raise bad_request("A user needs a 'username'.", param="username")
    sizes = range(MIN_PASSWORD_CHARS, MAX_PASSWORD_CHARS + 1)
    if password is not None and (not isinstance(password, str) or len(password) not in sizes):
        raise bad_request(
            f"'password' needs {MIN_PASSWORD_CHARS} to {MAX_PASSWORD_CHARS} characters.",
            param="password",
        )
    if not isinstance(role, str):
        raise bad_request("'role' must be 'admin' or 'user'.", param="role")
    view, key = await service.create_account(gateway(request), username, password, role)
    return {**view, "management_key": key}


@router.get("/users")
async def list_users(request: Request, _: Admin) -> dict[str, Any]:
    return {"data": await service.list_accounts(gateway(request))}


@router.get("/users/{account_id}")
async def read_user(request: Request, account_id: PathId, _: Admin) -> dict[str, Any]:
    return await service.account_view(gateway(request), account_id)


@router.patch("/users/{account_id}")
async def edit_user(request: Request, account_id: PathId, _: Admin) -> dict[str, Any]:
    """Any of enabled, password, groups, rpm_limit, tpm_limit, max_concurrent,
    budget_usd, budget_period: all checked before any is applied."""
    gw = gateway(request)
    body = await json_body(request)
    unknown = set(body) - {"enabled", "password", "groups", "budget_usd", "budget_period"}
    unknown -= set(checks.LIMIT_FIELDS)
    if unknown:
        raise bad_request(f"Cannot change: {', '.join(sorted(unknown))}.")
    if "password" in body:
        password = body["password"]
        if not isinstance(password, str) or len(password) > MAX_PASSWORD_CHARS:
            raise bad_request(
                f"'password' must be a string of at most {MAX_PASSWORD_CHARS} characters.",
                param="password",
            )
    if "enabled" in body and not isinstance(body["enabled"], bool):
        raise bad_request("'enabled' must be true or false.", param="enabled")
    if "groups" in body:
        check_member_groups(gw, body["groups"])
    limits = _limits(body)
    if "password" in body:
        await service.set_password(gw, account_id, body["password"])
    if "groups" in body:
        await service.set_groups(gw, account_id, body["groups"])
    if limits:
        await service.set_limits(gw, account_id, limits)
    if "enabled" in body:
        return await service.set_enabled(gw, account_id, body["enabled"])
    return await service.account_view(gw, account_id)


def _limits(body: dict[str, Any]) -> dict[str, Any]:
    """The rate limits and budget among ``body``, checked (applied together)."""
    changes: dict[str, Any] = checks.limits(body)
    if "budget_usd" in body:
        changes["budget_nano"] = optional_money_nano(body["budget_usd"], "budget_usd")
    if "budget_period" in body:
        changes["budget_period"] = body["budget_period"]
    checks.budget(changes, "month")  # its values, before anything is applied
    return changes


@router.post("/users/{account_id}/credit")
async def credit(request: Request, account_id: PathId, _: Admin) -> dict[str, Any]:
    body = await json_body(request)
    amount = money_nano(body.get("amount_usd"), "amount_usd")
    reason = body.get("reason")
    if not isinstance(reason, str):
        raise bad_request("A credit or debit needs a 'reason'.", param="reason")
    return await service.credit(gateway(request), account_id, amount, reason)
