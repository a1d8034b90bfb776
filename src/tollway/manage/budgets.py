"""How a token's or an account's budget reads: its amount and period, what was
spent in the current period (leases' spending not yet folded included), and
when the period starts again."""

from __future__ import annotations

from typing import Any

from tollway.ledger.budgets import next_reset, used_this_period
from tollway.timeutil import aware, iso, utcnow
from tollway.types import nano_to_usd


def budget_fields(row: Any, lease_spent: int) -> dict[str, Any]:
    """The budget part of a token or account view (all None without a budget)."""
    period = row["budget_period"]
    if row["budget_nano"] is None or period is None:
        return {
            "budget_usd": None,
            "budget_period": None,
            "budget_used_usd": None,
            "budget_resets_at": None,
        }
    now = utcnow()
    started = aware(row["budget_period_start"])
    used = used_this_period(int(row["budget_used_nano"]), started, period, now) + lease_spent
    return {
        "budget_usd": nano_to_usd(row["budget_nano"]),
        "budget_period": period,
        "budget_used_usd": nano_to_usd(used),
        "budget_resets_at": iso(next_reset(period, now)),
    }
