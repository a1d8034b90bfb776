"""What must hold after a fault run, read straight from the database: every
account's balance is its credits less its usage costs to the nano-USD, no
hold or lease is left open, no call was charged twice, no balance is below
zero unless an upstream overran its hold, no token passed its quota or
budget; and, from what the load saw, no rate limit passed by more than its
documented edge (what one second admits)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import psycopg
from fault_load import Tally

WINDOW_S = 60.0


@dataclass
class Verdict:
    figures: dict[str, int] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)

    def need(self, name: str, value: int, ok: bool, detail: str = "") -> None:
        self.figures[name] = value
        if not ok:
            self.failures.append(f"{name} = {value}{': ' + detail if detail else ''}")


def check_database(url: str) -> Verdict:
    verdict = Verdict()
    with psycopg.connect(url) as conn:
        drift = _rows(conn, DRIFT)
        verdict.need("accounts", len(_rows(conn, "SELECT id FROM accounts")), True)
        worst = max((abs(int(r[1])) for r in drift), default=0)
        verdict.need("lost or extra (accounts off)", len(drift), not drift, str(drift[:5]))
        verdict.need("max drift nano-USD", worst, worst == 0)
        doubled = _rows(conn, DOUBLED)
        verdict.need("charged twice", len(doubled), not doubled, str(doubled[:5]))
        open_holds = _one(conn, "SELECT count(*) FROM holds WHERE state = 'open'")
        verdict.need("open holds", open_holds, open_holds == 0)
        leases = _one(conn, "SELECT count(*) FROM leases")
        verdict.need("open leases", leases, leases == 0)
        held = _one(conn, HELD)
        verdict.need("money still held", held, held == 0)
        negative = _rows(conn, NEGATIVE)
        verdict.need("balances below zero", len(negative), not negative, str(negative[:5]))
        over = _rows(conn, OVER_QUOTA)
        verdict.need("tokens over quota or budget", len(over), not over, str(over[:5]))
        verdict.figures["usage records"] = _one(conn, "SELECT count(*) FROM usage_records")
        verdict.figures["charged nano-USD"] = _one(
            conn, "SELECT coalesce(sum(cost_nano), 0) FROM usage_records"
        )
    return verdict


def check_rates(
    tally: Tally, rpm_limit: int, verdict: Verdict, unchecked: list[tuple[float, float]]
) -> None:
    """Passed calls per token in any 60 s (by send time) stay within the limit
    plus what its busiest second admitted (the window's documented edge).
    Calls sent while Redis was down (``unchecked`` spans) pass unchecked by
    design (TOLLWAY_LIMITS_ON_REDIS_DOWN=open), and a restarted Redis has
    forgotten the counts: each stretch between outages is checked alone."""
    worst_excess = 0
    for sent in tally.passed_at.values():
        for times in _stretches(sorted(sent), unchecked):
            busiest_second = max(_in_window(times, 1.0), default=0)
            most = max(_in_window(times, WINDOW_S), default=0)
            worst_excess = max(worst_excess, most - rpm_limit - busiest_second)
    verdict.need("rate limit passed beyond its edge", max(worst_excess, 0), worst_excess <= 0)


def _stretches(times: list[float], gaps: list[tuple[float, float]]) -> list[list[float]]:
    """``times`` split at each gap, the times within gaps left out."""
    stretches: list[list[float]] = [[]]
    bounds = sorted(gaps)
    for moment in times:
        if any(a <= moment <= b for a, b in bounds):
            continue
        passed = sum(1 for _, b in bounds if b < moment)
        while len(stretches) <= passed:
            stretches.append([])
        stretches[passed].append(moment)
    return stretches


def _in_window(times: list[float], seconds: float) -> list[int]:
    counts, start = [], 0
    for end, moment in enumerate(times):
        while moment - times[start] >= seconds:
            start += 1
        counts.append(end - start + 1)
    return counts


def _rows(conn: Any, sql: str) -> list[tuple[Any, ...]]:
    return list(conn.execute(sql).fetchall())


def _one(conn: Any, sql: str) -> int:
    return int(conn.execute(sql).fetchone()[0])


DRIFT = """
SELECT a.id, a.balance_nano - (
    coalesce((SELECT sum(amount_nano) FROM ledger l
              WHERE l.account_id = a.id AND l.kind IN ('credit', 'debit')), 0)
  - coalesce((SELECT sum(cost_nano) FROM usage_records u WHERE u.account_id = a.id), 0)
) AS drift
FROM accounts a
WHERE a.balance_nano <> coalesce((SELECT sum(amount_nano) FROM ledger l
          WHERE l.account_id = a.id AND l.kind IN ('credit', 'debit')), 0)
  - coalesce((SELECT sum(cost_nano) FROM usage_records u WHERE u.account_id = a.id), 0)
"""
DOUBLED = """
SELECT request_id, count(*) FROM ledger WHERE kind = 'settle' AND request_id IS NOT NULL
GROUP BY request_id HAVING count(*) > 1
UNION ALL
SELECT request_id, count(*) FROM usage_records GROUP BY request_id HAVING count(*) > 1
"""
HELD = """SELECT coalesce((SELECT sum(held_nano) FROM accounts), 0)
 + coalesce((SELECT sum(held_nano) FROM tokens), 0)"""
NEGATIVE = """
SELECT a.id, a.balance_nano FROM accounts a
WHERE a.balance_nano < 0
  AND NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.account_id = a.id AND u.exceeded_hold)
"""
OVER_QUOTA = """
SELECT id, used_nano, quota_nano, budget_used_nano, budget_nano FROM tokens
WHERE (quota_nano IS NOT NULL AND used_nano > quota_nano)
   OR (budget_nano IS NOT NULL AND budget_used_nano > budget_nano)
"""
