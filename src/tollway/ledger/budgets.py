"""Budgets: money a token or an account may spend per day, week or month
(UTC), kept exact by the ledger like a quota.

Each row keeps ``budget_used_nano``, what was charged in the period that
began at ``budget_period_start``. A charge adds to it, first setting it to 0
when its period has ended (so a new period starts at 0 by itself, with no job
to reset it); a hold must fit in ``budget_nano - used this period - held``.
The ledger's statements do this in SQL (``USED_THIS_PERIOD``), with the
batch's period starts as parameters (``period_params``).

A charge counts in the period in which the ledger writes it: a call settled
directly at its settlement; calls held against a lease when the lease's
spending is folded into the row (as it grows, or within a second of going
idle), so one made in the last second of a period may count in the next.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from tollway.ledger.dialects import Dialect

PERIODS = ("day", "week", "month")

# The start of the row's current period, from the batch's parameters.
PERIOD_START = "(CASE budget_period WHEN 'day' THEN :day WHEN 'week' THEN :week ELSE :month END)"
# What the row has spent in its current period (0 once its period has ended).
USED_THIS_PERIOD = (
    f"(CASE WHEN budget_period_start >= {PERIOD_START} THEN budget_used_nano ELSE 0 END)"
)


def period_start(period: str, now: datetime) -> datetime:
    """When the ``period`` (day, week from Monday, month) holding ``now`` began, in UTC."""
    day = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day
    if period == "week":
        return day - timedelta(days=day.weekday())
    if period == "month":
        return day.replace(day=1)
    raise ValueError(f"no budget period {period!r}")


def next_reset(period: str, now: datetime) -> datetime:
    """When the current ``period`` ends and its budget starts again."""
    start = period_start(period, now)
    if period == "day":
        return start + timedelta(days=1)
    if period == "week":
        return start + timedelta(days=7)
    return (start + timedelta(days=32)).replace(day=1)


def period_params(dialect: Dialect, now: datetime) -> dict[str, Any]:
    """The batch's period starts, as its statements take them (the same all
    day: kept for the day, as every batch asks)."""
    day = now.astimezone(UTC).date()
    cached = _PARAMS.get(dialect.name)
    if cached is None or cached[0] != day:
        params = {period: dialect.time(period_start(period, now)) for period in PERIODS}
        cached = _PARAMS[dialect.name] = (day, params)
    return cached[1]


_PARAMS: dict[str, tuple[date, dict[str, Any]]] = {}


def used_this_period(
    used_nano: int, started: datetime | None, period: str | None, now: datetime
) -> int:
    """What a row has spent in its current period, read outside the ledger."""
    if period is None or started is None:
        return 0
    if started.tzinfo is None:
        started = started.replace(tzinfo=UTC)
    return used_nano if started >= period_start(period, now) else 0
