"""The token page: list, create with a
billing mode (Pay-per-Use Priority preselected), a price group (one of the
account's, or ``auto``), rate limits and a budget, key shown once, edit,
enable/disable, delete, and each token's own usage log."""

from __future__ import annotations

import json
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError
from tollway.gateway import Gateway
from tollway.manage import tokens as service
from tollway.manage.groups import AUTO_GROUP, DEFAULT_GROUP, account_groups, list_groups
from tollway.manage.models import modes_view
from tollway.manage.usage import list_usage
from tollway.timeutil import parse_iso, utcnow
from tollway.types import DEFAULT_BILLING_MODE
from tollway.web import forms
from tollway.web.render import NO_STORE, render
from tollway.web.session import account_of, field, flash, form_of, gateway, page

EXAMPLE_CHAT_MODELS = ("gpt-4o-mini", "gpt-4o", "claude-3-5-sonnet-20241022")
EXAMPLE_IMAGE_MODELS = ("flux-1.1-pro", "gemini-3-pro-image-preview")


def routes() -> list[Route]:
    return [
        Route("/tokens", tokens_page, methods=["GET"]),
        Route("/tokens", create_token, methods=["POST"]),
        Route("/tokens/{token_id:int}", edit_page, methods=["GET"]),
        Route("/tokens/{token_id:int}", save_token, methods=["POST"]),
        Route("/tokens/{token_id:int}/enabled", set_enabled, methods=["POST"]),
        Route("/tokens/{token_id:int}/delete", delete_token, methods=["POST"]),
    ]


def status_of(token: dict[str, Any]) -> str:
    if not token["enabled"]:
        return "disabled"
    if token["expires_at"] and parse_iso(token["expires_at"]) <= utcnow():
        return "expired"
    remaining = token["remaining_usd"]
    if remaining is not None and remaining == "0":
        return "quota used up"
    return "active"


def blank_form() -> dict[str, str]:
    return {
        "name": "",
        "billing_mode": DEFAULT_BILLING_MODE.value,
        "quota_usd": "",
        "expires_at": "",
        "models": "",
        "group": "",
        **{name: "" for name in forms.LIMIT_FORM_FIELDS},
        "budget_period": "month",
    }


def form_values(form: FormData) -> dict[str, str]:
    return {name: field(form, name) for name in blank_form()}


def token_form(token: dict[str, Any]) -> dict[str, str]:
    expires = parse_iso(token["expires_at"]) if token["expires_at"] else None
    return {
        "name": token["name"],
        "billing_mode": token["billing_mode"],
        "quota_usd": token["quota_usd"] or "",
        "expires_at": forms.date_input(expires),
        "models": ", ".join(token["models"] or []),
        "group": token["group"],
        **forms.limits_form(token),
    }


def parsed(values: dict[str, str]) -> dict[str, Any]:
    """The service's fields from the form's strings."""
    return {
        "name": values["name"],
        "billing_mode": values["billing_mode"] or DEFAULT_BILLING_MODE.value,
        "quota_nano": forms.optional_money_nano(values["quota_usd"], "Quota", "quota_usd"),
        "expires_at": forms.optional_time(values["expires_at"], "Expires", "expires_at"),
        "models": forms.model_names(values["models"]),
        "group": values["group"] or None,  # None: the service's default for the account
    }


async def group_choices(
    gw: Gateway, account_id: int, current: str | None = None
) -> list[dict[str, str]]:
    """What a token's group select offers: the account's groups with their
    multipliers; ``auto`` when one of them is in the auto list (the service
    refuses it otherwise); and ``current``, a group the account no longer
    has, which the token keeps until it is moved (its calls are refused)."""
    allowed = await account_groups(gw, account_id)
    known = {g["name"]: g for g in await list_groups(gw)}
    choices = [
        {"name": n, "kind": "group", "label": f"{n} — prices × {known[n]['multiplier']}"}
        if n in known
        else {"name": n, "kind": "group", "label": n}
        for n in allowed
    ]
    if any(known[n]["auto_rank"] is not None for n in allowed if n in known):
        label = f"{AUTO_GROUP} — the first group of the auto list with a channel for the call"
        choices.append({"name": AUTO_GROUP, "kind": "auto", "label": label})
    if current and current not in {c["name"] for c in choices}:
        label = f"{current} — not one of this account's groups: its calls are refused"
        choices.append({"name": current, "kind": "stale", "label": label})
    return choices


def with_group(values: dict[str, str], choices: list[dict[str, str]]) -> dict[str, str]:
    """A blank group preselects the service's default: ``default`` when the
    account has it, else its first group."""
    if values["group"] or not choices:
        return values
    names = [c["name"] for c in choices]
    return {**values, "group": DEFAULT_GROUP if DEFAULT_GROUP in names else names[0]}


async def _list_context(request: Request, values: dict[str, str]) -> dict[str, Any]:
    gw = gateway(request)
    me = account_of(request)
    tokens = await service.list_tokens(gw, me.id)
    for token in tokens:
        token["status"] = status_of(token)
    groups = await group_choices(gw, me.id)
    form = with_group(values, groups)
    return {"tokens": tokens, "modes": modes_view(gw), "groups": groups, "form": form}


@page
async def tokens_page(request: Request) -> Response:
    return render(request, "tokens.html", await _list_context(request, blank_form()))


@page
async def create_token(request: Request) -> Response:
    gw = gateway(request)
    values = form_values(form_of(request))
    try:
        fields = parsed(values)
        limits = forms.limits(values)
        token = await service.create_token(gw, account_of(request).id, **fields, limits=limits)
    except ApiError as exc:
        context = await _list_context(request, values)
        return render(request, "tokens.html", {**context, "error": exc.message}, status=400)
    context = {"token": token, "example": example(gw, str(request.base_url), token)}
    return render(request, "token_created.html", context, headers=NO_STORE)


async def _edit_context(request: Request, token_id: int) -> dict[str, Any]:
    gw = gateway(request)
    me = account_of(request)
    token = await service.get_token(gw, me.id, token_id)
    token["status"] = status_of(token)
    usage = await list_usage(gw, me.id, token_id=token_id, limit=25)
    groups = await group_choices(gw, me.id, token["group"])
    return {"token": token, "modes": modes_view(gw), "groups": groups, "usage": usage["data"]}


@page
async def edit_page(request: Request) -> Response:
    context = await _edit_context(request, request.path_params["token_id"])
    return render(request, "token_edit.html", {**context, "form": token_form(context["token"])})


@page
async def save_token(request: Request) -> Response:
    token_id: int = request.path_params["token_id"]
    gw = gateway(request)
    me = account_of(request)
    token = await service.get_token(gw, me.id, token_id)
    values = form_values(form_of(request))
    try:
        fields = parsed(values)
        if fields["group"] in (None, token["group"]):  # unchanged: kept even if no longer allowed
            del fields["group"]
        fields.update(forms.unchanged_budget_dropped(forms.limits(values), token))
        await service.update_token(gw, me.id, token_id, fields)
    except ApiError as exc:
        context = await _edit_context(request, token_id)
        context.update(form=values, error=exc.message)
        return render(request, "token_edit.html", context, status=400)
    flash(request, f"Saved token “{values['name']}”.")
    return RedirectResponse("/tokens", status_code=303)


@page
async def set_enabled(request: Request) -> Response:
    token_id: int = request.path_params["token_id"]
    enabled = field(form_of(request), "enabled") == "1"
    token = await service.update_token(
        gateway(request), account_of(request).id, token_id, {"enabled": enabled}
    )
    flash(request, f"Token “{token['name']}” is {'enabled' if enabled else 'disabled'}.")
    return RedirectResponse("/tokens", status_code=303)


@page
async def delete_token(request: Request) -> Response:
    token_id: int = request.path_params["token_id"]
    gw = gateway(request)
    token = await service.get_token(gw, account_of(request).id, token_id)
    await service.delete_token(gw, account_of(request).id, token_id)
    flash(request, f"Deleted token “{token['name']}”. Its key stopped working.")
    return RedirectResponse("/tokens", status_code=303)


def example(gw: Gateway, base_url: str, token: dict[str, Any]) -> dict[str, str]:
    """A ready request for the new key: a chat call, or an image for per-call tokens."""
    api = base_url.rstrip("/") + "/v1"
    chat = service.first_callable(gw, token, EXAMPLE_CHAT_MODELS)
    if chat is not None and chat.kind.value in ("text", "multimodal"):
        body = {"model": chat.id, "messages": [{"role": "user", "content": "Hello!"}]}
        path = "/chat/completions"
        python = (
            "from openai import OpenAI\n\n"
            f'client = OpenAI(base_url="{api}", api_key="{token["key"]}")\n'
            f'reply = client.chat.completions.create(model="{chat.id}", '
            'messages=[{"role": "user", "content": "Hello!"}])\n'
            "print(reply.choices[0].message.content)"
        )
    else:
        image = service.first_callable(gw, token, EXAMPLE_IMAGE_MODELS)
        body = {"model": image.id if image else "flux-1.1-pro", "prompt": "a lighthouse at dusk"}
        path = "/images/generations"
        python = ""
    curl = (
        f"curl {api}{path} \\\n"
        f'  -H "Authorization: Bearer {token["key"]}" \\\n'
        '  -H "Content-Type: application/json" \\\n'
        f"  -d '{json.dumps(body)}'"
    )
    return {"curl": curl, "python": python}
