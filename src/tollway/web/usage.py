"""Usage: records with filters (token, model, time), CSV export, a chart of
spend per day by model, and the balance with recent credits."""

from __future__ import annotations

import csv
import io
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from tollway.gateway import Gateway
from tollway.manage import checks
from tollway.manage.accounts import account_view, credits_of, list_accounts
from tollway.manage.tokens import get_token, list_tokens
from tollway.manage.usage import MAX_PAGE, list_usage, midnight, spend_by_day
from tollway.timeutil import utcnow
from tollway.web import forms
from tollway.web.chart import spend_chart
from tollway.web.render import render
from tollway.web.session import account_of, gateway, page

DEFAULT_DAYS = 14
MAX_CHART_DAYS = 92
PAGE = 50
CSV_FIELDS = (
    "created_at", "request_id", "account_id", "token_id", "token_name", "model", "endpoint",
    "billing_mode", "method", "input_tokens", "cached_input_tokens", "output_tokens",
    "reasoning_tokens", "image_input_tokens", "image_output_tokens", "audio_input_tokens",
    "audio_output_tokens", "input_characters", "audio_input_ms", "items", "cost_usd",
    "usage_source", "status", "duration_ms",
)  # fmt: skip


def routes() -> list[Route]:
    return [
        Route("/usage", usage_page, methods=["GET"]),
        Route("/usage.csv", usage_csv, methods=["GET"]),
    ]


@dataclass(frozen=True)
class Filters:
    account_id: int | None  # None: every account (admins only)
    token_id: int | None
    model: str | None
    since: date | None
    until: date | None  # inclusive

    def query(self, **extra: str) -> str:
        values = {
            "account": "" if self.account_id is None else str(self.account_id),
            "token": "" if self.token_id is None else str(self.token_id),
            "model": self.model or "",
            "since": self.since.isoformat() if self.since else "",
            "until": self.until.isoformat() if self.until else "",
            **extra,
        }
        return urlencode({k: v for k, v in values.items() if v})

    @property
    def since_at(self) -> datetime | None:
        return midnight(self.since) if self.since else None

    @property
    def until_at(self) -> datetime | None:
        return midnight(self.until + timedelta(days=1)) if self.until else None


def _date(text: str, label: str) -> date | None:
    return forms.optional_date(text, label, label.lower())


async def filters_of(request: Request) -> Filters:
    """The filters asked for, narrowed to what the signed-in account may see."""
    params = request.query_params
    me = account_of(request)
    account_id: int | None = me.id
    asked = params.get("account", "")
    if me.is_admin and asked == "all":
        account_id = None
    elif me.is_admin and asked:
        account_id = forms.optional_id(asked, "Account", "account")
    token_id = forms.optional_id(params.get("token", ""), "Token", "token")
    if token_id is not None:  # 404 unless the token is theirs (or an admin looks)
        await get_token(gateway(request), account_id, token_id)
    return Filters(
        account_id,
        token_id,
        checks.text(params.get("model", ""), "model", blank=True) or None,
        _date(params.get("since", ""), "Since"),
        _date(params.get("until", ""), "Until"),
    )


def chart_days(filters: Filters, today: date) -> list[date]:
    last = min(filters.until or today, today)
    first = filters.since or last - timedelta(days=DEFAULT_DAYS - 1)
    first = max(first, last - timedelta(days=MAX_CHART_DAYS - 1))
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


async def spend_rows(
    gw: Gateway, filters: Filters, days: list[date]
) -> list[tuple[date, str, int]]:
    """(day, model, cost) of the billed calls in the chart's days."""
    if not days:
        return []
    return await spend_by_day(
        gw, days[0], days[-1], filters.account_id, filters.token_id, filters.model
    )


async def _token_names(gw: Gateway, account_id: int | None) -> dict[int, str]:
    return {t["id"]: t["name"] for t in await list_tokens(gw, account_id)}


@page
async def usage_page(request: Request) -> Response:
    gw = gateway(request)
    me = account_of(request)
    filters = await filters_of(request)
    cursor = forms.optional_id(request.query_params.get("cursor", ""), "Page", "cursor")
    records = await list_usage(
        gw, filters.account_id, filters.token_id, filters.model, filters.since_at,
        filters.until_at, limit=PAGE, cursor=cursor,
    )  # fmt: skip
    days = chart_days(filters, utcnow().date())
    chart = spend_chart(await spend_rows(gw, filters, days), days)
    balance_of = me.id if filters.account_id is None else filters.account_id
    context: dict[str, Any] = {
        "records": records["data"],
        "next_query": filters.query(cursor=older) if (older := records["next_cursor"]) else None,
        "csv_query": filters.query(),
        "filters": filters,
        "chart": chart,
        "chart_range": (days[0], days[-1]) if days else None,
        "token_names": await _token_names(gw, filters.account_id),
        "balance": await account_view(gw, balance_of),
        "credits": await credits_of(gw, balance_of, limit=8),
        "accounts": await list_accounts(gw) if me.is_admin else [],
    }
    return render(request, "usage.html", context)


@page
async def usage_csv(request: Request) -> Response:
    gw = gateway(request)
    filters = await filters_of(request)
    names = await _token_names(gw, filters.account_id)
    stamp = utcnow().strftime("%Y%m%d-%H%M%S")
    headers = {"Content-Disposition": f'attachment; filename="tollway-usage-{stamp}.csv"'}
    return StreamingResponse(
        _csv_lines(gw, filters, names), media_type="text/csv; charset=utf-8", headers=headers
    )


async def _csv_lines(gw: Gateway, filters: Filters, names: dict[int, str]) -> AsyncIterator[str]:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(CSV_FIELDS)
    cursor: int | None = None
    while True:
        page_ = await list_usage(
            gw, filters.account_id, filters.token_id, filters.model, filters.since_at,
            filters.until_at, limit=MAX_PAGE, cursor=cursor,
        )  # fmt: skip
        for record in page_["data"]:
            writer.writerow(_csv_row(record, names))
        yield out.getvalue()
        out.seek(0)
        out.truncate()
        if not page_["next_cursor"]:
            return
        cursor = int(page_["next_cursor"])


def _csv_row(record: dict[str, Any], names: dict[int, str]) -> list[Any]:
    flat = {**record, **record["tokens"], "token_name": names.get(record["token_id"], "")}
    return [_cell(flat.get(name)) for name in CSV_FIELDS]


def _cell(value: Any) -> Any:
    """No spreadsheet formulas from user-chosen text (token names, models)."""
    if isinstance(value, str) and value[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + value
    return "" if value is None else value
