"""Every inbound protocol x every upstream type, streamed and not, through real
processes on loopback with the official SDKs: the answer arrives in the
client's protocol, and the same conversation costs the same to the nano-USD
whichever pair carried it."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anthropic
import pytest
from google.genai import types as gtypes

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records
from native import UPSTREAMS, claude, gateway, gemini

# google-genai's async client subclasses aiohttp's session, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODEL = "claude-sonnet-4-5"  # priced per use, with cache-write prices
SYSTEM = "You are terse."
USER = "[sim:tokens=7] Say hello to the gateway"
# The simulator's rule: 3 + (3 + system words) + (3 + user words); 7 words out.
PROMPT_TOKENS = 3 + (3 + len(SYSTEM.split())) + (3 + len(USER.split()))
OUTPUT_TOKENS = 7


async def via_openai(served: Served, key: str, stream: bool) -> str:
    async with sdk(served, key) as client:
        return await _openai_call(client, stream)


async def _openai_call(client: Any, stream: bool) -> str:
    messages: Any = [{"role": "system", "content": SYSTEM}, {"role": "user", "content": USER}]
    if not stream:
        answer = await client.chat.completions.create(model=MODEL, messages=messages, max_tokens=50)
        assert answer.usage is not None
        assert answer.usage.prompt_tokens == PROMPT_TOKENS
        assert answer.usage.completion_tokens == OUTPUT_TOKENS
        return answer.choices[0].message.content or ""
    chunks = await client.chat.completions.create(
        model=MODEL,
        messages=messages,
        max_tokens=50,
        stream=True,
        stream_options={"include_usage": True},
    )
    text, usage = [], None
    async for chunk in chunks:
        for choice in chunk.choices:
            text.append(choice.delta.content or "")
        usage = chunk.usage or usage
    assert usage is not None and usage.completion_tokens == OUTPUT_TOKENS
    assert usage.prompt_tokens == PROMPT_TOKENS
    return "".join(text)


async def via_anthropic(served: Served, key: str, stream: bool) -> str:
    async with claude(served, key) as client:
        return await _anthropic_call(client, stream)


async def _anthropic_call(client: anthropic.AsyncAnthropic, stream: bool) -> str:
    user: Any = [{"role": "user", "content": USER}]
    if not stream:
        message = await client.messages.create(
            model=MODEL, system=SYSTEM, messages=user, max_tokens=50
        )
    else:
        async with client.messages.stream(
            model=MODEL, system=SYSTEM, messages=user, max_tokens=50
        ) as events:
            message = await events.get_final_message()
    assert message.type == "message" and message.stop_reason == "end_turn"
    assert message.usage.output_tokens == OUTPUT_TOKENS
    assert message.usage.input_tokens == PROMPT_TOKENS
    return "".join(block.text for block in message.content if block.type == "text")


async def via_gemini(served: Served, key: str, stream: bool) -> str:
    async with gemini(served, key).aio as client:
        return await _gemini_call(client, stream)


async def _gemini_call(client: Any, stream: bool) -> str:
    config = gtypes.GenerateContentConfig(system_instruction=SYSTEM, max_output_tokens=50)
    if not stream:
        answer = await client.models.generate_content(model=MODEL, contents=USER, config=config)
        usage = answer.usage_metadata
        text = answer.text or ""
    else:
        pieces, usage = [], None
        async for chunk in await client.models.generate_content_stream(
            model=MODEL, contents=USER, config=config
        ):
            pieces.append(chunk.text or "")
            usage = chunk.usage_metadata or usage
        text = "".join(pieces)
    assert usage is not None
    assert usage.prompt_token_count == PROMPT_TOKENS
    assert usage.candidates_token_count == OUTPUT_TOKENS
    return text


CLIENTS = {"openai": via_openai, "anthropic": via_anthropic, "gemini": via_gemini}


@pytest.mark.parametrize("upstream", UPSTREAMS)
async def test_every_protocol_pair_answers_and_costs_the_same(
    database_url: str, catalog_models: list[Any], simulator: Simulator, upstream: str
) -> None:
    costs = set()
    async with gateway(database_url, catalog_models, simulator, upstream) as served:
        for inbound, call in CLIENTS.items():
            for stream in (False, True):
                mkey, key = await customer(served)
                text = await call(served, key, stream)
                assert len(text.split()) == OUTPUT_TOKENS, (inbound, upstream, stream, text)
                records = await usage_records(served, mkey)
                assert len(records) == 1, (inbound, stream)
                record = records[0]
                assert record["status"] == "ok" and record["usage_source"] == "upstream"
                assert record["tokens"]["input_tokens"] == PROMPT_TOKENS
                assert record["tokens"]["output_tokens"] == OUTPUT_TOKENS
                costs.add(record["cost_usd"])
    assert len(costs) == 1, costs
    nano = PROMPT_TOKENS * 3_000 + OUTPUT_TOKENS * 15_000  # $3 / $15 per 1M tokens
    assert Decimal(costs.pop()) == Decimal(nano) / 10**9
