"""/api/webhooks: an account's alert webhooks (budget thresholds, low
balance); the signing secret is shown once, at creation. Admins reach any
account's with ?account_id= (or account_id in the body)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from tollway.alerts import webhooks as service
from tollway.api.deps import (
    Caller,
    PathId,
    QueryId,
    gateway,
    json_body,
    optional_money_nano,
    target_account,
)
from tollway.errors import bad_request

router = APIRouter()
FIELDS = {"url", "events", "thresholds", "low_balance_usd", "enabled", "account_id"}


def _fields(body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - FIELDS
    if unknown:
        raise bad_request(f"Unknown fields: {', '.join(sorted(unknown))}.")
    fields = {k: v for k, v in body.items() if k not in {"low_balance_usd", "account_id"}}
    if "low_balance_usd" in body:
        fields["low_balance_nano"] = optional_money_nano(body["low_balance_usd"], "low_balance_usd")
    return fields


@router.post("/webhooks", status_code=201)
async def create(request: Request, caller: Caller) -> dict[str, Any]:
    body = await json_body(request)
    fields = _fields(body)
    owner = target_account(caller, body.get("account_id"))
    if "enabled" in fields:
        raise bad_request("A new webhook is enabled; disable it with PATCH.", param="enabled")
    return await service.create_webhook(gateway(request), owner, fields)


@router.get("/webhooks")
async def list_all(request: Request, caller: Caller, account_id: QueryId = None) -> dict[str, Any]:
    owner = target_account(caller, account_id)
    return {"data": await service.list_webhooks(gateway(request), owner)}


@router.get("/webhooks/{webhook_id}")
async def read(
    request: Request, caller: Caller, webhook_id: PathId, account_id: QueryId = None
) -> dict[str, Any]:
    owner = target_account(caller, account_id)
    return await service.get_webhook(gateway(request), owner, webhook_id)


@router.get("/webhooks/{webhook_id}/events")
async def events(
    request: Request, caller: Caller, webhook_id: PathId, account_id: QueryId = None
) -> dict[str, Any]:
    owner = target_account(caller, account_id)
    return {"data": await service.list_events(gateway(request), owner, webhook_id)}


@router.patch("/webhooks/{webhook_id}")
async def edit(
    request: Request, caller: Caller, webhook_id: PathId, account_id: QueryId = None
) -> dict[str, Any]:
    owner = target_account(caller, account_id)
    changes = _fields(await json_body(request))
    return await service.update_webhook(gateway(request), owner, webhook_id, changes)


@router.delete("/webhooks/{webhook_id}", status_code=204)
async def remove(
    request: Request, caller: Caller, webhook_id: PathId, account_id: QueryId = None
) -> Response:
    owner = target_account(caller, account_id)
    await service.delete_webhook(gateway(request), owner, webhook_id)
    return Response(status_code=204)
