"""What every value a client or an admin sends must be before the services
store it or look it up: text of a bounded length without NUL
(PostgreSQL refuses NUL in text), whole numbers within a range, row ids that
fit the id columns. A bad value is a 400 naming the field; an id that cannot
exist is simply not found.

Money has its own parser, ``tollway.types.usd_to_nano``.
"""

from __future__ import annotations

from typing import Any

from tollway.errors import bad_request
from tollway.types import (
    MAX_ID,
    MAX_NANO,
    MAX_USD,
    NANO_PER_USD,
    MoneyError,
    nano_to_usd,
    usd_to_nano,
)

# A name or a label: usernames, token, channel and model names, reasons.
MAX_NAME_CHARS = 200
# Longer text: descriptions, URLs, upstream keys.
MAX_TEXT_CHARS = 4000
# Lists of names (a token's model allowlist, a channel's models).
MAX_LIST_ITEMS = 1000
# A rate limit (requests or tokens a minute, calls at once).
MAX_LIMIT = 10**9
LIMIT_FIELDS = ("rpm_limit", "tpm_limit", "max_concurrent")
# A price multiplier (a group's, a channel's upstream cost).
MAX_MULTIPLIER = 1000


def text(value: Any, param: str, max_chars: int = MAX_NAME_CHARS, blank: bool = False) -> str:
    """A string of at most ``max_chars`` without NUL, stripped; blank only if allowed."""
    if not isinstance(value, str):
        raise bad_request(f"'{param}' must be a string.", param=param)
    if "\x00" in value:
        raise bad_request(f"'{param}' cannot contain a NUL character.", param=param)
    value = value.strip()
    if len(value) > max_chars or (not value and not blank):
        low = 0 if blank else 1
        raise bad_request(f"'{param}' must be {low} to {max_chars} characters.", param=param)
    return value


def names(value: Any, param: str, max_items: int = MAX_LIST_ITEMS) -> list[str]:
    """A list of names (each checked by ``text``), at most ``max_items``."""
    if not isinstance(value, list) or len(value) > max_items:
        raise bad_request(f"'{param}' must be a list of at most {max_items} names.", param=param)
    return [text(v, param) for v in value]


def flag(value: Any, param: str) -> bool:
    """A JSON boolean."""
    if not isinstance(value, bool):
        raise bad_request(f"'{param}' must be true or false.", param=param)
    return value


def whole_number(value: Any, param: str, low: int, high: int) -> int:
    """A JSON integer (not a bool, not a string) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise bad_request(f"'{param}' must be a whole number from {low} to {high}.", param=param)
    return value


def limit(value: Any, param: str) -> int | None:
    """A rate limit: a whole number from 1 up, or None for none."""
    if value is None:
        return None
    return whole_number(value, param, 1, MAX_LIMIT)


def limits(changes: dict[str, Any]) -> dict[str, int | None]:
    """The rate limits among ``changes`` (rpm_limit, tpm_limit, max_concurrent), checked."""
    return {name: limit(changes[name], name) for name in LIMIT_FIELDS if name in changes}


BUDGET_PERIODS = ("day", "week", "month")


def budget(changes: dict[str, Any], period_now: str | None = None) -> dict[str, Any]:
    """The budget columns among ``changes`` (``budget_nano``, parsed from
    budget_usd, and ``budget_period``), checked: a budget of 0 to the maximum
    per day, week or month (UTC); a budget without a period is per month (or
    keeps ``period_now``); None lifts it."""
    values: dict[str, Any] = {}
    period = changes.get("budget_period")
    if period is not None and period not in BUDGET_PERIODS:
        raise bad_request(
            f"'budget_period' must be one of {', '.join(BUDGET_PERIODS)}.", param="budget_period"
        )
    if "budget_nano" in changes:
        amount = changes["budget_nano"]
        if amount is None:
            return {"budget_nano": None, "budget_period": None}
        if isinstance(amount, bool) or not isinstance(amount, int) or not 0 <= amount <= MAX_NANO:
            raise bad_request(
                f"'budget_usd' must be an amount from 0 to {MAX_USD} USD, or null.",
                param="budget_usd",
            )
        values["budget_nano"] = amount
        values["budget_period"] = period or period_now or "month"
    elif period is not None:
        if period_now is None:
            raise bad_request("Set 'budget_usd' with 'budget_period'.", param="budget_period")
        values["budget_period"] = period
    return values


def row_id(value: Any, param: str) -> int:
    """An id sent in a body: a whole number from 1 to the id columns' maximum."""
    return whole_number(value, param, 1, MAX_ID)


def can_exist(row_id_: int) -> bool:
    """Whether a row could have this id (a bigger one is simply not found, and
    is never sent to the database, whose id columns it would overflow)."""
    return 0 < row_id_ <= MAX_ID


def multiplier(value: Any, param: str = "multiplier") -> str:
    """A multiplier as its normal decimal string ("0.80" -> "0.8"): a decimal
    string or a JSON number (read as a Decimal), more than 0 and at most 1000,
    at most 9 decimals. Parsed by the money parser, so never through a float."""
    problem = (
        f"'{param}' must be a decimal such as \"0.8\": more than 0, at most "
        f"{MAX_MULTIPLIER}, at most 9 decimal places."
    )
    try:
        nano = usd_to_nano(value)  # (x 10**9, exactly: the same plain-decimal rules)
    except MoneyError:
        raise bad_request(problem, param=param) from None
    if not 0 < nano <= MAX_MULTIPLIER * NANO_PER_USD:
        raise bad_request(problem, param=param)
    return nano_to_usd(nano)
