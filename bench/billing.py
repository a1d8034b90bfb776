"""Billing exactness under load, checked after every benchmark run through the
public API only (GET /api/me, GET /api/usage, POST /api/quote).

After a run has quiesced (no hold left open) the audit reads every usage
record created since the previous check and verifies:

- money: balance drop since the previous check == Σ cost_usd of the new
  records, exactly (Decimal, i.e. to the nano-USD), and nothing stays held;
- count: one usage record per answered request. Where the client knows that
  number exactly (the Python clients) the count must match exactly; wrk
  abandons the requests in flight at its deadline (at most one per
  connection) and those are still answered and billed by the gateway, so
  there: answered ≤ records ≤ answered + connections;
- one record per request id (no double settlement);
- price: every record costs what POST /api/quote says that call costs
  (the fixed request always reports 11 input and 16 output tokens).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from procs import BenchError
from progress import log
from stack import CHAT_MODEL, STREAM_MODEL, Gateway, api

# What the fixed requests report (simulator and nginx fixtures alike).
FIXED_USAGE = {"input_tokens": 11, "output_tokens": 16}
PAGE = 1000
QUIESCE_TIMEOUT_S = 30.0


@dataclass
class Audit:
    gw: Gateway
    balance: Decimal = Decimal(0)
    max_id: int = 0
    expected_cost: dict[str, Decimal] = field(default_factory=dict)
    quotes: dict[tuple[str, int, int], Decimal] = field(default_factory=dict)
    seen_request_ids: set[str] = field(default_factory=set)
    checks: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def begin(cls, gw: Gateway) -> Audit:
        audit = cls(gw)
        me = api(gw.base, "GET", "/api/me", gw.user_key)
        audit.balance = Decimal(str(me["balance_usd"]))
        for model in (CHAT_MODEL, STREAM_MODEL):
            quote = api(
                gw.base,
                "POST",
                "/api/quote",
                gw.user_key,
                {"model": model, "billing_mode": gw.info["token_billing_mode"], **FIXED_USAGE},
            )
            audit.expected_cost[model] = Decimal(str(quote["cost_usd"]))
        return audit

    def quote(self, model: str, input_tokens: int, output_tokens: int) -> Decimal:
        """What POST /api/quote says a call of that usage costs (cached)."""
        key = (model, input_tokens, output_tokens)
        if key not in self.quotes:
            quote = api(
                self.gw.base,
                "POST",
                "/api/quote",
                self.gw.user_key,
                {
                    "model": model,
                    "billing_mode": self.gw.info["token_billing_mode"],
                    "input_tokens": input_tokens,
                    "output_tokens": output_tokens,
                },
            )
            self.quotes[key] = Decimal(str(quote["cost_usd"]))
        return self.quotes[key]

    def check(
        self,
        phase: str,
        answered_ok: int,
        in_flight_max: int = 0,
        usage: dict[str, tuple[int, int]] | None = None,
    ) -> dict[str, Any]:
        """``usage``: model -> (input, output) tokens every record of this phase
        must report (default: the fixed requests' 11/16)."""
        me, held = self._quiesce()
        balance = Decimal(str(me["balance_usd"]))
        records = self._new_records()
        ok = [r for r in records if r["status"] == "ok"]
        cost_sum = sum((Decimal(str(r["cost_usd"])) for r in records), Decimal(0))
        drop = self.balance - balance
        ids = [r["request_id"] for r in records]
        duplicates = len(ids) - len(set(ids)) + len(self.seen_request_ids.intersection(ids))
        mispriced, wrong_usage = self._misfits(ok, usage)
        abandoned = len(ok) - answered_ok
        # wrk: up to one abandoned request per connection; exact clients: none.
        count_ok = 0 <= abandoned <= in_flight_max
        money_ok = drop == cost_sum and held == 0
        result = {
            "phase": phase,
            "answered_ok": answered_ok,
            "records": len(records),
            "records_ok": len(ok),
            "records_other": _other_statuses(records),
            "abandoned_in_flight": abandoned if in_flight_max else None,
            "balance_drop_usd": str(drop),
            "sum_cost_usd": str(cost_sum),
            "held_usd": str(held),
            "duplicate_request_ids": duplicates,
            "mispriced_records": len(mispriced),
            "wrong_usage_records": len(wrong_usage),
            "expected_usage": usage,
            "money_exact": money_ok,
            "count_exact": count_ok,
            "pass": money_ok and count_ok and duplicates == 0 and not mispriced and not wrong_usage,
        }
        self.balance = balance
        self.seen_request_ids.update(ids)
        self.checks.append(result)
        return result

    def verify(
        self,
        phase: str,
        answered_ok: int,
        in_flight_max: int = 0,
        usage: dict[str, tuple[int, int]] | None = None,
        label: str | None = None,
    ) -> dict[str, Any]:
        """check(), and a progress line when it fails (``label``: the phase's
        name in that line, if not ``phase``)."""
        result = self.check(phase, answered_ok, in_flight_max, usage)
        if not result["pass"]:
            log(f"  BILLING FAIL {self.gw.name} {label or phase}: {result}")
        return result

    def _misfits(
        self, ok: list[dict[str, Any]], usage: dict[str, tuple[int, int]] | None
    ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """The records priced otherwise than quoted, and those reporting other
        usage than expected (``usage`` None: the fixed requests, usage unchecked)."""
        if usage is None:
            mispriced = [
                r for r in ok if Decimal(str(r["cost_usd"])) != self.expected_cost.get(r["model"])
            ]
            return mispriced, []
        mispriced = [
            r
            for r in ok
            if r["model"] not in usage
            or Decimal(str(r["cost_usd"])) != self.quote(r["model"], *usage[r["model"]])
        ]
        wrong_usage = [
            r
            for r in ok
            if r["model"] not in usage
            or (r["tokens"]["input_tokens"], r["tokens"]["output_tokens"]) != usage[r["model"]]
        ]
        return mispriced, wrong_usage

    def summary(self) -> dict[str, Any]:
        return {
            "checks": len(self.checks),
            "passed": sum(1 for c in self.checks if c["pass"]),
            "pass": all(c["pass"] for c in self.checks) and bool(self.checks),
            "records": sum(c["records"] for c in self.checks),
            "abandoned_in_flight": sum(c["abandoned_in_flight"] or 0 for c in self.checks),
            "expected_cost_usd": {m: str(c) for m, c in self.expected_cost.items()},
            "failures": [c for c in self.checks if not c["pass"]],
        }

    def _quiesce(self) -> tuple[dict[str, Any], Decimal]:
        """Wait until every call in flight has settled (nothing held)."""
        time.sleep(0.2)  # requests cut off by the client still reach the ledger
        deadline = time.monotonic() + QUIESCE_TIMEOUT_S
        while True:
            me = api(self.gw.base, "GET", "/api/me", self.gw.user_key)
            held = Decimal(str(me["held_usd"]))
            if held == 0 or time.monotonic() > deadline:
                return me, held
            time.sleep(0.05)

    def _new_records(self) -> list[dict[str, Any]]:
        """Every usage record with an id above the last one seen (newest first)."""
        found: list[dict[str, Any]] = []
        cursor: str | None = None
        newest = self.max_id
        while True:
            path = f"/api/usage?limit={PAGE}" + (f"&cursor={cursor}" if cursor else "")
            page = api(self.gw.base, "GET", path, self.gw.user_key)
            stop = False
            for record in page["data"]:
                if record["id"] <= self.max_id:
                    stop = True
                    break
                found.append(record)
                newest = max(newest, record["id"])
            cursor = page.get("next_cursor")
            if stop or not cursor:
                break
        if len(found) > 10_000_000:
            raise BenchError("too many usage records")
        self.max_id = newest
        return found


def _other_statuses(records: list[dict[str, Any]]) -> dict[str, int]:
    """How many records of each status other than ok."""
    other: dict[str, int] = {}
    for r in records:
        if r["status"] != "ok":
            other[r["status"]] = other.get(r["status"], 0) + 1
    return other
