"""What only Anthropic's API can take (document blocks, Anthropic's own tools
such as web search) goes through to an Anthropic channel as the client sent
it, read for usage and billed; a model served by no Anthropic channel
refuses it with a 400 in Anthropic's shape, before any hold, at no charge.

Real gateway and simulator on loopback, the official anthropic SDK as client.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anthropic
import pytest

from tollway.simulator import Simulator

from conftest import Served, customer, serve, test_settings, usage_records

MODEL = "claude-sonnet-4-5"  # $3 / $15 per 1M tokens
USER = "[sim:tokens=5] What does the document say?"
PDF = "JVBERi0xLjQKJcfsj6IKMSAwIG9iago8PC9UeXBlL0NhdGFsb2c+PgplbmRvYmoKdHJhaWxlcgo8PD4+CiUlRU9G"
DOCUMENT = {
    "type": "document",
    "source": {"type": "base64", "media_type": "application/pdf", "data": PDF},
    "title": "A tiny PDF",
}
WEB_SEARCH = {"type": "web_search_20250305", "name": "web_search", "max_uses": 2}
# The simulator counts words of text blocks and nothing for a document.
PROMPT_TOKENS = 3 + (3 + len(USER.split()))
OUTPUT_TOKENS = 5


def channel_url(simulator: Simulator, kind: str) -> str:
    return simulator.base_url if kind == "openai" else simulator.base_url.removesuffix("/v1")


@contextlib.asynccontextmanager
async def gateway(
    database_url: str, models: list[Any], simulator: Simulator, *kinds: str
) -> AsyncIterator[Served]:
    """A served gateway with one channel of each of ``kinds``, in that order of priority."""
    async with serve(test_settings(database_url), models) as served:
        for priority, kind in enumerate(reversed(kinds)):
            url = channel_url(simulator, kind)
            channel = {"name": f"sim-{kind}", "type": kind, "base_url": url,
                       "api_key": "sim-key", "models": ["*"], "priority": priority}  # fmt: skip
            got = await served.admin.post("/api/channels", json=channel)
            assert got.status_code == 201, got.text
        yield served


def claude(served: Served, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=served.base_url, api_key=key, max_retries=0)


def with_document() -> list[Any]:
    return [{"role": "user", "content": [DOCUMENT, {"type": "text", "text": USER}]}]


async def ask(served: Served, key: str, stream: bool, **extra: Any) -> anthropic.types.Message:
    async with claude(served, key) as client:
        fields: Any = {"model": MODEL, "max_tokens": 50, "messages": with_document(), **extra}
        if not stream:
            return await client.messages.create(**fields)
        async with client.messages.stream(**fields) as events:
            return await events.get_final_message()


def last_upstream_body(simulator: Simulator) -> dict[str, Any]:
    body: dict[str, Any] = simulator.stats.recent[-1]["body"]
    return body


@pytest.mark.parametrize("stream", [False, True])
async def test_a_document_and_a_server_tool_pass_through_to_anthropic_and_are_billed(
    database_url: str, catalog_models: list[Any], simulator: Simulator, stream: bool
) -> None:
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served)
        message = await ask(served, key, stream, tools=[WEB_SEARCH])
        assert message.usage.input_tokens == PROMPT_TOKENS
        assert message.usage.output_tokens == OUTPUT_TOKENS
        sent = last_upstream_body(simulator)
        assert sent["messages"][0]["content"][0] == DOCUMENT  # as the client wrote it
        assert sent["tools"] == [WEB_SEARCH]
        [record] = await usage_records(served, mkey)
        assert record["status"] == "ok" and record["usage_source"] == "upstream"
        nano = PROMPT_TOKENS * 3_000 + OUTPUT_TOKENS * 15_000
        assert Decimal(record["cost_usd"]) == Decimal(nano) / 10**9
        me = await served.me_at_rest(mkey)
        assert Decimal(me["balance_usd"]) == Decimal("10") - Decimal(nano) / 10**9


@pytest.mark.parametrize("upstream", ["openai", "gemini"])
@pytest.mark.parametrize("extra", [{}, {"tools": [WEB_SEARCH]}], ids=["document", "web_search"])
async def test_without_an_anthropic_channel_they_are_refused_at_no_charge(
    database_url: str,
    catalog_models: list[Any],
    simulator: Simulator,
    upstream: str,
    extra: dict[str, Any],
) -> None:
    async with gateway(database_url, catalog_models, simulator, upstream) as served:
        mkey, key = await customer(served)
        before = simulator.stats.requests
        messages = with_document() if not extra else [{"role": "user", "content": USER}]
        async with claude(served, key) as client:
            with pytest.raises(anthropic.BadRequestError) as refused:
                await client.messages.create(model=MODEL, max_tokens=50, messages=messages, **extra)
        error = refused.value.body
        assert isinstance(error, dict) and error["type"] == "error", error
        assert error["error"]["type"] == "invalid_request_error"
        named = "messages[0].content[0] (document)" if not extra else "tools[0] (web_search"
        assert named in error["error"]["message"] and "Anthropic" in error["error"]["message"]
        assert simulator.stats.requests == before  # never sent
        assert await usage_records(served, mkey) == []
        assert (await served.me_at_rest(mkey))["balance_usd"] == "10"


async def test_an_anthropic_channel_of_lower_priority_serves_what_only_it_can_take(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "openai", "anthropic") as served:
        _, key = await customer(served)
        async with claude(served, key) as client:
            plain = await client.messages.create(
                model=MODEL, max_tokens=50, messages=[{"role": "user", "content": USER}]
            )
            assert plain.usage.output_tokens == OUTPUT_TOKENS
            assert simulator.stats.recent[-1]["path"] == "/v1/chat/completions"  # the first
            message = await client.messages.create(
                model=MODEL, max_tokens=50, messages=with_document()
            )
        assert message.usage.output_tokens == OUTPUT_TOKENS
        assert simulator.stats.recent[-1]["path"] == "/v1/messages"


async def test_count_tokens_takes_a_document_and_a_server_tool(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "openai") as served:
        mkey, key = await customer(served)
        async with claude(served, key) as client:
            counted = await client.messages.count_tokens(
                model=MODEL, messages=with_document(), tools=[WEB_SEARCH]
            )
        assert counted.input_tokens > 0
        assert await usage_records(served, mkey) == []


async def test_anthropic_beta_reaches_an_anthropic_upstream_and_bad_ones_are_refused(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served, "1")
        beta = "prompt-caching-2024-07-31, context-1m-2025-08-07"
        async with claude(served, key) as client:
            got = await client.messages.create(
                model=MODEL,
                max_tokens=50,
                messages=[{"role": "user", "content": "[sim:tokens=3] hi"}],
                extra_headers={"anthropic-beta": beta},
            )
            assert got.content
            assert simulator.stats.recent[-1]["anthropic_beta"] == beta
            with pytest.raises(anthropic.BadRequestError) as refused:
                await client.messages.create(
                    model=MODEL,
                    max_tokens=50,
                    messages=[{"role": "user", "content": "hi"}],
                    extra_headers={"anthropic-beta": "bad beta; DROP"},
                )
        assert refused.value.body["type"] == "error"  # type: ignore[index]
        assert len(await usage_records(served, mkey)) == 1
