"""Form values to the service layer's types: exact money, UTC times, lists.

A bad value is an ApiError naming the field, like the JSON API's; the pages
show its message next to the form they re-render.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime

from tollway.errors import bad_request
from tollway.types import MoneyError, usd_to_nano

_SPLIT = re.compile(r"[\s,]+")


def money_nano(text: str, label: str, param: str) -> int:
    """A USD amount as typed ("10", "0.50", "$1,000.25"): exact, never a float."""
    cleaned = text.strip().removeprefix("$").replace(",", "").replace("_", "")
    try:
        return usd_to_nano(cleaned)
    except MoneyError as exc:
        message = f"{label}: enter an amount in USD such as 5 or 0.25 ({exc})."
        raise bad_request(message, param) from exc


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
    except ValueError as exc:
        message = f"{label}: enter a date and time such as 2030-01-31T18:00."
        raise bad_request(message, param) from exc
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def model_names(text: str) -> list[str] | None:
    """A model allowlist: names separated by commas, spaces or lines; blank means all."""
    names = [n for n in _SPLIT.split(text.strip()) if n]
    return names or None


def whole_number(text: str, label: str, param: str, default: int) -> int:
    text = text.strip()
    if not text:
        return default
    if not text.lstrip("-").isdigit():
        raise bad_request(f"{label}: enter a whole number.", param)
    return int(text)


def date_input(moment: datetime | None) -> str:
    """A UTC time as a ``datetime-local`` input's value."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M") if moment else ""
