"""Chat completions through a served gateway, driven by the official SDK:
the charge to the nano-USD, the usage record, and the headers."""

from __future__ import annotations

import asyncio
import itertools
from decimal import Decimal
from typing import Any

import openai
import pytest

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records

HELLO = [{"role": "user", "content": "Hello there"}]
# The simulator counts 3 + (3 + words) per message: 8 prompt tokens; 16 out.
# gpt-4o at $5 / $15 per 1M: 8 x 5,000 + 16 x 15,000 nano-USD.
HELLO_COST_NANO = 8 * 5_000 + 16 * 15_000


async def test_non_stream_charge_header_and_record(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HELLO)
    completion = raw.parse()
    assert completion.usage is not None
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (8, 16)
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert raw.headers["x-tollway-cost-usd"] == "0.00028"
    assert await served.balance_usd(mkey) == str(Decimal(10) - Decimal("0.00028"))
    [record] = await usage_records(served, mkey)
    assert record["request_id"] == raw.headers["x-request-id"]
    assert record["model"] == "gpt-4o"
    assert record["billing_mode"] == "pay_per_use_priority"
    assert record["method"] == "per_use"
    assert record["tokens"]["input_tokens"] == 8
    assert record["tokens"]["output_tokens"] == 16
    assert record["unit_prices_usd"] == {"input_tokens": "5", "output_tokens": "15"}
    assert record["cost_usd"] == "0.00028"
    assert record["usage_source"] == "upstream"
    assert record["status"] == "ok"


async def test_stream_without_include_usage_is_billed_but_unchanged(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(model="gpt-4o", messages=HELLO, stream=True)
        chunks = [chunk async for chunk in stream]
    assert all(chunk.usage is None for chunk in chunks)
    assert all(chunk.choices for chunk in chunks), "the usage chunk the gateway asked for leaked"
    text = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert len(text.split()) == 16
    [record] = await usage_records(served, mkey)
    assert record["cost_usd"] == "0.00028"
    assert record["usage_source"] == "upstream"
    assert await served.balance_usd(mkey) == "9.99972"


async def test_stream_raw_bytes_carry_no_usage_fields(served: Served) -> None:
    _, key = await customer(served)
    body = {"model": "gpt-4o", "messages": HELLO, "stream": True}
    async with served.client(key) as c:
        got = await c.post("/v1/chat/completions", json=body)
    assert got.status_code == 200
    assert got.headers["x-tollway-billing-method"] == "per_use"
    assert "x-tollway-cost-usd" not in got.headers  # unknown when headers go out
    assert b'"usage"' not in got.content
    assert got.content.rstrip().endswith(b"data: [DONE]")


async def test_each_upstream_chunk_is_forwarded_as_it_arrives(served: Served) -> None:
    """The upstream sends a content chunk every 150 ms: the client gets each
    one about then, not gathered up (a re-buffering gateway would deliver
    them together at the end)."""
    _, key = await customer(served)
    slow = [{"role": "user", "content": "Hi [sim:tokens=5] [sim:chunk_delay_ms=150]"}]
    arrived: list[float] = []
    loop = asyncio.get_running_loop()
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(model="gpt-4o", messages=slow, stream=True)
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                arrived.append(loop.time())
        ended = loop.time()
    assert len(arrived) == 5
    gaps = [later - earlier for earlier, later in itertools.pairwise(arrived)]
    assert min(gaps) > 0.075, gaps  # half the upstream's spacing: none came bunched
    assert ended - arrived[0] > 0.45  # the first was read ~4 x 150 ms before the end


async def test_stream_with_include_usage_shows_it(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
        chunks = [chunk async for chunk in stream]
    usage = chunks[-1].usage
    assert usage is not None and (usage.prompt_tokens, usage.completion_tokens) == (8, 16)
    [record] = await usage_records(served, mkey)
    assert record["cost_usd"] == "0.00028"


async def test_cached_and_reasoning_tokens_are_priced_by_class(served: Served) -> None:
    mkey, key = await customer(served)
    # 3 + 3 + 4 words = 10 prompt tokens, 6 of them cached; 5 visible + 7 reasoning out
    messages = [{"role": "user", "content": "x [sim:tokens=5] [sim:cached=6] [sim:reasoning=7]"}]
    async with sdk(served, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=messages
        )
    # gpt-4o cached input: see its catalog price
    async with served.client(mkey) as c:
        model = (await c.get("/api/models/gpt-4o")).json()
    cached_mtok = Decimal(model["per_use"].get("cached_input_mtok", model["per_use"]["input_mtok"]))
    expected = (4 * Decimal(5) + 6 * cached_mtok + 12 * Decimal(15)) / 1_000_000
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["cached_input_tokens"] == 6
    assert record["tokens"]["reasoning_tokens"] == 7
    assert record["tokens"]["output_tokens"] == 12


async def test_no_usage_from_upstream_is_counted_and_marked(served: Served) -> None:
    mkey, key = await customer(served)
    messages = [{"role": "user", "content": "Count me [sim:no_usage]"}]
    async with sdk(served, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="gpt-4o", messages=messages
        )
    assert raw.parse().usage is None
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "estimated"
    assert record["tokens"]["input_tokens"] > 0
    assert record["tokens"]["output_tokens"] > 0
    assert Decimal(record["cost_usd"]) > 0
    assert raw.headers["x-tollway-cost-usd"] == record["cost_usd"]


async def test_dropped_stream_bills_what_was_generated(served: Served) -> None:
    mkey, key = await customer(served)
    messages = [{"role": "user", "content": "go [sim:tokens=40] [sim:drop_after=5]"}]
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model="gpt-4o", messages=messages, stream=True
        )
        with pytest.raises(openai.APIError, match="upstream stopped"):
            async for _ in stream:
                pass
    [record] = await usage_records(served, mkey)
    assert record["status"] == "upstream_interrupted"
    assert record["usage_source"] == "estimated"
    assert 0 < record["tokens"]["output_tokens"] < 40


async def test_client_disconnect_mid_stream_pays_for_what_was_generated(served: Served) -> None:
    mkey, key = await customer(served)
    messages = [{"role": "user", "content": "slow [sim:tokens=200] [sim:chunk_delay_ms=20]"}]
    body = {"model": "gpt-4o", "messages": messages, "stream": True}
    async with served.client(key) as c, c.stream("POST", "/v1/chat/completions", json=body) as got:
        seen = 0
        async for _ in got.aiter_bytes():
            seen += 1
            if seen >= 3:
                break
    records: list[dict[str, Any]] = []
    for _ in range(100):  # the gateway settles once it notices the client is gone
        records = await usage_records(served, mkey)
        if records:
            break
        await asyncio.sleep(0.05)
    [record] = records
    assert record["status"] == "client_disconnected"
    assert record["usage_source"] == "estimated"
    assert 0 < record["tokens"]["output_tokens"] < 200
    spent = Decimal(10) - Decimal(await served.balance_usd(mkey))
    assert spent == Decimal(record["cost_usd"]) > 0


async def test_alias_per_call_model_and_n(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    async with sdk(served, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="deepseek-v3", messages=HELLO, n=2
        )
    assert raw.headers["x-tollway-billing-method"] == "per_call"
    assert raw.headers["x-tollway-cost-usd"] == "0.004"  # $0.002 a call x 2 items
    [record] = await usage_records(served, mkey)
    assert record["model"] == "deepseek-chat"
    assert record["items"] == 2


async def test_embeddings_are_billed_per_input_token(served: Served, simulator: Simulator) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.embeddings.with_raw_response.create(
            model="text-embedding-3-small", input=["one two three", "four"]
        )
    result = raw.parse()
    assert len(result.data) == 2 and result.usage.prompt_tokens == 4
    async with served.client(mkey) as c:
        price = Decimal(
            (await c.get("/api/models/text-embedding-3-small")).json()["per_use"]["input_mtok"]
        )
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == 4 * price / 1_000_000
    [record] = await usage_records(served, mkey)
    assert record["endpoint"] == "embeddings"


# --- per-call streams charge the choices delivered ------------------------------


async def settled_records(served: Served, mkey: str) -> list[dict[str, Any]]:
    """The usage records once the gateway has closed the call (it settles or
    releases when it notices the client is gone)."""
    for _ in range(100):
        records = await usage_records(served, mkey)
        if records:
            return records
        await asyncio.sleep(0.05)
    return []


async def per_call_stream(served: Served, key: str, content: str, n: int) -> None:
    messages = [{"role": "user", "content": content}]
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model="deepseek-chat", messages=messages, stream=True, n=n
        )
        with pytest.raises(openai.APIError, match="upstream stopped"):
            async for _ in stream:
                pass


async def test_per_call_stream_cut_before_any_content_costs_nothing(served: Served) -> None:
    """n: 3, the upstream drops after the role chunks: no choice reached the
    client, so nothing is charged (the hold is released)."""
    mkey, key = await customer(served, billing_mode="pay_per_call")
    await per_call_stream(served, key, "go [sim:tokens=10] [sim:drop_after=0]", n=3)
    [record] = await settled_records(served, mkey)
    assert (record["status"], record["method"]) == ("upstream_interrupted", "per_call")
    assert (record["items"], record["cost_usd"]) == (0, "0")
    assert (await served.me_at_rest(mkey))["balance_usd"] == "10"


async def test_per_call_stream_cut_midway_charges_the_choices_delivered(served: Served) -> None:
    """Chunks interleave the choices: after 2 content chunks, choices 0 and 1
    have content and choice 2 has none, so 2 of the 3 items are charged."""
    mkey, key = await customer(served, billing_mode="pay_per_call")
    await per_call_stream(served, key, "go [sim:tokens=10] [sim:drop_after=2]", n=3)
    [record] = await settled_records(served, mkey)
    assert (record["status"], record["items"]) == ("upstream_interrupted", 2)
    assert record["cost_usd"] == "0.004"  # deepseek-chat: $0.002 a call
    assert (await served.me_at_rest(mkey))["balance_usd"] == "9.996"


async def test_per_call_stream_whole_charges_every_choice(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    messages = [{"role": "user", "content": "go [sim:tokens=3]"}]
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model="deepseek-chat", messages=messages, stream=True, n=3
        )
        chunks = [chunk async for chunk in stream]
    assert {choice.index for chunk in chunks for choice in chunk.choices} == {0, 1, 2}
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["items"], record["cost_usd"]) == ("ok", 3, "0.006")


async def test_per_call_client_gone_before_any_content_costs_nothing(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    messages = [{"role": "user", "content": "slow [sim:tokens=5] [sim:chunk_delay_ms=3000]"}]
    body = {"model": "deepseek-chat", "messages": messages, "stream": True, "n": 2}
    async with served.client(key) as c, c.stream("POST", "/v1/chat/completions", json=body) as got:
        assert got.status_code == 200  # the headers came; the client leaves at once
    [record] = await settled_records(served, mkey)
    assert (record["status"], record["items"], record["cost_usd"]) == (
        "client_disconnected",
        0,
        "0",
    )
    assert (await served.me_at_rest(mkey))["balance_usd"] == "10"


@pytest.mark.parametrize("answered", [0, 1])
async def test_per_call_answer_with_fewer_choices_is_charged_by_those_returned(
    served: Served, answered: int
) -> None:
    """n: 3 asked, the upstream answers ``answered`` choices: that many items."""
    mkey, key = await customer(served, billing_mode="pay_per_call")
    messages = [{"role": "user", "content": f"go [sim:tokens=3] [sim:choices={answered}]"}]
    async with sdk(served, key) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="deepseek-chat", messages=messages, n=3
        )
    assert len(raw.parse().choices) == answered
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["items"]) == ("ok", answered)
    assert Decimal(record["cost_usd"]) == Decimal("0.002") * answered
    assert raw.headers["x-tollway-cost-usd"] == record["cost_usd"]


@pytest.mark.parametrize("answered", [0, 1])
async def test_per_call_stream_with_fewer_choices_is_charged_by_those_delivered(
    served: Served, answered: int
) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    messages = [{"role": "user", "content": f"go [sim:tokens=3] [sim:choices={answered}]"}]
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model="deepseek-chat", messages=messages, stream=True, n=3
        )
        chunks = [chunk async for chunk in stream]
    assert {choice.index for chunk in chunks for choice in chunk.choices} == set(range(answered))
    [record] = await settled_records(served, mkey)
    assert (record["status"], record["items"]) == ("ok", answered)
    assert Decimal(record["cost_usd"]) == Decimal("0.002") * answered
    assert Decimal((await served.me_at_rest(mkey))["balance_usd"]) == 10 - Decimal(
        record["cost_usd"]
    )
