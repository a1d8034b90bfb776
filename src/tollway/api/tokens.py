"""/api/tokens: create (key shown once), list, read, edit, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.api.deps import (
    Caller,
    PathId,
    QueryId,
    gateway,
    json_body,
    optional_money_nano,
    optional_time,
    target_account,
)
from tollway.errors import bad_request
from tollway.manage import tokens as service
from tollway.manage.accounts import Account, account_view

router = APIRouter()
FIELDS = {
    "name",
    "billing_mode",
    "quota_usd",
    "expires_at",
    "models",
    "group",
    "enabled",
    "account_id",
    "rpm_limit",
    "tpm_limit",
    "max_concurrent",
    "budget_usd",
    "budget_period",
}


def _scope(caller: Account, account_id: int | None) -> int | None:
    """Admins reach any account's token by id; others only their own."""
    if caller.is_admin and account_id is None:
        return None
    return target_account(caller, account_id)


def _changes(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - FIELDS
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.")
    apart = {"quota_usd", "budget_usd", "expires_at", "account_id"}
    changes = {k: v for k, v in body.items() if k not in apart}
    if "quota_usd" in body:
        changes["quota_nano"] = optional_money_nano(body["quota_usd"], "quota_usd")
    if "budget_usd" in body:
        changes["budget_nano"] = optional_money_nano(body["budget_usd"], "budget_usd")
    if "expires_at" in body:
        changes["expires_at"] = optional_time(body["expires_at"], "expires_at")
    return changes


@router.post("/tokens", status_code=201)
async def create(
    request: Request,
    caller: Caller,
) -> dict[str, Any]:
    body = await json_body(request)
    changes = _changes(body)
    owner = target_account(caller, body.get("account_id"))
    if owner != caller.id:
        await account_view(gateway(request), owner)  # 404 for an account that does not exist
    if "name" not in changes:
        raise bad_request("A token needs a 'name'.", param="name")
    if "enabled" in changes:
        raise bad_request("A new token is enabled; disable it with PATCH.", param="enabled")
    return await service.create_token(
        gateway(request),
        owner,
        changes["name"],
        billing_mode=changes.get("billing_mode"),
        quota_nano=changes.get("quota_nano"),
        expires_at=changes.get("expires_at"),
        models=changes.get("models"),
        group=changes.get("group"),
        limits=changes,
    )


@router.get("/tokens")
async def list_all(request: Request, caller: Caller, account_id: QueryId = None) -> dict[str, Any]:
    owner = target_account(caller, account_id)
    return {"data": await service.list_tokens(gateway(request), owner)}


@router.get("/tokens/{token_id}")
async def read(
    request: Request, caller: Caller, token_id: PathId, account_id: QueryId = None
) -> dict[str, Any]:
    return await service.get_token(gateway(request), _scope(caller, account_id), token_id)


@router.patch("/tokens/{token_id}")
async def edit(
    request: Request, caller: Caller, token_id: PathId, account_id: QueryId = None
) -> dict[str, Any]:
    body = await json_body(request)
    body.pop("account_id", None)
    return await service.update_token(
        gateway(request), _scope(caller, account_id), token_id, _changes(body)
    )


@router.delete("/tokens/{token_id}", status_code=204)
async def remove(
    request: Request, caller: Caller, token_id: PathId, account_id: QueryId = None
) -> Response:
    await service.delete_token(gateway(request), _scope(caller, account_id), token_id)
    return Response(status_code=204)
