"""Rate limits through the gateway: 429s with OpenAI's headers (and the
inbound protocol's shape), no charge for a refused call, edits through the
API, and one limit across two gateways sharing Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from collections.abc import AsyncIterator
from typing import Any

import anthropic
import openai
import pytest

from tests.conftest import (
    Served,
    add_channel,
    customer,
    need_redis,
    sdk,
    serve,
    test_settings,
    usage_records,
)
from tollway.simulator import Simulator
from tollway.types import Model

HI = [{"role": "user", "content": "hi"}]


async def chat(served: Served, key: str, text: str = "hi", **extra: Any) -> Any:
    messages = [{"role": "user", "content": text}]
    async with sdk(served, key) as client:
        return await client.chat.completions.with_raw_response.create(
            model="gpt-4o-mini", messages=messages, **extra
        )


async def test_requests_past_the_limit_get_a_429_and_cost_nothing(served: Served) -> None:
    manager, key = await customer(served, rpm_limit=2)
    first = await chat(served, key)
    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    await chat(served, key)
    before = await served.balance_usd(manager)
    with pytest.raises(openai.RateLimitError) as refused:
        await chat(served, key)
    error = refused.value
    assert error.code == "rate_limit_exceeded"
    assert 1 <= int(error.response.headers["retry-after"]) <= 60
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.response.headers["x-ratelimit-reset-requests"].endswith("s")
    assert await served.balance_usd(manager) == before
    assert len(await usage_records(served, manager)) == 2  # the refused call left none


async def test_tokens_a_minute_count_max_tokens_up_front(served: Served) -> None:
    _, key = await customer(served, tpm_limit=500)
    with pytest.raises(openai.RateLimitError) as refused:  # 1,000 output tokens held: never fits
        await chat(served, key, max_tokens=1000)
    assert "Lower max_tokens" in refused.value.message
    answer = await chat(served, key, max_tokens=50)
    assert int(answer.headers["x-ratelimit-remaining-tokens"]) < 500


async def test_calls_at_once_are_limited_and_given_back(served: Served) -> None:
    _, key = await customer(served, max_concurrent=1)
    slow = asyncio.create_task(chat(served, key, "hi [sim:latency_ms=500]"))
    await asyncio.sleep(0.2)
    with pytest.raises(openai.RateLimitError):
        await chat(served, key)
    await slow
    for _ in range(20):  # the slot is given back off the answer's path
        with contextlib.suppress(openai.RateLimitError):
            await chat(served, key)
            break
        await asyncio.sleep(0.05)
    else:
        pytest.fail("the slot never came back")


async def test_an_account_limit_binds_all_its_tokens(served: Served) -> None:
    account = await served.new_account("10")
    got = await served.admin.patch(f"/api/users/{account['id']}", json={"rpm_limit": 1})
    assert got.status_code == 200 and got.json()["rpm_limit"] == 1
    one = await served.new_token(account["management_key"])
    two = await served.new_token(account["management_key"])
    await chat(served, one["key"])
    with pytest.raises(openai.RateLimitError) as refused:
        await chat(served, two["key"])
    assert "account" in refused.value.message


async def test_limits_are_set_checked_and_lifted_through_the_api(served: Served) -> None:
    manager, _ = await customer(served)
    async with served.client(manager) as c:
        made = await c.post("/api/tokens", json={"name": "t", "rpm_limit": 5, "tpm_limit": 9000})
        assert made.status_code == 201
        token = made.json()
        assert (token["rpm_limit"], token["tpm_limit"], token["max_concurrent"]) == (5, 9000, None)
        for bad in (0, -1, 1.5, "5", True, 10**10):
            got = await c.patch(f"/api/tokens/{token['id']}", json={"rpm_limit": bad})
            assert got.status_code == 400, bad
            assert got.json()["error"]["param"] == "rpm_limit"
        lifted = await c.patch(f"/api/tokens/{token['id']}", json={"rpm_limit": None})
        assert lifted.json()["rpm_limit"] is None
        # A user cannot set their account's limits.
        me = (await c.get("/api/me")).json()
        assert (await c.patch(f"/api/users/{me['id']}", json={"rpm_limit": 1})).status_code == 403


async def test_the_anthropic_api_gets_its_own_429(served: Served) -> None:
    _, key = await customer(served, rpm_limit=1)
    async with anthropic.AsyncAnthropic(
        base_url=served.base_url, api_key=key, max_retries=0
    ) as client:
        await client.messages.create(model="gpt-4o-mini", max_tokens=20, messages=HI)
        with pytest.raises(anthropic.RateLimitError) as refused:
            await client.messages.create(model="gpt-4o-mini", max_tokens=20, messages=HI)
    assert refused.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    assert refused.value.response.headers["retry-after"]


@contextlib.asynccontextmanager
async def two_gateways(
    database_url: str, models: list[Model], simulator: Simulator, **settings: Any
) -> AsyncIterator[tuple[Served, Served]]:
    async with (
        serve(test_settings(database_url, **settings), models) as one,
        serve(test_settings(database_url, **settings), models) as two,
    ):
        await add_channel(one, simulator.base_url)
        await two.gw.state.reload()
        yield one, two


async def test_one_limit_across_gateways_sharing_redis(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    url, prefix = need_redis(), f"t{secrets.token_hex(4)}"  # this test's own keys
    async with two_gateways(
        database_url, catalog_models, simulator, redis_url=url, redis_prefix=prefix
    ) as (one, two):
        _, key = await customer(one, rpm_limit=4)
        answers = await asyncio.gather(
            *(chat(gw, key) for gw in (one, two) for _ in range(5)), return_exceptions=True
        )
        served = [a for a in answers if not isinstance(a, BaseException)]
        refused = [a for a in answers if isinstance(a, openai.RateLimitError)]
        assert (len(served), len(refused)) == (4, 6)


async def test_without_redis_each_gateway_counts_its_own(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    """What the README warns of: per process, N gateways allow N x the limit."""
    async with two_gateways(database_url, catalog_models, simulator) as (one, two):
        _, key = await customer(one, rpm_limit=2)
        answers = await asyncio.gather(
            *(chat(gw, key) for gw in (one, two) for _ in range(3)), return_exceptions=True
        )
        assert sum(not isinstance(a, BaseException) for a in answers) == 4
