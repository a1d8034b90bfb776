"""The advisor page: a token's recent calls replayed under every billing mode
(tollway.manage.advisor), what each would have cost or refused, and the mode
recommended for that use."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.billing.modes import MODE_INFO
from tollway.errors import ApiError
from tollway.manage.advisor import Outcome, Report, advise_token
from tollway.manage.models import modes_view
from tollway.manage.tokens import list_tokens, update_token
from tollway.types import BillingMode, nano_to_usd
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import account_of, field, flash, form_of, gateway, page


def routes() -> list[Route]:
    return [
        Route("/advisor", advisor_page, methods=["GET"]),
        Route("/advisor/{token_id:int}/apply", apply_mode, methods=["POST"]),
    ]


def _rows(
    outcomes: list[Outcome], billed_nano: int, applicable: dict[str, bool]
) -> list[dict[str, Any]]:
    return [
        {
            "mode": o.mode.value,
            "name": o.name,
            "applicable": applicable[o.mode.value],
            "recommended": MODE_INFO[o.mode].recommended,
            "cost_usd": nano_to_usd(o.cost_nano),
            "delta_usd": nano_to_usd(o.cost_nano - billed_nano),
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
        report = await advise_token(gw, me.id, token_id)
        context.update(_report_context(report, modes_view(gw)))
    return render(request, "advisor.html", context)


def _report_context(report: Report, modes: list[dict[str, Any]]) -> dict[str, Any]:
    applicable = {m["value"]: m["applicable"] for m in modes}
    return {
        "token": report.token,
        "calls": report.calls,
        "first": report.first_at,
        "profile": report.profile,
        "actual_usd": nano_to_usd(report.billed_nano),
        "rows": _rows(report.outcomes, report.billed_nano, applicable),
        "advice": report.advice,
    }


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
