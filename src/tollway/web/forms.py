"""Form values to the service layer's types: exact money, UTC times, lists.

A bad value is an ApiError naming the field, like the JSON API's; the pages
show its message next to the form they re-render.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import Any

from tollway.errors import bad_request
from tollway.manage.checks import can_exist
from tollway.types import MoneyError, usd_to_nano

_SPLIT = re.compile(r"[\s,]+")
# An amount as people type it: an optional minus and dollar sign, ASCII
# digits, commas only as thousands separators ("$1,000.25", "-5", "0.50").
_TYPED_USD = re.compile(r"-?\$?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?")
_WHOLE = re.compile(r"-?[0-9]{1,10}")


def money_nano(text: str, label: str, param: str) -> int:
    """A USD amount as typed ("10", "0.50", "$1,000.25"): exact, never a float,
    within the maximum (``tollway.types.usd_to_nano``)."""
    cleaned = text.strip()
    try:
        if _TYPED_USD.fullmatch(cleaned) is None:
            raise MoneyError(f"not an amount: {cleaned[:40]!r}")
        return usd_to_nano(cleaned.replace("$", "").replace(",", ""))
    except MoneyError as exc:
        message = f"{label}: enter an amount in USD such as 5 or 0.25 ({exc})."
        raise bad_request(message, param) from None


def optional_money_nano(text: str, label: str, param: str) -> int | None:
    """Blank means none (an unlimited quota, no price)."""
    return None if not text.strip() else money_nano(text, label, param)


def optional_time(text: str, label: str, param: str) -> datetime | None:
    """A ``datetime-local`` or ``date`` value, taken as UTC; blank means never."""
    text = text.strip()
    if not text:
        return None
    try:
        moment = datetime.fromisoformat(text)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError) as exc:  # Overflow: past year 9999 once in UTC
        message = f"{label}: enter a date and time such as 2030-01-31T18:00."
        raise bad_request(message, param) from exc


def optional_date(text: str, label: str, param: str) -> date | None:
    """A ``date`` input's value (a UTC day); blank means none."""
    text = text.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise bad_request(f"{label}: enter a date such as 2030-01-31.", param) from exc


def model_names(text: str) -> list[str] | None:
    """A model allowlist: names separated by commas, spaces or lines; blank means all."""
    names = [n for n in _SPLIT.split(text.strip()) if n]
    return names or None


def whole_number(text: str, label: str, param: str, default: int) -> int:
    """ASCII digits, at most ten (the service checks the field's own range)."""
    text = text.strip()
    if not text:
        return default
    if _WHOLE.fullmatch(text) is None:
        raise bad_request(f"{label}: enter a whole number.", param)
    return int(text)


def optional_whole_number(text: str, label: str, param: str) -> int | None:
    """A whole number, or None when blank (a rate limit: none); the service
    checks the field's own range."""
    text = text.strip()
    if not text:
        return None
    if _WHOLE.fullmatch(text) is None:
        raise bad_request(f"{label}: enter a whole number, or leave it blank for none.", param)
    return int(text)


# A rate limit's form field, its label, as the token and account forms name them.
LIMIT_LABELS = {
    "rpm_limit": "Requests a minute",
    "tpm_limit": "Tokens a minute",
    "max_concurrent": "Calls at once",
}
LIMIT_FORM_FIELDS = (*LIMIT_LABELS, "budget_usd", "budget_period")


def limits(values: Mapping[str, str]) -> dict[str, Any]:
    """The rate limits and budget of a token or account form, as the
    services take them: blank lifts one; a budget without a period is per month."""
    fields: dict[str, Any] = {
        name: optional_whole_number(values.get(name, ""), label, name)
        for name, label in LIMIT_LABELS.items()
    }
    budget = optional_money_nano(values.get("budget_usd", ""), "Budget", "budget_usd")
    fields["budget_nano"] = budget
    if budget is not None:
        fields["budget_period"] = values.get("budget_period") or "month"
    return fields


def limits_form(view: Mapping[str, Any]) -> dict[str, str]:
    """A token's or account's view as its limit fields' values."""
    values = {name: "" if view[name] is None else str(view[name]) for name in LIMIT_LABELS}
    values["budget_usd"] = view["budget_usd"] or ""
    values["budget_period"] = view["budget_period"] or "month"
    return values


def unchanged_budget_dropped(fields: dict[str, Any], view: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` without the budget when it is the one ``view`` has: an
    unchanged budget is not an edit (a budget edit returns every process's
    leases)."""
    current = None if view["budget_usd"] is None else usd_to_nano(view["budget_usd"])
    period = fields.get("budget_period", view["budget_period"])
    if fields.get("budget_nano") == current and period == view["budget_period"]:
        return {k: v for k, v in fields.items() if k not in ("budget_nano", "budget_period")}
    return fields


def optional_id(text: str, label: str, param: str) -> int | None:
    """A row id from a query string or form (blank: none)."""
    text = text.strip()
    if not text:
        return None
    if _WHOLE.fullmatch(text) is None or not can_exist(int(text)):
        raise bad_request(f"{label}: choose one from the list.", param)
    return int(text)


def date_input(moment: datetime | None) -> str:
    """A UTC time as a ``datetime-local`` input's value."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""
