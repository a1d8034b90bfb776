"""Admin: margins. Revenue (what the calls were billed), what their upstreams
charged, and the margin, by model and by channel, for a period of UTC days
(the last 30 by default), as GET /api/usage/margins gives them: decimal
strings, added up as Decimals, never floats. A channel records its upstream's
cost only when it has a ``cost`` (docs/routing.md), so each row says how many
of its calls had one; the margin counts only those."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tollway.errors import bad_request
from tollway.manage.usage import margins, midnight
from tollway.timeutil import utcnow
from tollway.web import forms
from tollway.web.render import render
from tollway.web.session import admin_page, gateway

DEFAULT_DAYS = 30
MONEY = ("revenue_usd", "upstream_cost_usd", "margin_usd")


def routes() -> list[Route]:
    return [Route("/admin/margins", margins_page, methods=["GET"])]


@dataclass(frozen=True)
class Period:
    since: date
    until: date  # inclusive


def period_of(params: Any, today: date) -> Period:
    """The days asked for: by default the last ``DEFAULT_DAYS``, up to today."""
    until = forms.optional_date(params.get("until", ""), "Until", "until") or today
    since = forms.optional_date(params.get("since", ""), "Since", "since")
    since = since or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        raise bad_request("Since: choose a day on or before Until.", "since")
    return Period(since, until)


def totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The rows added up: calls, and money exactly (Decimal sums of the strings)."""
    found: dict[str, Any] = {
        name: sum(int(r[name]) for r in rows) for name in ("calls", "calls_with_cost")
    }
    for name in MONEY:
        found[name] = sum((Decimal(r[name]) for r in rows), Decimal(0))
    return found


@admin_page
async def margins_page(request: Request) -> Response:
    gw = gateway(request)
    days = period_of(request.query_params, utcnow().date())
    since, until = midnight(days.since), midnight(days.until + timedelta(days=1))
    by_model = await margins(gw, "model", since, until)
    by_channel = await margins(gw, "channel", since, until)
    context = {
        "period": days,
        "by_model": by_model,
        "by_channel": by_channel,
        "total": totals(by_model),
    }
    return render(request, "admin_margins.html", context)
