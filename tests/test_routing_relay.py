"""Routing through a real gateway on loopback to several in-process
simulators, each a channel: failover (5xx, a refused key, a stream cut before
its first byte), what is not retried, auto-disable and the test that undoes
it, channels per billing method, model names mapped, sticky routes, the
cheapest strategy and the upstream's cost on the record."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest

from tollway.simulator import Simulator, SimulatorConfig, start
from tollway.types import Model

from conftest import Served, customer, sdk, serve, test_settings, usage_records

MODEL = "deepseek-chat"  # priced per use and per call
HELLO = [{"role": "user", "content": "Hello there"}]


@pytest.fixture
async def sims() -> AsyncIterator[list[Simulator]]:
    started = [await start(SimulatorConfig(api_key="sim-key", seed=i)) for i in range(3)]
    yield started
    for sim in started:
        await sim.stop()


@pytest.fixture
async def gateway(database_url: str, catalog_models: list[Model]) -> AsyncIterator[Served]:
    async with serve(test_settings(database_url), catalog_models) as served:
        yield served


async def add(served: Served, sim: Simulator, name: str, **fields: Any) -> dict[str, Any]:
    body = {
        "name": name,
        "type": "openai",
        "base_url": sim.base_url,
        "models": ["*"],
        **fields,
    }
    if "api_keys" not in body:
        body["api_key"] = "sim-key"
    got = await served.admin.post("/api/channels", json=body)
    assert got.status_code == 201, got.text
    channel: dict[str, Any] = got.json()
    return channel


def calls(sim: Simulator) -> int:
    return int(sim.stats.by_path.get("/v1/chat/completions", 0))


async def chat(served: Served, key: str, **extra: Any) -> Any:
    async with sdk(served, key) as client:
        return await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=HELLO, **extra
        )


async def channel(served: Served, channel_id: int) -> dict[str, Any]:
    got = await served.admin.get(f"/api/channels/{channel_id}")
    assert got.status_code == 200, got.text
    found: dict[str, Any] = got.json()
    return found


async def test_a_failing_channel_is_skipped_and_the_call_billed_once(
    gateway: Served, sims: list[Simulator]
) -> None:
    sims[0].update_config(error_rate=1.0)  # every call: a 5xx
    await add(gateway, sims[0], "broken", priority=10)
    good = await add(gateway, sims[1], "good")
    mkey, key = await customer(gateway, "1")
    raw = await chat(gateway, key)
    assert raw.headers["x-tollway-attempts"] == "2"
    cost = Decimal(raw.headers["x-tollway-cost-usd"])
    assert raw.parse().choices[0].message.content
    assert calls(sims[0]) == 1 and calls(sims[1]) == 1
    (record,) = await usage_records(gateway, mkey)
    assert record["attempts"] == 2 and record["channel_id"] == good["id"]
    assert Decimal(record["cost_usd"]) == cost
    me = await gateway.me_at_rest(mkey)
    assert Decimal(me["balance_usd"]) == Decimal("1") - cost
    broken = await channel(gateway, 1)
    assert broken["last_error"] and "HTTP 5" in broken["last_error"]


async def test_a_refused_key_disables_its_channel_until_a_test_passes(
    gateway: Served, sims: list[Simulator]
) -> None:
    sims[0].update_config(api_key="another-key")
    bad = await add(gateway, sims[0], "revoked", priority=10)
    await add(gateway, sims[1], "good")
    _, key = await customer(gateway, "1")
    raw = await chat(gateway, key)
    assert raw.headers["x-tollway-attempts"] == "2"
    for _ in range(50):  # written in the background
        seen = await channel(gateway, bad["id"])
        if seen["status"] == "auto_disabled":
            break
        await asyncio.sleep(0.05)
    assert seen["status"] == "auto_disabled"
    assert "Incorrect API key" in seen["status_reason"]
    assert seen["keys"][0]["enabled"] is False
    raw = await chat(gateway, key)
    assert "x-tollway-attempts" not in raw.headers and calls(sims[0]) == 1
    failed = await gateway.admin.post(f"/api/channels/{bad['id']}/test", json={})
    assert failed.status_code == 200 and failed.json()["ok"] is False
    assert failed.json()["status_code"] == 401
    sims[0].update_config(api_key="sim-key")  # the operator fixed the upstream account
    passed = await gateway.admin.post(f"/api/channels/{bad['id']}/test", json={"model": MODEL})
    assert passed.json()["ok"] is True and passed.json()["enabled_again"] is True
    assert (await channel(gateway, bad["id"]))["status"] == "enabled"
    before = calls(sims[0])
    await chat(gateway, key)
    assert calls(sims[0]) == before + 1


async def test_a_channels_next_key_is_tried_when_one_is_refused(
    gateway: Served, sims: list[Simulator]
) -> None:
    two = await add(gateway, sims[0], "two keys", api_keys=["dead-key", "sim-key"])
    _, key = await customer(gateway, "1")
    for _ in range(4):
        raw = await chat(gateway, key)
        assert raw.parse().choices[0].message.content
    seen = await channel(gateway, two["id"])
    assert [k["enabled"] for k in seen["keys"]] == [False, True]
    assert seen["status"] == "enabled"


async def test_other_client_errors_are_not_retried(gateway: Served, sims: list[Simulator]) -> None:
    await add(gateway, sims[0], "first", priority=10)
    await add(gateway, sims[1], "second")
    mkey, key = await customer(gateway, "1")
    async with sdk(gateway, key) as client:
        with pytest.raises(Exception) as raised:
            await client.chat.completions.create(
                model=MODEL, messages=[{"role": "user", "content": "[sim:error=400]"}]
            )
    assert getattr(raised.value, "status_code", None) == 400
    assert calls(sims[0]) == 1 and calls(sims[1]) == 0
    assert (await gateway.me_at_rest(mkey))["balance_usd"] == "1"


async def test_a_stream_cut_before_its_first_byte_moves_on(
    gateway: Served, sims: list[Simulator]
) -> None:
    sims[0].update_config(empty_stream_rate=1.0)
    await add(gateway, sims[0], "empty", priority=10)
    await add(gateway, sims[1], "good")
    mkey, key = await customer(gateway, "1")
    async with sdk(gateway, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model=MODEL, messages=HELLO, stream=True
        )
        text = "".join([c.choices[0].delta.content or "" async for c in raw.parse() if c.choices])
    assert text and raw.headers["x-tollway-attempts"] == "2"
    (record,) = await usage_records(gateway, mkey)
    assert record["status"] == "ok" and record["attempts"] == 2


async def test_when_every_channel_fails_the_client_gets_the_last_error_and_pays_nothing(
    database_url: str, catalog_models: list[Model], sims: list[Simulator]
) -> None:
    async with serve(test_settings(database_url, max_attempts=2), catalog_models) as served:
        for i, sim in enumerate(sims):
            sim.update_config(error_rate=1.0)
            await add(served, sim, f"down{i}", priority=10 - i)
        mkey, key = await customer(served, "1")
        async with sdk(served, key) as client:
            with pytest.raises(Exception) as raised:
                await client.chat.completions.create(model=MODEL, messages=HELLO)
        assert getattr(raised.value, "status_code", 0) >= 500
        assert [calls(s) for s in sims] == [1, 1, 0]  # at most two attempts
        (record,) = await usage_records(served, mkey)
        assert record["attempts"] == 2 and record["cost_usd"] == "0"
        assert (await served.me_at_rest(mkey))["balance_usd"] == "1"


async def test_the_tokens_mode_picks_the_channel_that_sells_its_method(
    gateway: Served, sims: list[Simulator]
) -> None:
    await add(gateway, sims[0], "per call", methods=["per_call"])
    await add(gateway, sims[1], "per use", methods=["per_use"])
    _, per_call = await customer(gateway, "1", billing_mode="pay_per_call")
    raw = await chat(gateway, per_call)
    assert raw.headers["x-tollway-billing-method"] == "per_call"
    assert (calls(sims[0]), calls(sims[1])) == (1, 0)
    _, per_use = await customer(gateway, "1", billing_mode="pay_per_use")
    raw = await chat(gateway, per_use)
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert (calls(sims[0]), calls(sims[1])) == (1, 1)


async def test_priority_mode_falls_back_to_the_method_a_channel_sells(
    gateway: Served, sims: list[Simulator]
) -> None:
    await add(gateway, sims[0], "per call only", methods=["per_call"])
    _, key = await customer(gateway, "1")  # pay_per_use_priority: per use first
    raw = await chat(gateway, key)
    assert raw.headers["x-tollway-billing-method"] == "per_call"


async def test_a_mapped_model_goes_upstream_by_its_upstream_name(
    gateway: Served, sims: list[Simulator]
) -> None:
    await add(gateway, sims[0], "mapped", model_mapping={MODEL: "deepseek-v3-0324"})
    mkey, key = await customer(gateway, "1")
    raw = await chat(gateway, key)
    assert raw.parse().choices[0].message.content
    assert sims[0].stats.recent[-1]["body"]["model"] == "deepseek-v3-0324"
    (record,) = await usage_records(gateway, mkey)
    assert record["model"] == MODEL


async def test_calls_of_one_user_stick_to_one_channel(
    gateway: Served, sims: list[Simulator]
) -> None:
    for i, sim in enumerate(sims):
        await add(gateway, sim, f"c{i}")
    _, key = await customer(gateway, "1")
    for _ in range(12):
        await chat(gateway, key, user="alice")
    assert sorted(calls(s) for s in sims) == [0, 0, 12]
    for i in range(30):
        await chat(gateway, key, user=f"user{i}")
    assert all(calls(s) > 0 for s in sims)  # without one key, calls spread


async def test_cheapest_goes_to_the_cheaper_upstream_and_records_its_cost(
    database_url: str, catalog_models: list[Model], sims: list[Simulator]
) -> None:
    settings = test_settings(database_url, routing_strategy="cheapest")
    async with serve(settings, catalog_models) as served:
        await add(served, sims[0], "dear", cost={"multiplier": "0.9"})
        cheap = await add(served, sims[1], "cheap", cost={"multiplier": "0.5"})
        mkey, key = await customer(served, "1")
        for _ in range(5):
            await chat(served, key)
        assert (calls(sims[0]), calls(sims[1])) == (0, 5)
        for record in await usage_records(served, mkey):
            assert record["channel_id"] == cheap["id"]
            revenue = Decimal(record["cost_usd"])
            paid = Decimal(record["upstream_cost_usd"])
            assert abs(paid - revenue / 2) <= Decimal("0.000000001")
        records = await usage_records(served, mkey)
        revenue = sum(Decimal(r["cost_usd"]) for r in records)
        paid = sum(Decimal(r["upstream_cost_usd"]) for r in records)
        got = await served.admin.get("/api/usage/margins", params={"by": "channel"})
        (row,) = got.json()["data"]
        assert row["channel"] == cheap["id"] and row["channel_name"] == "cheap"
        assert (row["calls"], row["calls_with_cost"]) == (5, 5)
        assert Decimal(row["revenue_usd"]) == revenue
        assert Decimal(row["upstream_cost_usd"]) == paid
        assert Decimal(row["margin_usd"]) == revenue - paid
        by_model = (await served.admin.get("/api/usage/margins")).json()["data"]
        assert [r["model"] for r in by_model] == [MODEL]
        bad = await served.admin.get("/api/usage/margins", params={"by": "weather"})
        assert bad.status_code == 400


async def test_a_channel_that_keeps_failing_cools_down(
    gateway: Served, sims: list[Simulator]
) -> None:
    sims[0].update_config(error_rate=1.0)
    await add(gateway, sims[0], "flaky", priority=10)
    await add(gateway, sims[1], "steady")
    _, key = await customer(gateway, "1")
    for _ in range(3):
        raw = await chat(gateway, key)
        assert raw.headers["x-tollway-attempts"] == "2"
    raw = await chat(gateway, key)  # the breaker is open: steady first
    assert "x-tollway-attempts" not in raw.headers
    assert calls(sims[0]) == 3
    seen = await channel(gateway, 1)
    assert seen["health"]["breaker"] == "open" and seen["health"]["cooling_until"]


async def test_the_probe_enables_a_channel_whose_upstream_came_back(
    database_url: str, catalog_models: list[Model], sims: list[Simulator]
) -> None:
    async with serve(test_settings(database_url, channel_probe_s=1), catalog_models) as served:
        sims[0].update_config(api_key="another-key")
        bad = await add(served, sims[0], "revoked", priority=10)
        await add(served, sims[1], "good")
        _, key = await customer(served, "1")
        await chat(served, key)
        for _ in range(50):
            if (await channel(served, bad["id"]))["status"] == "auto_disabled":
                break
            await asyncio.sleep(0.05)
        assert (await channel(served, bad["id"]))["status"] == "auto_disabled"
        sims[0].update_config(api_key="sim-key")
        for _ in range(60):  # probed every second
            if (await channel(served, bad["id"]))["status"] == "enabled":
                break
            await asyncio.sleep(0.1)
        assert (await channel(served, bad["id"]))["status"] == "enabled"


async def test_a_request_one_channels_api_cannot_carry_goes_to_another_or_is_refused(
    gateway: Served, sims: list[Simulator]
) -> None:
    root = sims[0].base_url.removesuffix("/v1")
    anthropic = await add(gateway, sims[0], "claude", type="anthropic", base_url=root, priority=5)
    mkey, key = await customer(gateway, "1")
    two = {"model": "claude-haiku-4-5", "messages": HELLO, "n": 2, "max_tokens": 20}
    async with gateway.client(key) as client:
        refused = await client.post("/v1/chat/completions", json=two)
    assert refused.status_code == 400 and refused.json()["error"]["param"] == "n"
    (record,) = await usage_records(gateway, mkey)
    assert record["status"] == "refused" and record["cost_usd"] == "0"
    assert record["channel_id"] == anthropic["id"]
    assert (await gateway.me_at_rest(mkey))["balance_usd"] == "1"
    await add(gateway, sims[1], "openai-compatible")  # priority 0: tried after
    async with gateway.client(key) as client:
        served = await client.post("/v1/chat/completions", json=two)
    assert served.status_code == 200 and len(served.json()["choices"]) == 2
    assert "x-tollway-attempts" not in served.headers  # one upstream was asked
    assert calls(sims[0]) == 0  # the Anthropic channel was never sent it


async def test_a_group_at_0_8_holds_charges_and_quotes_exactly_0_8(
    gateway: Served, sims: list[Simulator]
) -> None:
    await add(gateway, sims[0], "everyone", groups=["default"])
    got = await gateway.admin.post("/api/groups", json={"name": "wholesale", "multiplier": "0.8"})
    assert got.status_code == 201, got.text
    await add(gateway, sims[1], "wholesale", groups=["wholesale"])
    body = {"model": MODEL, "messages": HELLO, "max_tokens": 1000}
    # What the call holds, quoted for a default token and a wholesale one.
    list_price = await customer(gateway, "1")
    wholesale_account = await gateway.new_account("0")
    edit = {"groups": ["default", "wholesale"]}
    got = await gateway.admin.patch(f"/api/users/{wholesale_account['id']}", json=edit)
    assert got.status_code == 200, got.text
    mkey = wholesale_account["management_key"]
    token = await gateway.new_token(mkey, group="wholesale")
    holds = []
    for key in (list_price[0], mkey):
        async with gateway.client(key) as c:
            own = (await c.get("/api/tokens")).json()["data"][0]["id"]
            quote = await c.post("/api/quote", json={"model": MODEL, "token_id": own,
                                                     "request": body})  # fmt: skip
        assert quote.status_code == 200, quote.text
        holds.append(Decimal(quote.json()["cost_usd"]))
    full, scaled = holds
    assert scaled == (full * Decimal("0.8")).quantize(Decimal("0.000000001"))
    # Credit exactly the wholesale hold: it fits at 0.8, and would not at 1.
    got = await gateway.admin.post(
        f"/api/users/{wholesale_account['id']}/credit",
        json={"amount_usd": str(scaled), "reason": "exactly the hold"},
    )
    assert got.status_code == 200
    at_list_price = await gateway.new_token(mkey, group="default")
    async with gateway.client(at_list_price["key"]) as c:
        short = await c.post("/v1/chat/completions", json=body)
    assert short.status_code == 402, short.text  # the same hold at x1 does not fit
    async with gateway.client(token["key"]) as c:
        answer = await c.post("/v1/chat/completions", json=body)
    assert answer.status_code == 200, answer.text
    assert calls(sims[1]) == 1 and calls(sims[0]) == 0  # the group's own channel
    (record,) = await usage_records(gateway, mkey)
    assert (record["group"], record["multiplier"]) == ("wholesale", "0.8")
    nano = sum(
        Decimal(record["tokens"][name]) * Decimal(price) * 1000
        for name, price in record["unit_prices_usd"].items()
    )  # USD per 1M tokens x 10**9 / 10**6: nano-USD, exact, before the one rounding
    exact = nano * Decimal("0.8")
    charged = int(exact.to_integral_value(rounding="ROUND_HALF_UP"))
    assert Decimal(record["cost_usd"]) == Decimal(charged) / 10**9
    assert Decimal(answer.headers["x-tollway-cost-usd"]) == Decimal(record["cost_usd"])
