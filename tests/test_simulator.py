"""The upstream simulator, exercised over loopback with the openai SDK and raw aiohttp."""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import orjson
import pytest

from tollway.simulator import ConfigError, Simulator, SimulatorConfig, start

USER: Any = {"role": "user", "content": "Hello there friend"}
SYSTEM: Any = {"role": "system", "content": "You are terse."}
# 3 (reply priming) + (3 + 3 words) for the system + (3 + 3 words) for the user
PROMPT_TOKENS = 15


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


@pytest.fixture
async def client(sim: Simulator) -> AsyncIterator[openai.AsyncOpenAI]:
    async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="k", max_retries=0) as c:
        yield c


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def chat_body(content: str = "Hello there friend", **extra: Any) -> dict[str, Any]:
    return {"model": "any-model", "messages": [{"role": "user", "content": content}], **extra}


async def raw_stream(
    http: aiohttp.ClientSession, sim: Simulator, body: dict[str, Any]
) -> list[Any]:
    """The decoded ``data:`` payloads of a complete stream ("[DONE]" kept as a string)."""
    async with http.post(f"{sim.base_url}/chat/completions", json=body) as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    blocks = [b for b in text.split("\n\n") if b]
    assert all(b.startswith("data: ") for b in blocks)
    return [b[6:] if b[6:] == "[DONE]" else orjson.loads(b[6:]) for b in blocks]


async def test_models_list(sim: Simulator, client: openai.AsyncOpenAI) -> None:
    models = await client.models.list()
    ids = [m.id for m in models.data]
    assert "gpt-4o-mini" in ids and "text-embedding-3-small" in ids
    assert (await client.models.retrieve("whatever-model")).id == "whatever-model"


async def test_non_stream_usage_is_deterministic(client: openai.AsyncOpenAI) -> None:
    first = await client.chat.completions.create(model="gpt-x", messages=[SYSTEM, USER])
    again = await client.chat.completions.create(model="gpt-x", messages=[SYSTEM, USER])
    assert first.object == "chat.completion" and first.model == "gpt-x"
    assert first.usage is not None
    assert first.usage.prompt_tokens == PROMPT_TOKENS
    assert first.usage.completion_tokens == 16
    assert first.usage.total_tokens == PROMPT_TOKENS + 16
    assert first.usage.prompt_tokens_details and first.usage.completion_tokens_details
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    assert first.usage.completion_tokens_details.reasoning_tokens == 0
    content = first.choices[0].message.content
    assert content and len(content.split()) == 16
    assert first.choices[0].finish_reason == "stop"
    assert again.choices[0].message.content == content and again.usage == first.usage
    assert again.id != first.id
    other = await client.chat.completions.create(model="gpt-x", messages=[USER])
    assert other.choices[0].message.content != content
    assert other.usage and other.usage.prompt_tokens == 9


async def test_max_tokens_caps_the_reply(client: openai.AsyncOpenAI) -> None:
    reply = await client.chat.completions.create(model="m", messages=[USER], max_tokens=5)
    assert reply.usage and reply.usage.completion_tokens == 5
    assert reply.choices[0].finish_reason == "length"
    assert len((reply.choices[0].message.content or "").split()) == 5
    modern = await client.chat.completions.create(
        model="m", messages=[USER], max_completion_tokens=3, max_tokens=50
    )
    assert modern.usage and modern.usage.completion_tokens == 3


async def test_parts_images_and_n(client: openai.AsyncOpenAI) -> None:
    content: Any = [
        {"type": "text", "text": "describe this picture"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
    ]
    reply = await client.chat.completions.create(
        model="m", messages=[{"role": "user", "content": content}], n=3
    )
    assert reply.usage and reply.usage.prompt_tokens == 3 + 3 + 3 + 85
    assert reply.usage.completion_tokens == 3 * 16
    assert [c.index for c in reply.choices] == [0, 1, 2]
    assert len({c.message.content for c in reply.choices}) == 3


async def test_stream_without_include_usage(
    sim: Simulator, http: aiohttp.ClientSession, client: openai.AsyncOpenAI
) -> None:
    events = await raw_stream(http, sim, chat_body(stream=True))
    assert events[-1] == "[DONE]"
    chunks = events[:-1]
    assert all(c["object"] == "chat.completion.chunk" and "usage" not in c for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert [c["choices"][0]["finish_reason"] for c in chunks[1:-1]] == [None] * 16
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    plain = await client.chat.completions.create(**chat_body())
    assert text == plain.choices[0].message.content

    stream = await client.chat.completions.create(**chat_body(), stream=True)
    async with stream:
        sdk_chunks = [chunk async for chunk in stream]
    assert len(sdk_chunks) == 18 and all(c.usage is None for c in sdk_chunks)


async def test_stream_with_include_usage(
    sim: Simulator, http: aiohttp.ClientSession, client: openai.AsyncOpenAI
) -> None:
    body = chat_body(stream=True, stream_options={"include_usage": True})
    events = await raw_stream(http, sim, body)
    assert events[-1] == "[DONE]"
    *chunks, usage_chunk = events[:-1]
    assert all("usage" in c and c["usage"] is None for c in chunks)
    assert usage_chunk["choices"] == []
    assert usage_chunk["usage"]["prompt_tokens"] == 9
    assert usage_chunk["usage"]["completion_tokens"] == 16
    assert usage_chunk["usage"]["total_tokens"] == 25

    stream = await client.chat.completions.create(
        **chat_body(), stream=True, stream_options={"include_usage": True}
    )
    async with stream:
        last = [chunk async for chunk in stream][-1]
    plain = await client.chat.completions.create(**chat_body())
    assert last.usage == plain.usage


async def test_stream_with_n_choices(sim: Simulator, http: aiohttp.ClientSession) -> None:
    events = await raw_stream(http, sim, chat_body("[sim:tokens=2]", stream=True, n=2))
    indexes = [c["choices"][0]["index"] for c in events[:-1]]
    assert indexes == [0, 1, 0, 1, 0, 1, 0, 1]  # role, 2 tokens, finish; interleaved


async def test_error_directives(client: openai.AsyncOpenAI) -> None:
    with pytest.raises(openai.RateLimitError) as limited:
        await client.chat.completions.create(**chat_body("hi [sim:error=429]"))
    assert limited.value.status_code == 429 and limited.value.code == "rate_limit_exceeded"
    with pytest.raises(openai.InternalServerError) as unavailable:
        await client.chat.completions.create(**chat_body("hi [sim:error=503]"), stream=True)
    assert unavailable.value.status_code == 503
    with pytest.raises(openai.BadRequestError):
        await client.chat.completions.create(**chat_body("hi [sim:error=400]"))
    with pytest.raises(openai.BadRequestError, match="unknown simulator directive"):
        await client.chat.completions.create(**chat_body("hi [sim:tokenz=3]"))


async def test_directives_only_read_the_last_message(client: openai.AsyncOpenAI) -> None:
    messages: Any = [{"role": "user", "content": "[sim:error=500]"}, USER]
    reply = await client.chat.completions.create(model="m", messages=messages)
    assert reply.usage and reply.usage.completion_tokens == 16


async def test_usage_directives(client: openai.AsyncOpenAI) -> None:
    tokens = await client.chat.completions.create(**chat_body("a b [sim:tokens=40]"))
    assert tokens.usage and tokens.usage.completion_tokens == 40
    assert len((tokens.choices[0].message.content or "").split()) == 40

    mixed = await client.chat.completions.create(
        **chat_body("a b c d e [sim:cached=4] [sim:reasoning=5] [sim:tokens=2]")
    )
    usage = mixed.usage
    assert usage is not None
    assert usage.prompt_tokens == 3 + 3 + 8
    assert usage.prompt_tokens_details and usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens == 7
    assert usage.completion_tokens_details
    assert usage.completion_tokens_details.reasoning_tokens == 5
    assert len((mixed.choices[0].message.content or "").split()) == 2

    capped = await client.chat.completions.create(**chat_body("x [sim:cached=1000]"))
    assert capped.usage and capped.usage.prompt_tokens_details
    assert capped.usage.prompt_tokens_details.cached_tokens == capped.usage.prompt_tokens


async def test_no_usage(sim: Simulator, http: aiohttp.ClientSession) -> None:
    async with http.post(f"{sim.base_url}/chat/completions", json=chat_body("[sim:no_usage]")) as r:
        assert "usage" not in await r.json()
    body = chat_body("[sim:no_usage]", stream=True, stream_options={"include_usage": True})
    events = await raw_stream(http, sim, body)
    assert events[-1] == "[DONE]" and all("usage" not in c for c in events[:-1])

    sim.update_config(report_usage=False)
    async with http.post(f"{sim.base_url}/chat/completions", json=chat_body()) as r:
        assert "usage" not in await r.json()


async def read_until_cut(resp: aiohttp.ClientResponse) -> list[bytes]:
    payloads = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async for line in resp.content:
            if line.startswith(b"data: "):
                payloads.append(line[6:].strip())
    return payloads


async def test_drop_after_cuts_the_stream(sim: Simulator, http: aiohttp.ClientSession) -> None:
    body = chat_body("go [sim:drop_after=3]", stream=True, stream_options={"include_usage": True})
    async with http.post(f"{sim.base_url}/chat/completions", json=body) as resp:
        payloads = await read_until_cut(resp)
    assert len(payloads) == 4  # the role chunk and 3 content chunks
    assert b"[DONE]" not in payloads
    assert all(orjson.loads(p)["usage"] is None for p in payloads)
    assert sim.stats.dropped == 1

    async with http.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 200  # the simulator is fine after a cut


async def test_stall_after_sends_nothing_more_until_the_client_leaves(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    body = chat_body("go [sim:stall_after=2]", stream=True)
    payloads: list[bytes] = []
    async with http.post(f"{sim.base_url}/chat/completions", json=body) as resp:
        with pytest.raises(asyncio.TimeoutError):
            while True:
                line = await asyncio.wait_for(resp.content.readline(), 1.0)
                if line.startswith(b"data: "):
                    payloads.append(line[6:].strip())
    assert len(payloads) == 3  # the role chunk and 2 content chunks, then silence
    async with http.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
        assert resp.status == 200


async def test_drop_after_non_stream_sends_nothing(
    sim: Simulator, http: aiohttp.ClientSession
) -> None:
    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(
            f"{sim.base_url}/chat/completions", json=chat_body("[sim:drop_after=0]")
        ):
            pass


async def test_drop_rate_cuts_half_way(sim: Simulator, http: aiohttp.ClientSession) -> None:
    sim.update_config(drop_rate=1.0)
    async with http.post(f"{sim.base_url}/chat/completions", json=chat_body(stream=True)) as resp:
        payloads = await read_until_cut(resp)
    assert len(payloads) == 1 + 8


async def test_latency_directives(client: openai.AsyncOpenAI) -> None:
    began = time.perf_counter()
    await client.chat.completions.create(**chat_body("[sim:latency_ms=60]"))
    assert time.perf_counter() - began >= 0.06
    began = time.perf_counter()
    stream = await client.chat.completions.create(
        **chat_body("[sim:chunk_delay_ms=10] [sim:tokens=5]"), stream=True
    )
    async with stream:
        assert len([c async for c in stream]) == 7
    assert time.perf_counter() - began >= 0.05


async def test_embeddings_float_and_base64(client: openai.AsyncOpenAI) -> None:
    as_float = await client.embeddings.create(
        model="text-embedding-3-small",
        input=["one two three", "four"],
        encoding_format="float",
    )
    assert as_float.model == "text-embedding-3-small"
    assert as_float.usage.prompt_tokens == 4 and as_float.usage.total_tokens == 4
    assert [d.index for d in as_float.data] == [0, 1]
    vector = as_float.data[0].embedding
    assert len(vector) == 8
    assert math.isclose(math.fsum(x * x for x in vector), 1.0, rel_tol=1e-5)
    assert as_float.data[1].embedding != vector

    as_base64 = await client.embeddings.create(  # the SDK asks for base64 and decodes it
        model="text-embedding-3-small", input=["one two three", "four"]
    )
    assert [d.embedding for d in as_base64.data] == [d.embedding for d in as_float.data]


async def test_embeddings_dimensions_and_tokens(client: openai.AsyncOpenAI) -> None:
    long = await client.embeddings.create(model="e", input="hello world", dimensions=64)
    short = await client.embeddings.create(model="e", input="hello world", dimensions=4)
    full, prefix = long.data[0].embedding, short.data[0].embedding
    assert len(full) == 64 and len(prefix) == 4
    norm = math.sqrt(math.fsum(x * x for x in full[:4]))
    assert all(
        math.isclose(a / norm, b, rel_tol=1e-4) for a, b in zip(full[:4], prefix, strict=True)
    )

    arrays = await client.embeddings.create(model="e", input=[[1, 2, 3], [4, 5]])
    assert arrays.usage.prompt_tokens == 5 and len(arrays.data) == 2
    single = await client.embeddings.create(model="e", input=[7, 8, 9])
    assert single.usage.prompt_tokens == 3 and len(single.data) == 1
    with pytest.raises(openai.BadRequestError):
        await client.embeddings.create(model="e", input=[])


async def test_api_key_enforced(http: aiohttp.ClientSession) -> None:
    async with await start(SimulatorConfig(api_key="sk-sim")) as sim:
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="wrong", max_retries=0) as bad:
            with pytest.raises(openai.AuthenticationError) as denied:
                await bad.chat.completions.create(**chat_body())
            assert denied.value.code == "invalid_api_key"
        async with openai.AsyncOpenAI(base_url=sim.base_url, api_key="sk-sim") as good:
            reply = await good.chat.completions.create(**chat_body())
            assert reply.choices[0].message.content
        async with http.get(f"http://{sim.host}:{sim.port}/_sim/stats") as resp:
            stats = await resp.json()  # control endpoints need no key
        assert stats["requests"] == 2 and stats["errors"] == 1


async def test_control_endpoints(
    sim: Simulator, http: aiohttp.ClientSession, client: openai.AsyncOpenAI
) -> None:
    root = f"http://{sim.host}:{sim.port}"
    await client.chat.completions.create(**chat_body())
    await client.chat.completions.create(**chat_body())
    await client.embeddings.create(model="e", input="x")
    async with http.get(f"{root}/_sim/stats") as resp:
        stats = await resp.json()
    assert stats["requests"] == 3
    assert stats["by_path"] == {"/v1/chat/completions": 2, "/v1/embeddings": 1}
    assert stats == sim.stats.snapshot()
    async with http.get(f"{root}/_sim/requests") as resp:
        recent = await resp.json()
    assert recent[-1]["path"] == "/v1/embeddings" and recent[-1]["body"]["input"] == "x"

    async with http.post(f"{root}/_sim/reset") as resp:
        assert (await resp.json())["requests"] == 0
    assert sim.stats.requests == 0 and sim.stats.by_path == {}

    async with http.post(f"{root}/_sim/config", json={"default_completion_tokens": 3}) as resp:
        assert resp.status == 200 and (await resp.json())["default_completion_tokens"] == 3
    reply = await client.chat.completions.create(**chat_body())
    assert reply.usage and reply.usage.completion_tokens == 3
    async with http.post(f"{root}/_sim/config", json={"error_rate": 7}) as resp:
        assert resp.status == 400 and "error_rate" in (await resp.json())["error"]["message"]
    async with http.post(f"{root}/_sim/config", json={"nope": 1}) as resp:
        assert resp.status == 400
    assert sim.stats.requests == 1  # control calls are not counted


async def statuses(http: aiohttp.ClientSession, sim: Simulator, count: int) -> list[int]:
    found = []
    for _ in range(count):
        async with http.post(f"{sim.base_url}/chat/completions", json=chat_body()) as resp:
            found.append(resp.status)
            if resp.status == 500:
                assert (await resp.json())["error"]["type"] == "server_error"
    return found


async def test_error_rate_is_reproducible(sim: Simulator, http: aiohttp.ClientSession) -> None:
    sim.update_config(error_rate=0.5, seed=42)
    first = await statuses(http, sim, 30)
    assert set(first) == {200, 500}
    assert sim.stats.errors == first.count(500)
    sim.reset()  # re-seeds
    assert await statuses(http, sim, 30) == first
    sim.update_config(seed=7)
    assert await statuses(http, sim, 30) != first


async def test_bad_requests(sim: Simulator, http: aiohttp.ClientSession) -> None:
    url = f"{sim.base_url}/chat/completions"
    cases: list[tuple[bytes, str | None]] = [
        (b"{not json", None),
        (b"[1, 2]", None),
        (orjson.dumps({"messages": [USER]}), "model"),
        (orjson.dumps({"model": "m"}), "messages"),
        (orjson.dumps({"model": "m", "messages": [USER], "n": 0}), "n"),
    ]
    for raw, param in cases:
        async with http.post(url, data=raw) as resp:
            assert resp.status == 400
            error = (await resp.json())["error"]
            assert set(error) == {"message", "type", "param", "code"}
            assert error["type"] == "invalid_request_error" and error["param"] == param
    async with http.get(f"{sim.base_url}/nowhere") as resp:
        assert resp.status == 404 and "error" in await resp.json()


def test_config_validation() -> None:
    with pytest.raises(ConfigError):
        SimulatorConfig(error_rate=1.5)
    with pytest.raises(ConfigError):
        SimulatorConfig(latency_ms=-1)
    assert SimulatorConfig(api_key="").api_key is None
