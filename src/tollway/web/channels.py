"""Admin: upstream channels (docs/routing.md). The list with each channel's
status, keys (as hints), last error and health; add and edit forms with
every field of /api/channels; enable, disable, test and delete.

Keys are never rendered back: the edit form's key box starts empty, and
leaving it so keeps the current keys.
"""

from __future__ import annotations

from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.errors import ApiError, bad_request
from tollway.gateway import Gateway
from tollway.manage import channels as service
from tollway.manage.channel_test import test_channel
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import admin_page, field, flash, form_of, gateway

LIST = "/admin/channels"
TEXT_FIELDS = ("name", "type", "base_url", "api_keys", "key_strategy", "models",
               "model_mapping", "priority", "weight", "cost_multiplier")  # fmt: skip


def routes() -> list[Route]:
    return [
        Route(LIST, channels_page, methods=["GET"]),
        Route(LIST, create_channel, methods=["POST"]),
        Route(LIST + "/{channel_id:int}", edit_page, methods=["GET"]),
        Route(LIST + "/{channel_id:int}", save_channel, methods=["POST"]),
        Route(LIST + "/{channel_id:int}/enabled", set_enabled, methods=["POST"]),
        Route(LIST + "/{channel_id:int}/test", run_test, methods=["POST"]),
        Route(LIST + "/{channel_id:int}/delete", delete_channel, methods=["POST"]),
    ]


def blank_form() -> dict[str, Any]:
    return {
        "name": "", "type": "openai", "base_url": "", "api_keys": "",
        "key_strategy": "round_robin", "models": "*", "model_mapping": "", "priority": "0",
        "weight": "1", "groups": [service.DEFAULT_GROUP], "methods": list(service.METHODS),
        "cost_multiplier": "",
    }  # fmt: skip


def form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = {name: field(form, name) for name in TEXT_FIELDS}
    for name in ("groups", "methods"):
        values[name] = [v.strip() for v in form.getlist(name) if isinstance(v, str) and v.strip()]
    return values


def channel_form(channel: dict[str, Any]) -> dict[str, Any]:
    """An edit form's starting values: the channel's, its keys left out."""
    cost = channel["cost"] or {}
    return {
        **{name: str(channel[name]) for name in ("name", "type", "base_url", "key_strategy")},
        "api_keys": "",
        "models": ", ".join(channel["models"]),
        "model_mapping": "\n".join(f"{k}={v}" for k, v in channel["model_mapping"].items()),
        "priority": str(channel["priority"]),
        "weight": str(channel["weight"]),
        "groups": list(channel["groups"]),
        "methods": list(channel["methods"]),
        "cost_multiplier": cost.get("multiplier", ""),
    }


def parsed(values: dict[str, Any], current: dict[str, Any] | None = None) -> dict[str, Any]:
    """The service's fields from the form; ``current``: the channel being edited
    (whose keys stay when the key box is empty, and whose per-model cost prices,
    set through the API, stay when the multiplier is blank)."""
    fields: dict[str, Any] = {name: values[name] for name in ("name", "type", "base_url")}
    fields["key_strategy"] = values["key_strategy"]
    keys = [line.strip() for line in values["api_keys"].splitlines() if line.strip()]
    if keys or current is None:
        fields["api_keys"] = keys
    fields["models"] = forms.model_names(values["models"]) or []
    fields["model_mapping"] = model_mapping(values["model_mapping"])
    fields["priority"] = forms.whole_number(values["priority"], "Priority", "priority", 0)
    fields["weight"] = forms.whole_number(values["weight"], "Weight", "weight", 1)
    fields["groups"] = values["groups"]
    fields["methods"] = values["methods"]
    multiplier = values["cost_multiplier"]
    if multiplier:
        fields["cost"] = {"multiplier": multiplier}
    elif current is not None and not (current["cost"] or {}).get("prices"):
        fields["cost"] = None
    return fields


def model_mapping(text: str) -> dict[str, str]:
    """Lines of ``catalog-id=upstream-name``; blank lines are skipped."""
    mapping: dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        model, sep, upstream = line.partition("=")
        if not sep or not model.strip() or not upstream.strip():
            raise bad_request(
                f"Model mapping: write each line as catalog-id=upstream-name, not {line[:80]!r}.",
                "model_mapping",
            )
        mapping[model.strip()] = upstream.strip()
    return mapping


def choices(gw: Gateway, values: dict[str, Any]) -> dict[str, Any]:
    """What the form's selects and checkboxes offer."""
    known = service.group_names(gw)
    return {
        "types": service.channel_types(),
        "strategies": service.KEY_STRATEGIES,
        "methods": service.METHODS,
        "groups": known + [g for g in values["groups"] if g not in known],
    }


async def _list(
    request: Request, values: dict[str, Any], status: int = 200, error: str | None = None
) -> Response:
    gw = gateway(request)
    context = {
        "channels": await service.list_channels(gw),
        "form": values,
        "choices": choices(gw, values),
        "error": error,
    }
    return render(request, "admin_channels.html", context, status=status)


async def _edit(
    request: Request, channel: dict[str, Any], values: dict[str, Any], **extra: Any
) -> Response:
    context = {"channel": channel, "form": values, "choices": choices(gateway(request), values)}
    status = 400 if extra.get("error") else 200
    return render(request, "admin_channel.html", {**context, **extra}, status=status)


@admin_page
async def channels_page(request: Request) -> Response:
    return await _list(request, blank_form())


@admin_page
async def create_channel(request: Request) -> Response:
    values = form_values(form_of(request))
    try:
        made = await service.create_channel(gateway(request), parsed(values))
    except ApiError as exc:
        return await _list(request, {**values, "api_keys": ""}, 400, exc.message)
    flash(request, f"Added channel “{made['name']}”; it serves the next call.")
    return RedirectResponse(LIST, status_code=303)


@admin_page
async def edit_page(request: Request) -> Response:
    channel = await service.get_channel(gateway(request), request.path_params["channel_id"])
    return await _edit(request, channel, channel_form(channel))


@admin_page
async def save_channel(request: Request) -> Response:
    gw = gateway(request)
    channel = await service.get_channel(gw, request.path_params["channel_id"])
    values = form_values(form_of(request))
    try:
        saved = await service.update_channel(gw, channel["id"], parsed(values, channel))
    except ApiError as exc:
        return await _edit(request, channel, {**values, "api_keys": ""}, error=exc.message)
    flash(request, f"Saved channel “{saved['name']}”; the next call sees the change.")
    return RedirectResponse(LIST, status_code=303)


@admin_page
async def set_enabled(request: Request) -> Response:
    enabled = field(form_of(request), "enabled") == "1"
    view = await service.update_channel(
        gateway(request), request.path_params["channel_id"], {"enabled": enabled}
    )
    flash(request, f"Channel “{view['name']}” is {'enabled' if enabled else 'disabled'}.")
    return RedirectResponse(_back(request, view["id"]), status_code=303)


@admin_page
async def run_test(request: Request) -> Response:
    gw = gateway(request)
    channel = await service.get_channel(gw, request.path_params["channel_id"])
    model = field(form_of(request), "model")
    try:
        result = await test_channel(gw, channel["id"], {"model": model} if model else {})
    except ApiError as exc:
        flash(request, f"Could not test “{channel['name']}”: {exc.message}", "error")
    else:
        flash(request, tested_message(channel["name"], result), "ok" if result["ok"] else "error")
    return RedirectResponse(_back(request, channel["id"]), status_code=303)


def tested_message(name: str, result: dict[str, Any]) -> str:
    """One line for a test's ``{ok, status_code, latency_ms, model, error?}``."""
    status = result["status_code"]
    answer = f"HTTP {status}" if status is not None else "no answer"
    verdict = "ok" if result["ok"] else "failed"
    line = f"Test of “{name}” {verdict}: {answer} in {result['latency_ms']} ms ({result['model']})"
    if result.get("error"):
        line += f": {result['error']}"
    if result.get("enabled_again"):
        line += ". The channel and its keys are enabled again"
    return line + "."


@admin_page
async def delete_channel(request: Request) -> Response:
    gw = gateway(request)
    view = await service.get_channel(gw, request.path_params["channel_id"])
    await service.delete_channel(gw, view["id"])
    flash(request, f"Deleted channel “{view['name']}”.")
    return RedirectResponse(LIST, status_code=303)


def _back(request: Request, channel_id: int) -> str:
    """Where a button on the list or the edit page returns to (never elsewhere)."""
    on_edit = field(form_of(request), "back") == "edit"
    return f"{LIST}/{channel_id}" if on_edit else LIST
