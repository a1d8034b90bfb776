"""The hold is the most a call can cost (SPEC §4), end to end: a call whose
worst case does not fit is refused before it goes upstream; an upstream that
still reports more is charged in full, flagged, and stops the next call; the
quote of a body is the hold the same body gets."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import orjson

from tollway.simulator import Simulator
from tollway.types import nano_to_usd, usd_to_nano

from conftest import Served, customer, usage_records

IMAGE = {"type": "image_url", "image_url": {"url": "http://x/a.png"}}


def many_images(count: int) -> dict[str, Any]:
    """The hostile run's call: one user message of ``count`` image parts."""
    return {
        "model": "gpt-4o",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": [IMAGE] * count}],
    }


async def post_chat(served: Served, key: str, body: dict[str, Any]) -> Any:
    async with served.client(key) as c:
        return await c.post(
            "/v1/chat/completions",
            content=orjson.dumps(body),
            headers={"content-type": "application/json"},
        )


async def test_images_cannot_spend_past_balance_and_quota(
    served: Served, simulator: Simulator
) -> None:
    # The simulator bills 85 tokens an image: 300 images cost $0.1275 at gpt-4o's $5/1M,
    # more than the $0.05 the account and its token have.
    mkey, key = await customer(served, "0.05", quota_usd="0.05")
    sent = simulator.stats.requests
    got = await post_chat(served, key, many_images(300))
    assert got.status_code == 402, got.text
    assert got.json()["error"]["code"] == "insufficient_quota"
    assert simulator.stats.requests == sent, "the call went upstream"
    assert await served.balance_usd(mkey) == "0.05"
    assert await usage_records(served, mkey) == []


async def test_an_upstream_reporting_more_than_held_is_charged_in_full_and_flagged(
    served: Served,
) -> None:
    mkey, key = await customer(served, "1")
    body = {
        "model": "gpt-4o",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "[sim:prompt_tokens=1000000] [sim:tokens=1]"}],
    }
    got = await post_chat(served, key, body)
    assert got.status_code == 200, got.text
    cost = Decimal(5) + Decimal("0.000015")  # 1M prompt tokens at $5/1M, one at $15/1M
    assert got.headers["x-tollway-cost-usd"] == str(cost)
    [record] = await usage_records(served, mkey)
    assert record["exceeded_hold"] is True
    assert record["cost_usd"] == str(cost)
    assert Decimal(await served.balance_usd(mkey)) == 1 - cost

    # Below zero: the next call is refused, whatever it would cost.
    again = await post_chat(served, key, {**body, "messages": [{"role": "user", "content": "hi"}]})
    assert again.status_code == 402, again.text
    me = await served.me_at_rest(mkey)
    assert Decimal(me["balance_usd"]) == 1 - cost
    assert len(await usage_records(served, mkey)) == 1


async def test_a_quota_overrun_by_an_upstream_stops_the_tokens_next_call(served: Served) -> None:
    mkey, key = await customer(served, "100", quota_usd="1")
    body = {
        "model": "gpt-4o",
        "max_tokens": 1,
        "messages": [{"role": "user", "content": "[sim:prompt_tokens=1000000] [sim:tokens=1]"}],
    }
    assert (await post_chat(served, key, body)).status_code == 200
    again = await post_chat(served, key, {**body, "messages": [{"role": "user", "content": "hi"}]})
    assert again.status_code == 402, again.text
    assert "quota" in again.json()["error"]["message"]
    async with served.client(mkey) as c:
        [token] = (await c.get("/api/tokens")).json()["data"]
    assert Decimal(token["used_usd"]) == Decimal("5.000015")


async def test_a_call_within_its_hold_is_not_flagged(served: Served) -> None:
    mkey, key = await customer(served, "1")
    got = await post_chat(served, key, many_images(3))
    assert got.status_code == 200, got.text
    [record] = await usage_records(served, mkey)
    assert record["exceeded_hold"] is False


async def quote_of(served: Served, body: dict[str, Any]) -> int:
    got = await served.admin.post(
        "/api/quote",
        json={"model": body["model"], "billing_mode": "pay_per_use_priority", "request": body},
    )
    assert got.status_code == 200, got.text
    return usd_to_nano(got.json()["cost_usd"])


async def test_the_quote_of_a_body_is_the_hold_it_gets(served: Served) -> None:
    body = many_images(4)
    body["messages"].append({"role": "user", "content": "and describe them in one word"})
    quoted = await quote_of(served, body)
    assert quoted > 4 * 1445 * 5000  # each image at gpt-4o's worst case

    _, short_key = await customer(served, nano_to_usd(quoted - 1))
    refused = await post_chat(served, short_key, body)
    assert refused.status_code == 402, refused.text
    assert f"up to ${nano_to_usd(quoted)}," in refused.json()["error"]["message"]

    _, exact_key = await customer(served, nano_to_usd(quoted))
    answered = await post_chat(served, exact_key, body)
    assert answered.status_code == 200, answered.text


async def test_holds_and_charges_past_any_balance_are_bounded(served: Served) -> None:
    """At the largest prices an admin may set, a hold past 64 bits is a 402,
    and a reported cost past any balance is charged the most there is."""
    most = "1000000000"
    priced = await served.admin.patch(
        "/api/models/gpt-4o-mini", json={"per_use": {"input_mtok": most, "output_mtok": most}}
    )
    assert priced.status_code == 200, priced.text
    mkey, key = await customer(served, most)
    huge = {"model": "gpt-4o-mini", "n": 128, "max_tokens": 10_000_000,
            "messages": [{"role": "user", "content": "hi"}]}  # fmt: skip
    got = await post_chat(served, key, huge)
    assert got.status_code == 402, got.text
    assert "more than any account may hold ($1000000000)" in got.json()["error"]["message"]

    prompt = "[sim:prompt_tokens=999999999999] hi"  # a trillion tokens at $1e9 a million
    body = {"model": "gpt-4o-mini", "max_tokens": 1,
            "messages": [{"role": "user", "content": prompt}]}  # fmt: skip
    got = await post_chat(served, key, body)
    assert got.status_code == 200, got.text
    [record] = await usage_records(served, mkey)
    assert record["cost_usd"] == most
    assert record["exceeded_hold"] is True
    assert Decimal((await served.me_at_rest(mkey))["balance_usd"]) == 0
