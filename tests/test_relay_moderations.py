"""Moderations (POST /v1/moderations) through a served gateway and the
simulator, driven by the official SDK: free by default yet recorded (a usage
record at 0 for every call, in every billing mode), billed by the counted
input tokens once an operator prices the model, and hostile bodies refused
before anything is held or sent."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st
from openai.types import ModerationImageURLInputParam, ModerationTextInputParam

from tollway.simulator import Simulator
from tollway.types import TOKENS_PER_MTOK, usd_to_nano

from conftest import Served, customer, sdk, usage_records
from fuzzing import FUZZ, assert_json_error, dump, values

MODERATIONS = "/v1/moderations"
JSON = {"content-type": "application/json"}


def sent_upstream(simulator: Simulator) -> int:
    return simulator.stats.by_path.get(MODERATIONS, 0)


@pytest.mark.parametrize("mode", ["pay_per_use_priority", "pay_per_use", "pay_per_call"])
async def test_moderation_is_free_and_still_recorded(served: Served, mode: str) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    async with sdk(served, key) as client:
        raw = await client.moderations.with_raw_response.create(input="I will attack them")
        plain = await client.moderations.create(
            model="text-moderation-latest", input=["hello there", "you idiot"]
        )
    answer = raw.parse()
    assert answer.model == "omni-moderation-2024-09-26"  # the default, as OpenAI answers
    assert answer.results[0].flagged and answer.results[0].categories.violence
    assert [r.flagged for r in plain.results] == [False, True]
    assert raw.headers["x-tollway-cost-usd"] == "0"
    assert raw.headers["x-tollway-billing-method"] == (
        "per_call" if mode == "pay_per_call" else "per_use"
    )
    assert await served.balance_usd(mkey) == "10"
    records = await usage_records(served, mkey)
    assert [(r["model"], r["endpoint"], r["cost_usd"], r["status"]) for r in records] == [
        ("text-moderation-latest", "moderations", "0", "ok"),
        ("omni-moderation-latest", "moderations", "0", "ok"),
    ]
    assert records[-1]["request_id"] == raw.headers["x-request-id"]


async def test_a_multimodal_input_is_one_result(served: Served) -> None:
    _, key = await customer(served)
    async with sdk(served, key) as client:
        text: ModerationTextInputParam = {"type": "text", "text": "a quiet lake"}
        image: ModerationImageURLInputParam = {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,AA=="},
        }
        parts: list[ModerationTextInputParam | ModerationImageURLInputParam] = [text, image]
        answer = await client.moderations.create(model="omni-moderation-latest", input=parts)
    [result] = answer.results
    assert not result.flagged
    assert result.category_applied_input_types.violence == ["text", "image"]
    assert result.category_applied_input_types.hate == ["text"]


async def test_a_priced_moderation_model_is_billed_by_its_counted_input(
    served: Served,
) -> None:
    edited = await served.admin.patch(
        "/api/models/omni-moderation-2024-09-26",
        json={"per_use": {"input_mtok": "0.5", "output_mtok": "0"}},
    )
    assert edited.status_code == 200, edited.text
    await asyncio.sleep(0.3)  # the edit reaches the gateway's state
    mkey, key = await customer(served)
    texts = ["the first text to check", "and a second one"]
    async with sdk(served, key) as client:
        raw = await client.moderations.with_raw_response.create(
            model="omni-moderation-2024-09-26", input=texts
        )
    counter = await served.gw.counter.ready()
    tokens = sum(counter.count(text) for text in texts)
    exact = Fraction(tokens * usd_to_nano("0.5"), TOKENS_PER_MTOK)
    cost = (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)
    assert cost > 0
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["input_tokens"] == tokens
    assert record["usage_source"] == "estimated"  # moderation upstreams report no usage
    assert record["cost_usd"] == raw.headers["x-tollway-cost-usd"]
    assert usd_to_nano(record["cost_usd"]) == cost
    assert Decimal("10") - Decimal(await served.balance_usd(mkey)) == Decimal(record["cost_usd"])


async def test_an_upstream_error_releases_and_records(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        with pytest.raises(openai.BadRequestError):
            await client.moderations.create(input="hello [sim:error=400]")
    [record] = await usage_records(served, mkey)
    assert (record["status"], record["cost_usd"]) == ("upstream_error", "0")


async def test_another_kind_is_refused_before_anything_is_sent(
    served: Served, simulator: Simulator
) -> None:
    _, key = await customer(served)
    sent = sent_upstream(simulator)
    async with sdk(served, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.moderations.create(model="gpt-4o", input="hello")
    assert refused.value.code == "wrong_endpoint"
    assert sent_upstream(simulator) == sent


HOSTILE = [
    {"input": None},
    {"input": []},
    {"input": 3},
    {"input": ["a", 1]},
    {"input": ["a"] * 2049},
    {"input": [{"type": "text"}]},
    {"input": [{"type": "image_url", "image_url": "x"}]},
    {"input": [{"type": "audio", "audio": "x"}]},
    {"input": ["a", {"type": "text", "text": "b"}]},
    {"model": 3},
    {"model": None},
    {"model": "no-such-model"},
]


@pytest.mark.parametrize("change", HOSTILE, ids=lambda c: dump(c)[:40])
async def test_a_hostile_field_is_a_4xx_that_changes_nothing(
    served: Served, simulator: Simulator, change: dict[str, Any]
) -> None:
    mkey, key = await customer(served)
    sent = sent_upstream(simulator)
    async with served.client(key) as c:
        got = await c.post(MODERATIONS, content=dump({"input": "hi", **change}), headers=JSON)
    assert 400 <= got.status_code < 500, got.text
    assert_json_error(got)
    assert sent_upstream(simulator) == sent
    assert await served.balance_usd(mkey) == "10"
    assert await usage_records(served, mkey) == []


async def test_any_body_is_answered_without_a_5xx(served: Served) -> None:
    mkey, key = await customer(served)
    part = st.one_of(
        st.fixed_dictionaries({"type": st.just("text"), "text": st.one_of(st.text(), values)}),
        st.fixed_dictionaries(
            {"type": st.just("image_url"), "image_url": st.fixed_dictionaries({"url": values})}
        ),
        values,
    )
    inputs = st.one_of(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=3),
                       st.lists(part, max_size=3), values)  # fmt: skip
    model = st.one_of(st.just("omni-moderation-latest"), values)
    body = st.fixed_dictionaries({}, optional={"input": inputs, "model": model})

    def check(base_url: str) -> None:
        owner = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {mkey}"})
        caller = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})

        @FUZZ
        @given(body)
        def one(sent: dict[str, Any]) -> None:
            got = caller.post(MODERATIONS, content=dump(sent), headers=JSON)
            assert got.status_code < 500, (sent, got.text[:300])
            if got.status_code >= 400:
                assert_json_error(got)
            assert owner.get("/api/me").json()["balance_usd"] == "10"  # free either way

        try:
            one()
        finally:
            owner.close()
            caller.close()

    await asyncio.to_thread(check, served.base_url)
