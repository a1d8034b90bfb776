"""Admin: the catalog's models and prices (channels: web/channels.py)."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError
from tollway.manage import models as model_service
from tollway.types import BillingMethod, ModelKind
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import admin_page, field, flash, form_of, gateway

PAGE_SIZE = 50
PRICE_FIELDS = model_service.PER_USE_FIELDS


def routes() -> list[Route]:
    return [
        Route("/admin/models", prices_page, methods=["GET"]),
        Route("/admin/models", create_model, methods=["POST"]),
        Route("/admin/models/{name:path}", model_page, methods=["GET"]),
        Route("/admin/models/{name:path}", save_model, methods=["POST"]),
    ]


@admin_page
async def prices_page(request: Request) -> Response:
    return await _prices(request, _blank_model())


async def _prices(
    request: Request, values: dict[str, str], status: int = 200, error: str | None = None
) -> Response:
    gw = gateway(request)
    params = request.query_params
    query, kind = params.get("q", "").strip(), params.get("kind", "")
    found = model_service.find_models(gw, query, kind)
    overridden = await model_service.overridden_ids(gw)
    context = {
        "models": [model_service.model_view(m) for m in found[:PAGE_SIZE]],
        "total": len(found),
        "overridden": overridden,
        "filters": {"q": query, "kind": kind},
        "kinds": [k.value for k in ModelKind],
        "form": values,
        "error": error,
    }
    return render(request, "admin_models.html", context, status=status)


def _blank_model() -> dict[str, str]:
    return {"id": "", "kind": "text", "provider": "custom", "input_mtok": "",
            "output_mtok": "", "price": ""}  # fmt: skip


def _prices_of(form: FormData) -> dict[str, Any]:
    """per_use / per_call blocks from the form; a blank block is no price."""
    per_use = {name: field(form, name) for name in PRICE_FIELDS if field(form, name)}
    price = field(form, "price")
    return {
        "per_use": per_use or None,
        "per_call": {"price": price} if price else None,
    }


@admin_page
async def create_model(request: Request) -> Response:
    form = form_of(request)
    values = {name: field(form, name) for name in _blank_model()}
    entry = {k: values[k] for k in ("id", "kind", "provider")} | _prices_of(form)
    if entry["per_use"] and entry["per_call"]:
        entry["default_method"] = BillingMethod.PER_USE.value
    entry = {k: v for k, v in entry.items() if v is not None}
    try:
        made = await model_service.create_model(gateway(request), entry)
    except ApiError as exc:
        return await _prices(request, values, 400, exc.message)
    flash(request, f"Added model {made['id']}; it is sold from the next call.")
    return RedirectResponse(f"/admin/models/{quote(made['id'])}", status_code=303)


def _model_context(view: dict[str, Any]) -> dict[str, Any]:
    return {
        "model": view,
        "kinds": [k.value for k in ModelKind],
        "price_fields": PRICE_FIELDS,
        "per_use": view["per_use"] or {},
        "per_call": (view["per_call"] or {}).get("price", ""),
    }


@admin_page
async def model_page(request: Request) -> Response:
    view = model_service.read_model(gateway(request), request.path_params["name"])
    return render(request, "admin_model.html", _model_context(view))


@admin_page
async def save_model(request: Request) -> Response:
    gw = gateway(request)
    name: str = request.path_params["name"]
    form = form_of(request)
    changes = {
        "kind": field(form, "kind"),
        "aliases": forms.model_names(field(form, "aliases")) or [],
        "description": field(form, "description"),
        "default_method": field(form, "default_method") or None,
        **_prices_of(form),
    }
    if not (changes["per_use"] and changes["per_call"]):
        changes["default_method"] = None  # one method: nothing to choose
    elif changes["default_method"] is None:
        changes["default_method"] = BillingMethod.PER_USE.value
    try:
        view = await model_service.update_model(gw, name, changes)
    except ApiError as exc:
        if exc.status == 404:
            raise
        context = _model_context(model_service.read_model(gw, name))
        return render(request, "admin_model.html", {**context, "error": exc.message}, status=400)
    flash(request, f"Saved {view['id']}; the new prices apply to the next call.")
    return RedirectResponse(f"/admin/models/{quote(view['id'])}", status_code=303)
