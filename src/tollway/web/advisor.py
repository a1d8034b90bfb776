"""The advisor page: a token's recent calls replayed under every billing mode,
what each would have cost or refused, and the guide's recommendation."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.billing.modes import MODE_INFO
from tollway.errors import ApiError
from tollway.manage.tokens import get_token, list_tokens, update_token
from tollway.manage.usage import MAX_PAGE, cost_nano, list_usage
from tollway.types import BillingMode, nano_to_usd
from tollway.web import forms
from tollway.web.render import render
from tollway.web.replay import advise, billed, profile, replay
from tollway.web.session import account_of, field, flash, form_of, gateway, page

MAX_CALLS = 5 * MAX_PAGE


def routes() -> list[Route]:
    return [
        Route("/advisor", advisor_page, methods=["GET"]),
        Route("/advisor/{token_id:int}/apply", apply_mode, methods=["POST"]),
    ]


async def _recent(request: Request, token_id: int) -> list[dict[str, Any]]:
    gw, me = gateway(request), account_of(request)
    records: list[dict[str, Any]] = []
    cursor: int | None = None
    while len(records) < MAX_CALLS:
        page_ = await list_usage(gw, me.id, token_id=token_id, limit=MAX_PAGE, cursor=cursor)
        records.extend(page_["data"])
        if not page_["next_cursor"]:
            break
        cursor = int(page_["next_cursor"])
    return billed(records)


def _rows(outcomes: list[Any], actual_nano: int, allow_hybrid: bool) -> list[dict[str, Any]]:
    return [
        {
            "mode": o.mode.value,
            "name": o.name,
            "applicable": MODE_INFO[o.mode].applicable or allow_hybrid,
            "recommended": MODE_INFO[o.mode].recommended,
            "cost_usd": nano_to_usd(o.cost_nano),
            "delta_usd": nano_to_usd(o.cost_nano - actual_nano),
            "per_use_calls": o.per_use_calls,
            "per_call_calls": o.per_call_calls,
            "refused_calls": o.refused_calls,
            "refused_models": o.refused_models.most_common(5),
        }
        for o in outcomes
    ]


@page
async def advisor_page(request: Request) -> Response:
    gw, me = gateway(request), account_of(request)
    tokens = await list_tokens(gw, me.id)
    chosen = request.query_params.get("token", "")
    context: dict[str, Any] = {"tokens": tokens, "token": None}
    if not chosen and tokens:
        chosen = str(tokens[0]["id"])
    token_id = forms.optional_id(chosen, "Token", "token")
    if token_id is not None:
        token = await get_token(gw, me.id, token_id)
        records = await _recent(request, token["id"])
        lookup = gw.state.catalog.get
        outcomes = replay(records, lookup)
        shape = profile(records, lookup)
        actual = sum(cost_nano(r) for r in records)
        context.update(
            token=token,
            calls=len(records),
            first=records[-1]["created_at"] if records else None,
            profile=shape,
            actual_usd=nano_to_usd(actual),
            rows=_rows(outcomes, actual, gw.settings.allow_hybrid),
            advice=advise(shape, outcomes),
        )
    return render(request, "advisor.html", context)


@page
async def apply_mode(request: Request) -> Response:
    token_id: int = request.path_params["token_id"]
    value = field(form_of(request), "billing_mode")
    try:
        token = await update_token(
            gateway(request), account_of(request).id, token_id, {"billing_mode": value}
        )
    except ApiError as exc:
        if exc.status == 404:
            raise
        flash(request, exc.message, "error")
    else:
        name = MODE_INFO[BillingMode(token["billing_mode"])].name
        flash(request, f"“{token['name']}” now uses {name}; its next call is billed by it.")
    return RedirectResponse(f"/advisor?token={token_id}", status_code=303)
