"""Billing what a native upstream reports: Anthropic's cache reads and 5-minute
and 1-hour cache writes, each at its own price whatever protocol the client
speaks; a stream the upstream breaks with an ``error`` event bills what was
delivered; count_tokens is free."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import openai
import pytest
from google.genai import errors as gerrors
from google.genai import types as gtypes

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records
from native import claude, gateway, gemini

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODEL = "claude-sonnet-4-5"
CACHING = "[sim:tokens=7] [sim:cached=2] [sim:cache_write=10] [sim:cache_write_1h=4]" + " hi" * 20
# The simulator's rule: 3 + (3 + user words); cached, writes and output as the directives say.
PROMPT = 3 + 3 + len(CACHING.split())
CACHED, WRITE_5M, WRITE_1H, OUTPUT = 2, 10, 4, 7
# claude-sonnet-4-5, nano-USD per token: input 3000, cache read 300, 5-minute
# write 3750, 1-hour write 6000, output 15000.
CACHING_NANO = (
    (PROMPT - CACHED - WRITE_5M - WRITE_1H) * 3000
    + CACHED * 300
    + WRITE_5M * 3750
    + WRITE_1H * 6000
    + OUTPUT * 15000
)


async def cached_via_openai(served: Served, key: str) -> None:
    async with sdk(served, key) as client:
        answer = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": CACHING}], max_tokens=50
        )
    assert answer.usage is not None and answer.usage.prompt_tokens == PROMPT
    assert answer.usage.prompt_tokens_details is not None
    assert answer.usage.prompt_tokens_details.cached_tokens == CACHED


async def cached_via_anthropic(served: Served, key: str) -> None:
    async with claude(served, key) as client:
        message = await client.messages.create(
            model=MODEL, messages=[{"role": "user", "content": CACHING}], max_tokens=50
        )
    usage = message.usage
    assert usage.input_tokens == PROMPT - CACHED - WRITE_5M - WRITE_1H
    assert usage.cache_read_input_tokens == CACHED
    assert usage.cache_creation_input_tokens == WRITE_5M + WRITE_1H
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == WRITE_5M
    assert usage.cache_creation.ephemeral_1h_input_tokens == WRITE_1H


async def cached_via_gemini(served: Served, key: str) -> None:
    config = gtypes.GenerateContentConfig(max_output_tokens=50)
    async with gemini(served, key).aio as client:
        answer = await client.models.generate_content(model=MODEL, contents=CACHING, config=config)
    assert answer.usage_metadata is not None
    assert answer.usage_metadata.prompt_token_count == PROMPT
    assert answer.usage_metadata.cached_content_token_count == CACHED


@pytest.mark.parametrize("inbound", ["openai", "anthropic", "gemini"])
async def test_cache_writes_are_billed_at_their_prices_through_every_protocol(
    database_url: str, catalog_models: list[Any], simulator: Simulator, inbound: str
) -> None:
    call = {"openai": cached_via_openai, "anthropic": cached_via_anthropic,
            "gemini": cached_via_gemini}[inbound]  # fmt: skip
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served)
        await call(served, key)
        [record] = await usage_records(served, mkey)
        tokens = record["tokens"]
        assert tokens["input_tokens"] == PROMPT and tokens["output_tokens"] == OUTPUT
        assert tokens["cached_input_tokens"] == CACHED
        assert tokens["cache_write_tokens"] == WRITE_5M
        assert tokens["cache_write_1h_tokens"] == WRITE_1H
        assert Decimal(record["cost_usd"]) == Decimal(CACHING_NANO) / 10**9
        assert Decimal(await served.balance_usd(mkey)) == 10 - Decimal(CACHING_NANO) / 10**9


BROKEN = "[sim:tokens=30] [sim:error_after=3] go"


async def broken_openai(served: Served, key: str) -> str:
    async with sdk(served, key) as client:
        stream = await client.chat.completions.create(
            model=MODEL, messages=[{"role": "user", "content": BROKEN}], stream=True
        )
        text = []
        with pytest.raises(openai.APIError, match="Overloaded"):
            async for chunk in stream:
                text.extend(c.delta.content or "" for c in chunk.choices)
    return "".join(text)


async def broken_anthropic(served: Served, key: str) -> str:
    text = []
    async with claude(served, key) as client:
        with pytest.raises(anthropic.APIStatusError, match="Overloaded"):
            async with client.messages.stream(
                model=MODEL, messages=[{"role": "user", "content": BROKEN}], max_tokens=100
            ) as events:
                async for piece in events.text_stream:
                    text.append(piece)
    return "".join(text)


async def broken_gemini(served: Served, key: str) -> str:
    text = []
    async with gemini(served, key).aio as client:
        with pytest.raises(gerrors.APIError, match="Overloaded"):
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents=BROKEN
            ):
                text.append(chunk.text or "")
    return "".join(text)


@pytest.mark.parametrize("inbound", ["openai", "anthropic", "gemini"])
async def test_an_upstream_error_event_mid_stream_bills_what_was_delivered(
    database_url: str, catalog_models: list[Any], simulator: Simulator, inbound: str
) -> None:
    call = {"openai": broken_openai, "anthropic": broken_anthropic,
            "gemini": broken_gemini}[inbound]  # fmt: skip
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served)
        text = await call(served, key)
        assert len(text.split()) == 3, repr(text)
        [record] = await usage_records(served, mkey)
        assert record["status"] == "upstream_interrupted"
        assert record["tokens"]["output_tokens"] == 3
        assert Decimal(record["cost_usd"]) > 0


async def test_count_tokens_answers_both_native_protocols_free(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    text = "count these five words"
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served)
        async with claude(served, key) as client:
            counted = await client.messages.count_tokens(
                model=MODEL, system="Be brief.", messages=[{"role": "user", "content": text}]
            )
        assert counted.input_tokens > len(text.split())
        async with gemini(served, key).aio as client:
            got = await client.models.count_tokens(model=MODEL, contents=text)
        assert got.total_tokens is not None and got.total_tokens >= len(text.split())
        assert await usage_records(served, mkey) == []
        assert await served.balance_usd(mkey) == "10"
