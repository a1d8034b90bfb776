"""Models and prices: the catalog, searchable and filterable by kind; through
a billing mode (or one of the account's tokens), which models it can call,
billed how, at what price, and why the others are refused. Through a token,
the prices are the token's: the catalog's x its price group's multiplier
(``model_view`` with the group ``call_group`` finds, as /api/models?token_id)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.billing.modes import MODE_INFO, MODE_ORDER, Refusal, resolve_method
from tollway.errors import ApiError, bad_request
from tollway.gateway import Gateway
from tollway.manage.groups import AUTO_GROUP, call_group, get_group, token_info
from tollway.manage.models import (
    NOT_IN_ALLOWLIST,
    find_models,
    list_models,
    model_view,
    modes_view,
)
from tollway.manage.tokens import get_token, list_tokens
from tollway.types import BillingMethod, BillingMode, Model, ModelKind
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import account_of, gateway, page

PAGE_SIZE = 100


def routes() -> list[Route]:
    return [Route("/models", models_page, methods=["GET"])]


async def _mode(request: Request) -> tuple[BillingMode | None, dict[str, Any] | None]:
    """The mode to look through: a token's (its own, never another's) or a chosen one."""
    params = request.query_params
    token_id = forms.optional_id(params.get("token", ""), "Token", "token")
    if token_id is not None:
        token = await get_token(gateway(request), account_of(request).id, token_id)
        return BillingMode(token["billing_mode"]), token
    mode = params.get("mode", "")
    if not mode:
        return None, None
    if mode not in {m.value for m in MODE_ORDER}:
        raise bad_request("Choose a billing mode from the list.", "mode")
    return BillingMode(mode), None


def _with_why(view: dict[str, Any]) -> dict[str, Any]:
    """A refused model's short reason, for its row."""
    billing = view.get("billing")
    if billing is not None and billing["method"] is None:
        refused = billing["refused"]
        billing["why"] = refused if refused == NOT_IN_ALLOWLIST else _why(view)
    return view


def _why(view: dict[str, Any]) -> str:
    """'Sold per use only; callable with Pay-per-Use Priority, ...' (the full
    message, with the fix, is the API's)."""
    methods = " and ".join(m.replace("_", "-") for m in view["methods"])
    modes = ", ".join(MODE_INFO[BillingMode(m)].name for m in view["modes"])
    return f"Sold {methods} only; callable with {modes}."


async def token_views(
    gw: Gateway, token: dict[str, Any], query: str, kind: str
) -> tuple[list[dict[str, Any]], str | None]:
    """The models found as ``token`` sees them: billed through its mode (models
    outside its allowlist refused), each priced in the group a call to it would
    be billed in: the token's, or for ``auto`` the first of the auto list with
    a channel for it. When its group is refused (its account no longer has
    it), catalog prices and the refusal's message."""
    info = await token_info(gw, token)
    mode = info.billing_mode
    models = find_models(gw, query, kind)
    views = list_models(gw, query, kind, mode, token["models"])
    try:
        groups = [call_group(gw, info, m, _method(mode, m)) for m in models]
    except ApiError as exc:
        return views, exc.message
    allow_hybrid = gw.settings.allow_hybrid
    return [
        {**model_view(model, mode, allow_hybrid, group), "billing": view["billing"]}
        for model, group, view in zip(models, groups, views, strict=True)
    ], None


def _method(mode: BillingMode, model: Model) -> BillingMethod | None:
    """The method a call of ``mode`` to ``model`` is billed by (None: refused)."""
    decision = resolve_method(mode, model)
    return None if isinstance(decision, Refusal) else decision


async def price_groups(
    gw: Gateway, views: list[dict[str, Any]], token: dict[str, Any] | None
) -> list[tuple[str, str]]:
    """The (group, multiplier) pairs the views are priced in, in order of first
    use: one for a token of a group, possibly more for ``auto``; a token's own
    group when no model is shown."""
    pairs = list(dict.fromkeys((v["group"], v["multiplier"]) for v in views if "group" in v))
    if not pairs and token is not None and token["group"] != AUTO_GROUP:
        group = await get_group(gw, token["group"])
        pairs = [(group["name"], group["multiplier"])]
    return pairs


@page
async def models_page(request: Request) -> Response:
    gw = gateway(request)
    params = request.query_params
    query, kind, only = params.get("q", "").strip(), params.get("kind", ""), params.get("only", "")
    mode, token = await _mode(request)
    refused_group = None
    if token is not None:
        found, refused_group = await token_views(gw, token, query, kind)
    else:
        found = list_models(gw, query, kind, mode)
    views = [_with_why(v) for v in found]
    if mode is not None and only == "callable":
        views = [v for v in views if v["billing"]["method"]]
    elif mode is not None and only == "refused":
        views = [v for v in views if not v["billing"]["method"]]
    page_no = max(1, forms.whole_number(params.get("page", ""), "Page", "page", 1))
    shown = views[(page_no - 1) * PAGE_SIZE : page_no * PAGE_SIZE]
    context = {
        "models": shown,
        "total": len(views),
        "page_no": page_no,
        "pages": max(1, -(-len(views) // PAGE_SIZE)),
        "kinds": [k.value for k in ModelKind],
        "modes": modes_view(gw),
        "tokens": await list_tokens(gw, account_of(request).id),
        "filters": {
            "q": query,
            "kind": kind,
            "mode": mode.value if mode and not token else "",
            "token": str(token["id"]) if token else "",
            "only": only,
        },
        "mode": mode.value if mode else None,
        "token": token,
        "price_groups": await price_groups(gw, views, token),
        "refused_group": refused_group,
    }
    return render(request, "models.html", context)
