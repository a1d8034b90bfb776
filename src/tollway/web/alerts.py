"""Alerts: the signed-in account's webhooks (docs/alerts.md). The list with
each webhook's events, thresholds, low-balance mark and how its recent events
went; an add form (the signing secret shown once, as a token's key is);
enable/disable and delete; a page per webhook with its recent events.
Through tollway.alerts.webhooks, as /api/webhooks."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Route

from tollway.alerts import webhooks as service
from tollway.errors import ApiError
from tollway.web import forms
from tollway.web.render import NO_STORE, render, usd
from tollway.web.session import account_of, field, flash, form_of, gateway, page

LIST = "/alerts"
STATUSES = ("delivered", "pending", "failed")
# How many of a webhook's newest events the list counts and its page shows:
# thresholds fire once per period and the low balance once a day, so this
# covers months of a webhook's life.
RECENT_EVENTS = 200
_SPLIT = re.compile(r"[\s,]+")


def routes() -> list[Route]:
    return [
        Route(LIST, alerts_page, methods=["GET"]),
        Route(LIST, create_alert, methods=["POST"]),
        Route(LIST + "/{webhook_id:int}", alert_page, methods=["GET"]),
        Route(LIST + "/{webhook_id:int}/enabled", set_enabled, methods=["POST"]),
        Route(LIST + "/{webhook_id:int}/delete", delete_alert, methods=["POST"]),
    ]


def blank_form() -> dict[str, Any]:
    return {
        "url": "",
        "events": list(service.EVENTS),
        "thresholds": ", ".join(str(t) for t in service.DEFAULT_THRESHOLDS),
        "low_balance_usd": "",
    }


def form_values(form: FormData) -> dict[str, Any]:
    events = [e.strip() for e in form.getlist("events") if isinstance(e, str) and e.strip()]
    return {
        "url": field(form, "url"),
        "events": events,
        "thresholds": field(form, "thresholds"),
        "low_balance_usd": field(form, "low_balance_usd"),
    }


def thresholds(text: str) -> list[int] | None:
    """Percentages as typed ("50, 80, 100", "50 80", "90%"); blank: the
    service's default. The service checks their range and number."""
    parts = [p.removesuffix("%").strip() for p in _SPLIT.split(text.strip()) if p]
    return [forms.whole_number(p, "Thresholds", "thresholds", 0) for p in parts if p] or None


def parsed(values: dict[str, Any]) -> dict[str, Any]:
    """The service's fields from the form's strings."""
    fields: dict[str, Any] = {"url": values["url"], "events": values["events"]}
    found = thresholds(values["thresholds"])
    if found is not None:
        fields["thresholds"] = found
    low = values["low_balance_usd"]
    fields["low_balance_nano"] = forms.optional_money_nano(low, "Low balance", "low_balance_usd")
    return fields


def status_counts(events: list[dict[str, Any]]) -> dict[str, int]:
    """How many events are delivered, pending and failed (each named, even at 0)."""
    counted = Counter(e["status"] for e in events)
    return {status: counted[status] for status in STATUSES}


def payload_summary(event: dict[str, Any]) -> str:
    """An event's payload in a line: what passed, for which budget or balance."""
    p = event["payload"] if isinstance(event["payload"], dict) else {}
    if event["event"] == "budget.threshold" and "threshold_percent" in p:
        whose = "the account" if p.get("token_id") is None else f"token #{p['token_id']}"
        return (
            f"{p['threshold_percent']} % of {whose}'s {p.get('period', '')} budget of "
            f"{usd(p.get('budget_usd'))}: {usd(p.get('used_usd'))} used"
        )
    if event["event"] == "balance.low" and "balance_usd" in p:
        return f"balance {usd(p['balance_usd'])}, below {usd(p.get('low_balance_usd'))}"
    return compact_json(p)


def compact_json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


async def _list(
    request: Request, values: dict[str, Any], status: int = 200, error: str | None = None
) -> Response:
    gw = gateway(request)
    me = account_of(request).id
    hooks = await service.list_webhooks(gw, me)
    for hook in hooks:
        events = await service.list_events(gw, me, hook["id"], RECENT_EVENTS)
        hook["counts"] = status_counts(events)
    context = {
        "webhooks": hooks,
        "form": values,
        "event_names": service.EVENTS,
        "recent": RECENT_EVENTS,
        "error": error,
    }
    return render(request, "alerts.html", context, status=status)


@page
async def alerts_page(request: Request) -> Response:
    return await _list(request, blank_form())


@page
async def create_alert(request: Request) -> Response:
    values = form_values(form_of(request))
    try:
        fields = parsed(values)
        made = await service.create_webhook(gateway(request), account_of(request).id, fields)
    except ApiError as exc:
        return await _list(request, values, 400, exc.message)
    return render(request, "alert_created.html", {"webhook": made}, headers=NO_STORE)


@page
async def alert_page(request: Request) -> Response:
    gw = gateway(request)
    me = account_of(request).id
    webhook_id: int = request.path_params["webhook_id"]
    hook = await service.get_webhook(gw, me, webhook_id)
    events = await service.list_events(gw, me, webhook_id, RECENT_EVENTS)
    for event in events:
        event["summary"] = payload_summary(event)
        event["payload_json"] = compact_json(event["payload"])
    context = {
        "webhook": hook,
        "events": events,
        "counts": status_counts(events),
        "recent": RECENT_EVENTS,
    }
    return render(request, "alert.html", context)


def _back(request: Request) -> str:
    """Where a button's form goes back to: the webhook's page when it came from there."""
    webhook_id = request.path_params["webhook_id"]
    came_from = field(form_of(request), "back")
    return f"{LIST}/{webhook_id}" if came_from == "webhook" else LIST


@page
async def set_enabled(request: Request) -> Response:
    webhook_id: int = request.path_params["webhook_id"]
    enabled = field(form_of(request), "enabled") == "1"
    hook = await service.update_webhook(
        gateway(request), account_of(request).id, webhook_id, {"enabled": enabled}
    )
    state = "enabled" if enabled else "disabled: nothing is sent to it until it is enabled"
    flash(request, f"The webhook to {hook['url']} is {state}.")
    return RedirectResponse(_back(request), status_code=303)


@page
async def delete_alert(request: Request) -> Response:
    webhook_id: int = request.path_params["webhook_id"]
    gw = gateway(request)
    me = account_of(request).id
    hook = await service.get_webhook(gw, me, webhook_id)
    await service.delete_webhook(gw, me, webhook_id)
    flash(request, f"Deleted the webhook to {hook['url']}, and its events.")
    return RedirectResponse(LIST, status_code=303)
