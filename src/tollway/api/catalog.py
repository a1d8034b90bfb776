"""/api/billing-modes, /api/models (read; admin create/edit) and /api/quote."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollway.api.deps import Admin, Caller, QueryId, QueryText, gateway, json_body
from tollway.errors import bad_request, model_not_found
from tollway.gateway import Gateway
from tollway.manage import models as service
from tollway.manage.accounts import Account
from tollway.manage.checks import row_id, whole_number
from tollway.manage.models import modes_view
from tollway.manage.quote import quote, usage_from_fields, usage_from_request
from tollway.manage.tokens import check_mode, get_token
from tollway.types import TOKEN_CLASSES, BillingMode

router = APIRouter()
# The most a quote's counts (tokens of a class, items, seconds) may be.
MAX_QUOTE_COUNT = 10**12


@router.get("/billing-modes")
async def billing_modes(request: Request) -> dict[str, Any]:
    return {"data": modes_view(gateway(request))}


def parse_mode(value: Any) -> BillingMode:
    """A mode to look at models through; hybrid may be looked at even when off."""
    return check_mode(value, allow_hybrid=True)


async def _mode_of(gw: Gateway, caller: Account, mode: Any, token_id: Any) -> BillingMode | None:
    if token_id is not None:
        token_id = row_id(token_id, "token_id")
        token = await get_token(gw, None if caller.is_admin else caller.id, token_id)
        return BillingMode(token["billing_mode"])
    return None if mode is None else parse_mode(mode)


@router.get("/models")
async def list_models(
    request: Request,
    caller: Caller,
    billing_mode: QueryText = None,
    token_id: QueryId = None,
    kind: QueryText = None,
) -> dict[str, Any]:
    gw = gateway(request)
    mode = await _mode_of(gw, caller, billing_mode, token_id)
    data = [
        service.model_view(m, mode, gw.settings.allow_hybrid)
        for m in gw.state.catalog.models
        if kind is None or m.kind.value == kind
    ]
    return {"data": data}


@router.get("/models/{name:path}")
async def read_model(
    request: Request, caller: Caller, name: str, billing_mode: QueryText = None
) -> dict[str, Any]:
    gw = gateway(request)
    model = gw.state.catalog.get(name)
    if model is None:
        raise model_not_found(name)
    mode = None if billing_mode is None else parse_mode(billing_mode)
    return service.model_view(model, mode, gw.settings.allow_hybrid)


@router.post("/models", status_code=201)
async def create_model(request: Request, caller: Caller, _: Admin) -> dict[str, Any]:
    return await service.create_model(gateway(request), await json_body(request))


@router.patch("/models/{name:path}")
async def edit_model(request: Request, name: str, _: Admin) -> dict[str, Any]:
    return await service.update_model(gateway(request), name, await json_body(request))


@router.post("/quote")
async def make_quote(request: Request, caller: Caller) -> dict[str, Any]:
    gw = gateway(request)
    body = await json_body(request)
    name = body.get("model")
    if not isinstance(name, str):
        raise bad_request("A quote needs a 'model'.", param="model")
    model = gw.state.catalog.get(name)
    if model is None:
        raise model_not_found(name)
    mode = await _mode_of(gw, caller, body.get("billing_mode"), body.get("token_id"))
    if mode is None:
        raise bad_request("A quote needs 'billing_mode' or 'token_id'.", param="billing_mode")
    if "request" in body:
        if not isinstance(body["request"], dict):
            raise bad_request("'request' must be the call's JSON body.", param="request")
        usage = usage_from_request(body["request"], model, gw.settings.hold_output_tokens)
    else:
        for name in (*TOKEN_CLASSES, "n", "seconds"):
            if name in body:
                whole_number(body[name], name, 0, MAX_QUOTE_COUNT)
        usage = usage_from_fields(body)
    return quote(model, mode, usage)
