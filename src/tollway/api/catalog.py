"""/api/billing-modes, /api/models (read; admin create/edit) and /api/quote.

With a ``token_id``, models and quotes are seen as that token sees them: its
billing mode, and its price group's prices (``tollway.manage.groups``)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from tollway.api.deps import Admin, Caller, QueryId, QueryText, gateway, json_body
from tollway.billing.modes import Refusal, resolve_method
from tollway.endpoints import MeteredEndpoint, quoted_endpoint
from tollway.errors import ApiError, bad_request, model_not_found
from tollway.gateway import Gateway
from tollway.manage import models as service
from tollway.manage.accounts import Account
from tollway.manage.checks import row_id, whole_number
from tollway.manage.groups import call_group, token_info
from tollway.manage.models import modes_view
from tollway.manage.quote import quote, refused, usage_from_fields, usage_from_request
from tollway.manage.tokens import check_mode, get_token
from tollway.state import Group, TokenInfo
from tollway.types import USAGE_CLASSES, BillingMode, Model

router = APIRouter()
# The most a quote's counts (tokens of a class, items, seconds) may be.
MAX_QUOTE_COUNT = 10**12


@router.get("/billing-modes")
async def billing_modes(request: Request) -> dict[str, Any]:
    return {"data": modes_view(gateway(request))}


def parse_mode(value: Any) -> BillingMode:
    """A mode to look at models through; hybrid may be looked at even when off."""
    return check_mode(value, allow_hybrid=True)


async def _token_of(gw: Gateway, caller: Account, token_id: Any) -> TokenInfo | None:
    """The caller's token (any token for an admin) by id, as the router reads it."""
    if token_id is None:
        return None
    token_id = row_id(token_id, "token_id")
    return await token_info(
        gw, await get_token(gw, None if caller.is_admin else caller.id, token_id)
    )


def _mode_of(mode: Any, token: TokenInfo | None) -> BillingMode | None:
    """A token's mode (it wins over ``billing_mode``), else the one asked for."""
    if token is not None:
        return token.billing_mode
    return None if mode is None else parse_mode(mode)


def _group_of(
    gw: Gateway, token: TokenInfo, model: Model, endpoint: MeteredEndpoint | None = None
) -> Group:
    """The price group a call of ``token`` to ``model`` would be billed in
    (on ``endpoint``; by default the one serving the model's kind)."""
    decision = resolve_method(token.billing_mode, model)
    method = None if isinstance(decision, Refusal) else decision
    return call_group(gw, token, model, method, endpoint)


@router.get("/models")
async def list_models(
    request: Request,
    caller: Caller,
    billing_mode: QueryText = None,
    token_id: QueryId = None,
    kind: QueryText = None,
) -> dict[str, Any]:
    gw = gateway(request)
    token = await _token_of(gw, caller, token_id)
    mode = _mode_of(billing_mode, token)
    data = [
        service.model_view(
            m, mode, gw.settings.allow_hybrid, None if token is None else _group_of(gw, token, m)
        )
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
    token = await _token_of(gw, caller, body.get("token_id"))
    mode = _mode_of(body.get("billing_mode"), token)
    if mode is None:
        raise bad_request("A quote needs 'billing_mode' or 'token_id'.", param="billing_mode")
    if "request" in body:
        if not isinstance(body["request"], dict):
            raise bad_request("'request' must be the call's JSON body.", param="request")
        usage = usage_from_request(body["request"], model, gw.settings.hold_output_tokens)
    else:
        for name in (*USAGE_CLASSES, "n", "seconds"):
            if name in body:
                whole_number(body[name], name, 0, MAX_QUOTE_COUNT)
        usage = usage_from_fields(body)
    if token is None:
        return quote(model, mode, usage)
    try:
        endpoint = quoted_endpoint(model, body["request"]) if "request" in body else None
        group = _group_of(gw, token, model, endpoint)
    except ApiError as exc:  # the refusal the call would get
        base = {"model": model.id, "billing_mode": mode.value, "group": token.group}
        return refused({**base, "multiplier": None}, exc.code, exc.message)
    return quote(model, mode, usage, group)
