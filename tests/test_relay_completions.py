"""Legacy completions (POST /v1/completions) through a served gateway and the
simulator, driven by the official SDK: the charge to the nano-USD from the
upstream's prompt and completion tokens at the catalog's prices (streamed or
not, with the usage chunk asked for on the client's behalf and cut out
again), the usage record, and hostile bodies refused before anything is
held or sent."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from fractions import Fraction
from typing import Any

import httpx
import openai
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.simulator import Simulator
from tollway.types import TOKENS_PER_MTOK, BillingMode, Model, ModelKind, nano_to_usd

from conftest import Served, add_channel, customer, sdk, serve, test_settings, usage_records
from fuzzing import FUZZ, assert_json_error, dump, values

COMPLETIONS = "/v1/completions"
JSON = {"content-type": "application/json"}
PROMPT = "Say this is a test"  # the simulator counts words: 5 prompt tokens


def per_use_nano(served: Served, model: str, prompt: int, completion: int) -> int:
    """What the catalog's per-use price makes of these tokens, rounded once (half up)."""
    price = served.gw.state.catalog.get(model).per_use
    assert price is not None and price.input_mtok is not None and price.output_mtok is not None
    exact = Fraction(prompt * price.input_mtok + completion * price.output_mtok, TOKENS_PER_MTOK)
    return (2 * exact.numerator + exact.denominator) // (2 * exact.denominator)  # half up


def sent_upstream(simulator: Simulator) -> int:
    return simulator.stats.by_path.get(COMPLETIONS, 0)


async def test_a_completion_is_billed_by_the_upstreams_tokens(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt=PROMPT, max_tokens=7
        )
    answer = raw.parse()
    assert answer.object == "text_completion"
    assert len(answer.choices) == 1 and answer.choices[0].finish_reason == "length"
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (5, 7)
    cost = per_use_nano(served, "gpt-3.5-turbo-instruct", 5, 7)
    assert cost == 5 * 1_500 + 7 * 2_000  # $1.50 / $2.00 per 1M tokens
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert raw.headers["x-tollway-cost-usd"] == nano_to_usd(cost)
    assert Decimal("10") - Decimal(await served.balance_usd(mkey)) == Decimal(nano_to_usd(cost))
    [record] = await usage_records(served, mkey)
    assert (record["model"], record["endpoint"], record["method"]) == (
        "gpt-3.5-turbo-instruct",
        "completions",
        "per_use",
    )
    assert record["tokens"]["input_tokens"] == 5 and record["tokens"]["output_tokens"] == 7
    assert record["cost_usd"] == nano_to_usd(cost)
    assert record["usage_source"] == "upstream"
    assert record["request_id"] == raw.headers["x-request-id"]


async def test_several_prompts_n_and_best_of_are_billed_as_generated(served: Served) -> None:
    """Two prompts, n=2, best_of=3: four choices come back, six were generated
    and billed (usage.completion_tokens says so)."""
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.completions.with_raw_response.create(
            model="davinci-002", prompt=["one two", "three"], n=2, best_of=3, max_tokens=4,
            echo=True, logprobs=1, suffix="end here",
        )  # fmt: skip
    answer = raw.parse()
    assert [c.index for c in answer.choices] == [0, 1, 2, 3]
    assert answer.choices[0].text.startswith("one two")  # echoed
    assert answer.choices[0].logprobs is not None
    assert answer.usage is not None
    prompt = 2 + 1 + 2  # the prompts' words and the suffix's
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (prompt, 4 * 3 * 2)
    cost = per_use_nano(served, "davinci-002", prompt, 24)
    assert raw.headers["x-tollway-cost-usd"] == nano_to_usd(cost)
    [record] = await usage_records(served, mkey)
    assert record["cost_usd"] == nano_to_usd(cost)


@pytest.mark.parametrize("include_usage", [False, True])
async def test_a_streamed_completion_is_billed_from_its_usage_chunk(
    served: Served, simulator: Simulator, include_usage: bool
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.completions.create(
            model="babbage-002", prompt=PROMPT, max_tokens=6, n=2, stream=True,
            stream_options={"include_usage": True} if include_usage else openai.omit,
        )  # fmt: skip
        chunks = [chunk async for chunk in stream]
    assert all(chunk.object == "text_completion" for chunk in chunks)
    texts = ["".join(c.choices[0].text for c in chunks if c.choices and c.choices[0].index == i)
             for i in (0, 1)]  # fmt: skip
    assert all(len(text.split()) == 6 for text in texts)
    usage_chunks = [chunk for chunk in chunks if chunk.usage is not None]
    # The gateway asked the upstream for usage; the client sees it only if it asked too.
    assert simulator.stats.recent[-1]["body"]["stream_options"] == {"include_usage": True}
    assert len(usage_chunks) == (1 if include_usage else 0)
    cost = per_use_nano(served, "babbage-002", 5, 12)
    [record] = await usage_records(served, mkey)
    assert record["cost_usd"] == nano_to_usd(cost)
    assert (record["tokens"]["input_tokens"], record["tokens"]["output_tokens"]) == (5, 12)
    assert record["usage_source"] == "upstream" and record["status"] == "ok"


async def test_without_usage_the_gateway_counts_the_tokens(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.completions.with_raw_response.create(
            model="gpt-3.5-turbo-instruct", prompt=f"{PROMPT} [sim:no_usage]", max_tokens=3
        )
    text = raw.parse().choices[0].text
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "estimated"
    counter = await served.gw.counter.ready()
    prompt, output = counter.count(f"{PROMPT} [sim:no_usage]"), counter.count(text)
    assert (record["tokens"]["input_tokens"], record["tokens"]["output_tokens"]) == (prompt, output)
    assert record["cost_usd"] == nano_to_usd(
        per_use_nano(served, "gpt-3.5-turbo-instruct", prompt, output)
    )


async def test_an_interrupted_stream_pays_for_what_was_delivered(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.completions.create(
            model="gpt-3.5-turbo-instruct", prompt=f"{PROMPT} [sim:drop_after=3]",
            max_tokens=10, stream=True,
        )  # fmt: skip
        with pytest.raises(openai.APIError):
            async for _ in stream:
                pass
    [record] = await usage_records(served, mkey)
    assert record["status"] == "upstream_interrupted"
    assert record["usage_source"] == "estimated"
    assert 0 < record["tokens"]["output_tokens"] <= 3 * 2  # three words delivered


async def test_chat_and_other_kinds_are_refused_before_anything_is_sent(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    sent = sent_upstream(simulator)
    async with sdk(served, key) as client:
        with pytest.raises(openai.BadRequestError) as refused:
            await client.completions.create(model="gpt-4o", prompt=PROMPT)
        with pytest.raises(openai.BadRequestError):
            await client.completions.create(model="dall-e-3", prompt=PROMPT)
    assert refused.value.code == "wrong_endpoint"
    assert "POST /v1/chat/completions" in refused.value.message
    assert sent_upstream(simulator) == sent
    assert await served.balance_usd(mkey) == "10"


async def test_the_hold_counts_every_generated_choice(served: Served) -> None:
    """max_tokens x best_of x prompts at the output price, more than $0.01 here."""
    mkey, key = await customer(served, credit="0.01")
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as short:
            await client.completions.create(
                model="davinci-002", prompt=["a", "b"], best_of=20, max_tokens=200_000
            )
        ok = await client.completions.create(model="davinci-002", prompt="a", max_tokens=2)
    assert short.value.status_code == 402
    assert ok.usage is not None
    assert Decimal("0.01") - Decimal(await served.balance_usd(mkey)) == Decimal(
        nano_to_usd(per_use_nano(served, "davinci-002", 1, 2))
    )


async def test_completion_models_are_listed(served: Served) -> None:
    _, key = await customer(served)
    async with served.client(key) as c:
        ids = {m["id"] for m in (await c.get("/v1/models")).json()["data"]}
    assert {"gpt-3.5-turbo-instruct", "davinci-002", "babbage-002"} <= ids


HOSTILE = [
    {"prompt": None},
    {"prompt": []},
    {"prompt": [1, "a"]},
    {"prompt": [[1, 2], []]},
    {"prompt": [-1]},
    {"prompt": [2**40]},
    {"prompt": [True]},
    {"prompt": ["a"] * 2049},
    {"prompt": {"text": "a"}},
    {"n": 0},
    {"n": 129},
    {"n": "2"},
    {"best_of": 21},
    {"n": 3, "best_of": 2},
    {"best_of": 3, "stream": True},
    {"max_tokens": -1},
    {"max_tokens": 1.5},
    {"logprobs": 6},
    {"echo": "yes"},
    {"stream": 1},
    {"suffix": 3},
    {"stop": ["a", "b", "c", "d", "e"]},
    {"stop": [1]},
    {"stream_options": {"include_usage": "yes"}},
    {"stream_options": []},
]


@pytest.mark.parametrize("change", HOSTILE, ids=lambda c: dump(c)[:40])
async def test_a_hostile_field_is_a_400_that_changes_nothing(
    served: Served, simulator: Simulator, change: dict[str, Any]
) -> None:
    mkey, key = await customer(served)
    sent = sent_upstream(simulator)
    body = {"model": "gpt-3.5-turbo-instruct", "prompt": PROMPT, **change}
    async with served.client(key) as c:
        got = await c.post(COMPLETIONS, content=dump(body), headers=JSON)
    assert got.status_code == 400, got.text
    assert_json_error(got)
    assert sent_upstream(simulator) == sent
    assert await served.balance_usd(mkey) == "10"


def prompts() -> st.SearchStrategy[Any]:
    token_ids = st.lists(st.integers(-2, 2**33), min_size=0, max_size=4)
    return st.one_of(
        st.text(max_size=20),
        st.lists(st.text(max_size=8), max_size=4),
        token_ids,
        st.lists(token_ids, max_size=3),
        values,
    )


async def test_any_body_is_answered_without_a_5xx_or_a_charge_when_refused(
    served: Served,
) -> None:
    mkey, key = await customer(served)
    fields = {
        "prompt": prompts(),
        "n": st.one_of(st.integers(-1, 130), values),
        "best_of": st.one_of(st.integers(-1, 22), values),
        "max_tokens": st.one_of(st.integers(-1, 20), values),
        "logprobs": st.one_of(st.integers(-1, 6), values),
        "echo": values,
        "stream": st.one_of(st.booleans(), values),
        "suffix": values,
        "stop": values,
    }
    body = st.fixed_dictionaries({"model": st.just("babbage-002")}, optional=fields)

    def check(base_url: str) -> None:
        owner = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {mkey}"})
        caller = httpx.Client(base_url=base_url, headers={"Authorization": f"Bearer {key}"})

        @FUZZ
        @given(body)
        def one(sent: dict[str, Any]) -> None:
            before = owner.get("/api/me").json()["balance_usd"]
            got = caller.post(COMPLETIONS, content=dump(sent), headers=JSON)
            assert got.status_code < 500, (sent, got.text[:300])
            if got.status_code >= 400:
                assert_json_error(got)
                assert owner.get("/api/me").json()["balance_usd"] == before

        try:
            one()
        finally:
            owner.close()
            caller.close()

    await asyncio.to_thread(check, served.base_url)


async def test_a_per_call_text_model_is_charged_per_choice(served: Served) -> None:
    """deepseek-chat also has a per-call price: a pay_per_call token pays it
    for each choice returned, streamed or not."""
    mkey, key = await customer(served, billing_mode="pay_per_call")
    price = served.gw.state.catalog.get("deepseek-chat").per_call
    assert price is not None
    async with sdk(served, key) as client:
        raw = await client.completions.with_raw_response.create(
            model="deepseek-chat", prompt=["a", "b"], n=2, max_tokens=3
        )
        stream = await client.completions.create(
            model="deepseek-chat", prompt="a", n=3, max_tokens=3, stream=True
        )
        async for _ in stream:
            pass
    assert raw.headers["x-tollway-billing-method"] == "per_call"
    assert raw.headers["x-tollway-cost-usd"] == nano_to_usd(4 * price.price_nano)
    streamed, whole = await usage_records(served, mkey)
    assert (whole["items"], whole["cost_usd"]) == (4, nano_to_usd(4 * price.price_nano))
    assert (streamed["items"], streamed["cost_usd"]) == (3, nano_to_usd(3 * price.price_nano))


@pytest.fixture
async def served_hybrid(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> AsyncIterator[Served]:
    """Hybrid enabled, so every mode has a token."""
    async with serve(test_settings(database_url, allow_hybrid=True), catalog_models) as s:
        await add_channel(s, simulator.base_url)
        yield s


async def test_no_text_model_in_any_mode_answers_5xx(
    served_hybrid: Served, catalog_models: list[Model]
) -> None:
    served = served_hybrid
    mkey = (await served.new_account("1000"))["management_key"]
    keys = [(await served.new_token(mkey, billing_mode=m.value))["key"] for m in BillingMode]
    text = [m.id for m in catalog_models if m.kind is ModelKind.TEXT]
    gate = asyncio.Semaphore(8)
    statuses: list[int] = []

    async def one(c: httpx.AsyncClient, model: str) -> None:
        async with gate:
            body = {"model": model, "prompt": PROMPT, "max_tokens": 2}
            got = await c.post(COMPLETIONS, json=body)
        assert got.status_code < 500, (model, got.text)
        if got.status_code >= 400:
            assert_json_error(got)
        statuses.append(got.status_code)

    clients = [served.client(key) for key in keys]
    try:
        await asyncio.gather(*(one(c, model) for c in clients for model in text))
    finally:
        for c in clients:
            await c.aclose()
    assert statuses.count(200) >= len(text)  # every text model served in some mode


async def test_a_prompt_past_the_body_limit_is_a_413_that_changes_nothing(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    settings = test_settings(database_url, max_body_bytes=64 * 1024)
    async with serve(settings, catalog_models) as served:
        await add_channel(served, simulator.base_url)
        mkey, key = await customer(served)
        sent = sent_upstream(simulator)
        async with sdk(served, key) as client:
            with pytest.raises(openai.APIStatusError) as refused:
                await client.completions.create(model="davinci-002", prompt=["word " * 20_000])
        assert refused.value.status_code == 413
        assert sent_upstream(simulator) == sent
        assert await served.balance_usd(mkey) == "10"
        assert await usage_records(served, mkey) == []
