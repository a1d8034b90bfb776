"""Budgets: money a token or an account may spend per day, week or month.
Exact through the ledger like a quota (SQLite and PostgreSQL), a 402
budget_exceeded saying when it starts again, a new period at 0 by itself."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import openai
import pytest
from sqlalchemy import update

from tests.conftest import Served, customer, sdk, usage_records
from tollway.db.schema import tokens
from tollway.ledger.budgets import next_reset, period_start
from tollway.types import nano_to_usd, usd_to_nano

HI = [{"role": "user", "content": "hi"}]


async def call(served: Served, key: str) -> Any:
    async with sdk(served, key) as client:
        return await client.chat.completions.create(model="gpt-4o-mini", messages=HI, max_tokens=20)


async def token_view(served: Served, manager: str, token_id: int) -> dict[str, Any]:
    async with served.client(manager) as c:
        got = await c.get(f"/api/tokens/{token_id}")
    assert got.status_code == 200, got.text
    view: dict[str, Any] = got.json()
    return view


async def spend_until_refused(served: Served, key: str, most: int = 200) -> openai.APIStatusError:
    for _ in range(most):
        try:
            await call(served, key)
        except openai.APIStatusError as refused:
            return refused
    pytest.fail(f"{most} calls and the budget never refused one")


async def test_a_token_budget_refuses_the_call_that_would_pass_it(served: Served) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        made = await c.post(
            "/api/tokens", json={"name": "b", "budget_usd": "0.0002", "budget_period": "day"}
        )
    assert made.status_code == 201, made.text
    token = made.json()
    assert (token["budget_usd"], token["budget_period"], token["budget_used_usd"]) == (
        "0.0002",
        "day",
        "0",
    )
    refused = await spend_until_refused(served, token["key"])
    assert refused.status_code == 402
    body = refused.body
    assert isinstance(body, dict) and body["code"] == "budget_exceeded"
    resets = next_reset("day", datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert resets in body["message"]
    assert int(refused.response.headers["retry-after"]) >= 1
    view = await token_view(served, manager, token["id"])
    spent = sum(usd_to_nano(r["cost_usd"]) for r in await usage_records(served, manager))
    assert 0 < spent <= 200_000  # never past the budget, to the nano-USD
    assert view["budget_used_usd"] == nano_to_usd(spent)


async def test_a_new_period_starts_at_zero_by_itself(served: Served) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        token = (
            await c.post(
                "/api/tokens", json={"name": "b", "budget_usd": "0.0001", "budget_period": "week"}
            )
        ).json()
    await spend_until_refused(served, token["key"])
    await served.gw.ledger.revoke_leases(token_id=token["id"])  # its spending folded in
    # The spending was counted last week: this week's budget is whole again.
    last_week = period_start("week", datetime.now(UTC)).replace(year=2000)
    async with served.gw.engine.begin() as conn:
        await conn.execute(
            update(tokens).where(tokens.c.id == token["id"]).values(budget_period_start=last_week)
        )
    assert (await token_view(served, manager, token["id"]))["budget_used_usd"] == "0"
    await call(served, token["key"])


async def test_an_account_budget_binds_all_its_tokens(served: Served) -> None:
    account = await served.new_account("10")
    got = await served.admin.patch(
        f"/api/users/{account['id']}", json={"budget_usd": "0.0002", "budget_period": "month"}
    )
    assert got.status_code == 200, got.text
    assert got.json()["budget_period"] == "month"
    one = await served.new_token(account["management_key"])
    two = await served.new_token(account["management_key"])
    refused = await spend_until_refused(served, one["key"])
    assert isinstance(refused.body, dict) and refused.body["code"] == "budget_exceeded"
    with pytest.raises(openai.APIStatusError) as again:
        await call(served, two["key"])
    assert again.value.status_code == 402
    records = await usage_records(served, account["management_key"])
    assert sum(usd_to_nano(r["cost_usd"]) for r in records) <= 200_000
    # Lifting it lets calls through again, at once.
    lifted = await served.admin.patch(f"/api/users/{account['id']}", json={"budget_usd": None})
    assert lifted.json()["budget_usd"] is None
    await call(served, two["key"])


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"budget_usd": "-1"}, "budget_usd"),
        ({"budget_usd": "1", "budget_period": "year"}, "budget_period"),
        ({"budget_usd": "five"}, "budget_usd"),
        ({"budget_period": "day"}, "budget_period"),  # a period without a budget
    ],
)
async def test_bad_budgets_are_400s(served: Served, body: dict[str, Any], param: str) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        token = (await c.post("/api/tokens", json={"name": "b"})).json()
        got = await c.patch(f"/api/tokens/{token['id']}", json=body)
    assert got.status_code == 400, got.text
    assert got.json()["error"]["param"] == param


def test_periods_begin_and_end_in_utc() -> None:
    moment = datetime(2026, 12, 5, 16, 30, tzinfo=UTC)  # a Saturday
    assert period_start("day", moment) == datetime(2026, 12, 5, tzinfo=UTC)
    assert period_start("week", moment) == datetime(2026, 11, 30, tzinfo=UTC)
    assert period_start("month", moment) == datetime(2026, 12, 1, tzinfo=UTC)
    assert next_reset("month", moment) == datetime(2027, 1, 1, tzinfo=UTC)
    assert next_reset("week", moment) == datetime(2026, 12, 7, tzinfo=UTC)
    assert next_reset("day", moment) == datetime(2026, 12, 6, tzinfo=UTC)
