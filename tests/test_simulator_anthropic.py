"""The simulator's Anthropic Messages API, driven by the official ``anthropic`` SDK and raw aiohttp.

Wire shapes: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/build-with-claude/streaming
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from tollway.simulator import Simulator, SimulatorConfig, start

anthropic = pytest.importorskip("anthropic")

USER: Any = {"role": "user", "content": "Hello there friend"}
SYSTEM = "You are terse."
# The chat rule: 3 + (3 + 3 system words) + (3 + 3 words)
PROMPT_TOKENS = 15
TOOLS: Any = [{"name": "get_weather", "description": "Weather", "input_schema": {"type": "object"}}]


@pytest.fixture(scope="module")
async def sim_server() -> AsyncIterator[Simulator]:
    sim = await start(SimulatorConfig())
    yield sim
    await sim.stop()


@pytest.fixture
async def sim(sim_server: Simulator) -> Simulator:
    """The shared simulator, back to default settings and zero stats."""
    sim_server.update_config(**SimulatorConfig().to_dict())
    sim_server.reset()
    return sim_server


def root(sim: Simulator) -> str:
    return f"http://{sim.host}:{sim.port}"


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[Any]:
    async with anthropic.AsyncAnthropic(base_url=root(sim), api_key="x", max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def body(content: Any = "Hello there friend", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sim",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


async def post(
    http: aiohttp.ClientSession, sim: Simulator, payload: Any, path: str = "/v1/messages"
) -> tuple[int, Any]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
    async with http.post(root(sim) + path, data=raw, headers=headers) as resp:
        return resp.status, await resp.json()


async def events(
    http: aiohttp.ClientSession, sim: Simulator, payload: Any
) -> list[tuple[str, Any]]:
    """The (event, data) pairs of a complete stream."""
    async with http.post(root(sim) + "/v1/messages", json=payload) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    return [_parse_frame(frame) for frame in text.split("\n\n") if frame]


def _parse_frame(frame: str) -> tuple[str, Any]:
    event, data = frame.split("\n")
    assert event.startswith("event: ") and data.startswith("data: ")
    payload = orjson.loads(data[6:])
    assert payload["type"] == event[7:]
    return event[7:], payload


async def test_message_costs_what_the_same_chat_costs(sim: Simulator, client: Any) -> None:
    first = await client.messages.create(
        model="claude-x", max_tokens=1024, system=SYSTEM, messages=[USER]
    )
    again = await client.messages.create(
        model="claude-x", max_tokens=1024, system=SYSTEM, messages=[USER]
    )
    assert first.id.startswith("msg_") and first.id != again.id
    assert first.type == "message" and first.role == "assistant" and first.model == "claude-x"
    assert [block.type for block in first.content] == ["text"]
    assert len(first.content[0].text.split()) == 16
    assert first.stop_reason == "end_turn" and first.stop_sequence is None
    usage = first.usage
    assert (usage.input_tokens, usage.output_tokens) == (PROMPT_TOKENS, 16)
    assert usage.cache_read_input_tokens == 0 and usage.cache_creation_input_tokens == 0
    assert usage.cache_creation is not None
    assert usage.cache_creation.ephemeral_5m_input_tokens == 0
    assert usage.cache_creation.ephemeral_1h_input_tokens == 0
    assert again.content[0].text == first.content[0].text

    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as oai:
        chat = await oai.chat.completions.create(
            model="m", messages=[{"role": "system", "content": SYSTEM}, USER]
        )
    assert chat.usage is not None
    assert (chat.usage.prompt_tokens, chat.usage.completion_tokens) == (PROMPT_TOKENS, 16)
    assert sim.stats.by_path == {"/v1/messages": 2, "/v1/chat/completions": 1}


async def test_sync_client_through_a_thread(sim: Simulator) -> None:
    def call() -> Any:
        with anthropic.Anthropic(base_url=root(sim), api_key="x", max_retries=0) as sync:
            return sync.messages.create(model="m", max_tokens=3, messages=[USER])

    message = await asyncio.to_thread(call)
    assert message.usage.output_tokens == 3 and message.stop_reason == "max_tokens"
    assert len(message.content[0].text.split()) == 3


async def test_blocks_images_and_tool_results_count(client: Any) -> None:
    system: Any = [{"type": "text", "text": "one two"}]
    messages: Any = [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "what is this"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "AAAA"},
                },
            ],
        },
        {
            "role": "assistant",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "look", "input": {}}],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_1",
                    "content": "a cat [sim:tokens=2]",
                },
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_2",
                    "content": [{"type": "text", "text": "b c"}],
                },
            ],
        },
    ]
    reply = await client.messages.create(model="m", max_tokens=99, system=system, messages=messages)
    # 3 + (3 + 2) + (3 + 3 + 85) + (3 + 0) + (3 + 3 + 2); the directive in a tool result steers
    assert reply.usage.input_tokens == 3 + 5 + 91 + 3 + 8
    assert reply.usage.output_tokens == 2
    counted = await client.messages.count_tokens(model="m", system=system, messages=messages)
    assert counted.input_tokens == reply.usage.input_tokens


async def test_cache_reads_and_writes_leave_input_tokens(client: Any) -> None:
    text = "a b c d e f g h i j [sim:cached=4] [sim:cache_write=3] [sim:cache_write_1h=2]"
    reply = await client.messages.create(**body(text))
    prompt = 3 + 3 + 13
    usage = reply.usage
    assert usage.cache_read_input_tokens == 4
    assert usage.cache_creation_input_tokens == 5
    assert usage.cache_creation.ephemeral_5m_input_tokens == 3
    assert usage.cache_creation.ephemeral_1h_input_tokens == 2
    assert usage.input_tokens == prompt - 4 - 5

    capped = await client.messages.create(**body("x [sim:cached=5] [sim:cache_write_1h=900]"))
    usage = capped.usage
    assert usage.input_tokens == 0 and usage.cache_read_input_tokens == 5
    assert usage.cache_creation.ephemeral_1h_input_tokens == 3 + 3 + 3 - 5


async def test_thinking_comes_first_and_counts_as_output(client: Any) -> None:
    reply = await client.messages.create(**body("think [sim:reasoning=5] [sim:tokens=3]"))
    thinking, text = reply.content
    assert thinking.type == "thinking" and len(thinking.thinking.split()) == 5
    assert thinking.signature
    assert text.type == "text" and len(text.text.split()) == 3
    assert reply.usage.output_tokens == 8


async def test_tool_directive_calls_a_declared_tool(client: Any) -> None:
    reply = await client.messages.create(**body("weather? [sim:tool=get_weather]", tools=TOOLS))
    text, call = reply.content
    assert text.type == "text" and call.type == "tool_use"
    assert call.id.startswith("toolu_") and call.name == "get_weather" and call.input == {}
    assert reply.stop_reason == "tool_use" and reply.usage.output_tokens == 16

    bare = await client.messages.create(
        **body("weather? [sim:tool=get_weather] [sim:tokens=0]", tools=TOOLS)
    )
    assert [b.type for b in bare.content] == ["tool_use"] and bare.usage.output_tokens == 0

    toolless = await client.messages.create(**body("weather? [sim:tool=get_weather]"))
    assert [b.type for b in toolless.content] == ["text"] and toolless.stop_reason == "end_turn"

    capped = await client.messages.create(
        **body("w [sim:tool=get_weather]", tools=TOOLS, max_tokens=4)
    )
    assert [b.type for b in capped.content] == ["text"] and capped.stop_reason == "max_tokens"

    with pytest.raises(anthropic.BadRequestError, match="names no tool"):
        await client.messages.create(**body("w [sim:tool=nope]", tools=TOOLS))


async def test_sdk_stream_matches_the_plain_answer(client: Any) -> None:
    plain = await client.messages.create(**body())
    async with client.messages.stream(**body()) as stream:
        pieces = [text async for text in stream.text_stream]
        final = await stream.get_final_message()
    assert len(pieces) == 16 and "".join(pieces) == plain.content[0].text
    assert final.content[0].text == plain.content[0].text
    assert final.stop_reason == "end_turn"
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.usage.output_tokens == 16

    tool_body = body("w [sim:tool=get_weather] [sim:reasoning=2] [sim:tokens=1]", tools=TOOLS)
    async with client.messages.stream(**tool_body) as stream:
        final = await stream.get_final_message()
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    assert final.content[0].signature and final.content[2].input == {}
    assert final.stop_reason == "tool_use" and final.usage.output_tokens == 3


async def test_raw_stream_events_and_cumulative_usage(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    found = await events(
        http, sim, body("go [sim:tokens=3] [sim:reasoning=2] [sim:cached=2]", stream=True)
    )
    names = [name for name, _ in found]
    assert names == [
        "message_start",
        "ping",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "content_block_start",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    start = found[0][1]["message"]
    assert start["content"] == [] and start["stop_reason"] is None
    assert start["usage"]["output_tokens"] == 1
    assert start["usage"]["cache_read_input_tokens"] == 2
    assert start["usage"]["input_tokens"] == 3 + 3 + 4 - 2
    deltas = [data["delta"]["type"] for name, data in found if name == "content_block_delta"]
    assert deltas == ["thinking_delta", "thinking_delta", "signature_delta"] + ["text_delta"] * 3
    assert found[2][1]["content_block"] == {"type": "thinking", "thinking": "", "signature": ""}
    assert found[7][1]["index"] == 1
    final = found[-2][1]
    assert final["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert final["usage"] == {
        "input_tokens": 3 + 3 + 4 - 2,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 2,
        "output_tokens": 5,
    }


async def test_error_directives_raise_the_sdk_classes(client: Any) -> None:
    with pytest.raises(anthropic.RateLimitError) as limited:
        await client.messages.create(**body("hi [sim:error=429]"))
    assert limited.value.status_code == 429
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert limited.value.body["request_id"].startswith("req_")
    with pytest.raises(anthropic.InternalServerError) as overloaded:
        await client.messages.create(**body("hi [sim:error=529]"))
    assert overloaded.value.status_code == 529
    assert overloaded.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError) as failed:
        async with client.messages.stream(**body("hi [sim:error=500]")) as stream:
            await stream.get_final_message()
    assert failed.value.body["error"]["type"] == "api_error"
    with pytest.raises(anthropic.BadRequestError, match="unknown simulator directive"):
        await client.messages.create(**body("hi [sim:tokenz=3]"))


async def test_error_statuses_map_to_anthropic_types(
    http: aiohttp.ClientSession, sim: Simulator
) -> None:
    expected = {
        400: "invalid_request_error",
        401: "authentication_error",
        403: "permission_error",
        404: "not_found_error",
        413: "request_too_large",
        418: "api_error",
        429: "rate_limit_error",
        500: "api_error",
        529: "overloaded_error",
    }
    for status, kind in expected.items():
        got, error = await post(http, sim, body(f"x [sim:error={status}]"))
        assert got == status
        assert set(error) == {"type", "error", "request_id"} and error["type"] == "error"
        assert error["error"]["type"] == kind and error["error"]["message"]


async def test_validation_errors(http: aiohttp.ClientSession, sim: Simulator) -> None:
    user = {"role": "user", "content": "hi"}
    cases: list[tuple[Any, str]] = [
        (b"{not json", "JSON"),
        ({"max_tokens": 5, "messages": [user]}, "model"),
        ({"model": "m", "messages": [user]}, "max_tokens: Field required"),
        ({"model": "m", "max_tokens": 0, "messages": [user]}, "max_tokens"),
        ({"model": "m", "max_tokens": 5, "messages": []}, "messages"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "system", "content": "x"}]}, "role"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": 7}]}, "content"),
        ({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": [{}]}]}, "type"),
    ]
    for payload, needle in cases:
        status, error = await post(http, sim, payload)
        assert status == 400, payload
        assert error["error"]["type"] == "invalid_request_error"
        assert needle in error["error"]["message"]
    status, error = await post(http, sim, {}, "/v1/messages/nowhere")
    assert status == 404 and error["error"]["type"] == "not_found_error"


async def test_error_after_sends_an_error_event(
    http: aiohttp.ClientSession, sim: Simulator, client: Any
) -> None:
    found = await events(http, sim, body("go [sim:error_after=2]", stream=True))
    names = [name for name, _ in found]
    assert names.count("content_block_delta") == 2 and names[-1] == "error"
    assert "message_delta" not in names and "message_stop" not in names
    assert found[-1][1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }

    with pytest.raises(anthropic.APIStatusError) as failed:
        async with client.messages.stream(**body("go [sim:error_after=1]")) as stream:
            await stream.get_final_message()
    assert failed.value.body["error"]["type"] == "overloaded_error"
    with pytest.raises(anthropic.InternalServerError):  # no stream: a 529 answer
        await client.messages.create(**body("go [sim:error_after=1]"))


async def test_drop_after_cuts_the_stream(http: aiohttp.ClientSession, sim: Simulator) -> None:
    frames = []
    async with http.post(
        root(sim) + "/v1/messages", json=body("go [sim:drop_after=3]", stream=True)
    ) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in resp.content:
                if line.startswith(b"event: "):
                    frames.append(line[7:].strip().decode())
    assert frames.count("content_block_delta") == 3
    assert "message_delta" not in frames and "message_stop" not in frames
    assert sim.stats.dropped == 1

    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(root(sim) + "/v1/messages", json=body("[sim:drop_after=0]")):
            pass


async def test_no_usage(http: aiohttp.ClientSession, sim: Simulator) -> None:
    status, message = await post(http, sim, body("[sim:no_usage]"))
    assert status == 200 and "usage" not in message
    found = await events(http, sim, body("[sim:no_usage]", stream=True))
    assert "usage" not in found[0][1]["message"]
    assert all("usage" not in data for name, data in found if name == "message_delta")


async def test_latency_and_chunk_delay(client: Any) -> None:
    began = time.perf_counter()
    await client.messages.create(**body("[sim:latency_ms=60]"))
    assert time.perf_counter() - began >= 0.06
    began = time.perf_counter()
    async with client.messages.stream(**body("[sim:chunk_delay_ms=10] [sim:tokens=5]")) as stream:
        assert len([t async for t in stream.text_stream]) == 5
    assert time.perf_counter() - began >= 0.05


async def test_count_tokens(client: Any, sim: Simulator) -> None:
    counted = await client.messages.count_tokens(model="m", system=SYSTEM, messages=[USER])
    assert counted.input_tokens == PROMPT_TOKENS
    forced = await client.messages.count_tokens(
        model="m", messages=[{"role": "user", "content": "[sim:prompt_tokens=77]"}]
    )
    assert forced.input_tokens == 77
    assert sim.stats.by_path == {"/v1/messages/count_tokens": 2}


async def test_api_key_headers(http: aiohttp.ClientSession) -> None:
    async with await start(SimulatorConfig(api_key="sk-sim")) as sim:
        url = root(sim) + "/v1/messages"
        async with http.post(url, json=body(), headers={"x-api-key": "sk-sim"}) as resp:
            assert resp.status == 200
        async with http.post(url, json=body(), headers={"x-api-key": "nope"}) as resp:
            error = await resp.json()
            assert resp.status == 401 and error["error"]["type"] == "authentication_error"
        async with anthropic.AsyncAnthropic(
            base_url=root(sim), api_key="sk-sim", max_retries=0
        ) as good:
            assert (await good.messages.create(**body())).content  # sends Authorization: Bearer
        async with anthropic.AsyncAnthropic(
            base_url=root(sim), api_key="bad", max_retries=0
        ) as bad:
            with pytest.raises(anthropic.AuthenticationError):
                await bad.messages.create(**body())
        assert sim.stats.requests == 4 and sim.stats.errors == 2
