"""The simulator's Gemini API, driven by the official ``google-genai`` SDK and raw aiohttp.

Wire shapes: https://ai.google.dev/api/generate-content and
https://ai.google.dev/gemini-api/docs/troubleshooting (error statuses)
"""

from __future__ import annotations

import asyncio
import base64
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import pytest

from tollway.simulator import Simulator, SimulatorConfig, start
from tollway.simulator.media import PNG_SIGNATURE

genai = pytest.importorskip("google.genai")
errors = pytest.importorskip("google.genai.errors")
types = pytest.importorskip("google.genai.types")

# google-genai's async side subclasses aiohttp's ClientSession, which aiohttp
# warns about; the suite turns warnings into errors.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODEL = "gemini-2.5-flash"
SYSTEM = "You are terse."
# The chat rule: 3 + (3 + 3 system words) + (3 + 3 words)
PROMPT_TOKENS = 15
WEATHER: Any = {"function_declarations": [{"name": "get_weather", "description": "Weather"}]}


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


def make_client(sim: Simulator, api_version: str | None = None, key: str = "x") -> Any:
    options: dict[str, Any] = {"base_url": root(sim)}
    if api_version is not None:
        options["api_version"] = api_version
    return genai.Client(api_key=key, http_options=options)


@pytest.fixture
def client(sim: Simulator) -> Any:
    """The async side of a client on the SDK's default api version (v1)."""
    return make_client(sim).aio


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


def body(text: str = "Hello there friend", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


async def post(
    http: aiohttp.ClientSession, sim: Simulator, payload: Any, verb: str = "generateContent"
) -> tuple[int, Any]:
    raw = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    url = f"{root(sim)}/v1beta/models/{MODEL}:{verb}"
    async with http.post(url, data=raw, headers={"content-type": "application/json"}) as resp:
        return resp.status, await resp.json()


def config(**fields: Any) -> Any:
    return types.GenerateContentConfig(**fields)


@pytest.mark.parametrize("api_version", [None, "v1beta"])
async def test_generate_content_costs_what_the_same_chat_costs(
    sim: Simulator, api_version: str | None
) -> None:
    client = make_client(sim, api_version).aio
    reply = await client.models.generate_content(
        model=MODEL, contents="Hello there friend", config=config(system_instruction=SYSTEM)
    )
    again = await client.models.generate_content(
        model=MODEL, contents="Hello there friend", config=config(system_instruction=SYSTEM)
    )
    assert reply.text and len(reply.text.split()) == 16 and again.text == reply.text
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.candidates[0].content.role == "model"
    assert reply.model_version == MODEL and reply.response_id != again.response_id
    usage = reply.usage_metadata
    assert usage.prompt_token_count == PROMPT_TOKENS
    assert usage.candidates_token_count == 16
    assert usage.total_token_count == PROMPT_TOKENS + 16
    assert usage.cached_content_token_count is None and usage.thoughts_token_count is None
    version = api_version or "v1"
    assert sim.stats.by_path == {f"/{version}/models/{{model}}:generateContent": 2}


async def test_sync_client_through_a_thread(sim: Simulator) -> None:
    def call() -> Any:
        sync = make_client(sim)  # held: a dropped Client closes its connection pool
        return sync.models.generate_content(
            model=MODEL, contents="hi", config=config(max_output_tokens=4)
        )

    reply = await asyncio.to_thread(call)
    assert reply.usage_metadata.candidates_token_count == 4
    assert reply.candidates[0].finish_reason == types.FinishReason.MAX_TOKENS


async def test_parts_images_and_function_responses_count(client: Any) -> None:
    contents: Any = [
        types.Content(
            role="user",
            parts=[
                types.Part.from_text(text="what is this"),
                types.Part.from_bytes(data=b"\x89PNG", mime_type="image/png"),
            ],
        ),
        types.Content(
            role="model",
            parts=[types.Part.from_function_call(name="look", args={})],
        ),
        types.Content(
            role="user",
            parts=[
                types.Part.from_function_response(
                    name="look", response={"result": "a cat [sim:tokens=2]"}
                )
            ],
        ),
    ]
    reply = await client.models.generate_content(model=MODEL, contents=contents)
    # 3 + (3 + 3 + 85) + (3 + 0) + (3 + 3); the directive in a function response steers
    assert reply.usage_metadata.prompt_token_count == 3 + 91 + 3 + 6
    assert reply.usage_metadata.candidates_token_count == 2
    details = {d.modality: d.token_count for d in reply.usage_metadata.prompt_tokens_details}
    assert details == {types.MediaModality.TEXT: 103 - 85, types.MediaModality.IMAGE: 85}
    counted = await client.models.count_tokens(model=MODEL, contents=contents)
    assert counted.total_tokens == 103


async def test_cached_tokens_are_inside_the_prompt(client: Any) -> None:
    reply = await client.models.generate_content(model=MODEL, contents="a b c [sim:cached=4]")
    usage = reply.usage_metadata
    assert usage.prompt_token_count == 3 + 3 + 4 and usage.cached_content_token_count == 4
    assert usage.total_token_count == 10 + 16
    capped = await client.models.generate_content(model=MODEL, contents="x [sim:cached=900]")
    assert capped.usage_metadata.cached_content_token_count == 3 + 3 + 2


async def test_thoughts_count_and_show_only_when_asked(client: Any) -> None:
    text = "think [sim:reasoning=5] [sim:tokens=3]"
    hidden = await client.models.generate_content(model=MODEL, contents=text)
    usage = hidden.usage_metadata
    assert usage.thoughts_token_count == 5 and usage.candidates_token_count == 3
    assert usage.total_token_count == 3 + 3 + 3 + 3 + 5
    assert [part.thought for part in hidden.candidates[0].content.parts] == [None]

    shown = await client.models.generate_content(
        model=MODEL,
        contents=text,
        config=config(thinking_config=types.ThinkingConfig(include_thoughts=True)),
    )
    thought, answer = shown.candidates[0].content.parts
    assert thought.thought is True and len(thought.text.split()) == 5
    assert answer.thought is None and len(answer.text.split()) == 3
    assert shown.usage_metadata == usage


async def test_tool_directive_calls_a_declared_function(client: Any) -> None:
    tools = config(tools=[WEATHER])
    reply = await client.models.generate_content(
        model=MODEL, contents="weather? [sim:tool=get_weather] [sim:tokens=0]", config=tools
    )
    assert reply.function_calls and reply.function_calls[0].name == "get_weather"
    assert reply.function_calls[0].args == {}
    assert reply.candidates[0].finish_reason == types.FinishReason.STOP
    assert reply.usage_metadata.candidates_token_count is None  # zero: left out

    toolless = await client.models.generate_content(
        model=MODEL, contents="w [sim:tool=get_weather]"
    )
    assert not toolless.function_calls
    with pytest.raises(errors.ClientError, match="names no function"):
        await client.models.generate_content(
            model=MODEL, contents="w [sim:tool=nope]", config=tools
        )


async def test_image_modality_answers_a_png(client: Any) -> None:
    reply = await client.models.generate_content(
        model="gemini-2.5-flash-image",
        contents="a red fox [sim:tokens=4]",
        config=config(response_modalities=["TEXT", "IMAGE"]),
    )
    text, image = reply.candidates[0].content.parts
    assert len(text.text.split()) == 4
    assert image.inline_data.mime_type == "image/png"
    assert image.inline_data.data.startswith(PNG_SIGNATURE)
    usage = reply.usage_metadata
    assert usage.candidates_token_count == 1290 + 4
    details = [(d.modality, d.token_count) for d in usage.candidates_tokens_details]
    assert details == [(types.MediaModality.IMAGE, 1290), (types.MediaModality.TEXT, 4)]


async def test_candidate_count(client: Any) -> None:
    reply = await client.models.generate_content(
        model=MODEL, contents="hi [sim:tokens=3]", config=config(candidate_count=2)
    )
    assert [c.index for c in reply.candidates] == [0, 1]
    texts = {c.content.parts[0].text for c in reply.candidates}
    assert len(texts) == 2 and reply.usage_metadata.candidates_token_count == 6


async def test_sdk_stream_usage_is_cumulative(client: Any) -> None:
    plain = await client.models.generate_content(model=MODEL, contents="Hello there friend")
    chunks = [
        chunk
        async for chunk in await client.models.generate_content_stream(
            model=MODEL, contents="Hello there friend"
        )
    ]
    assert len(chunks) == 16
    assert "".join(chunk.text for chunk in chunks) == plain.text
    counts = [chunk.usage_metadata.candidates_token_count for chunk in chunks]
    assert counts == list(range(1, 17))
    assert all(chunk.usage_metadata.prompt_token_count == 9 for chunk in chunks)
    assert [c.candidates[0].finish_reason for c in chunks[:-1]] == [None] * 15
    assert chunks[-1].candidates[0].finish_reason == types.FinishReason.STOP
    assert chunks[-1].usage_metadata == plain.usage_metadata

    tool_chunks = [
        chunk
        async for chunk in await client.models.generate_content_stream(
            model=MODEL,
            contents="w [sim:tool=get_weather] [sim:reasoning=2] [sim:tokens=2]",
            config=config(tools=[WEATHER]),
        )
    ]
    assert len(tool_chunks) == 3 and tool_chunks[-1].function_calls
    assert tool_chunks[-1].usage_metadata.thoughts_token_count == 2
    assert tool_chunks[-1].usage_metadata.total_token_count == 3 + 3 + 4 + 2 + 2


async def test_raw_sse_and_json_array_streams(http: aiohttp.ClientSession, sim: Simulator) -> None:
    base = f"{root(sim)}/v1beta/models/{MODEL}:streamGenerateContent"
    async with http.post(base + "?alt=sse", json=body("go [sim:tokens=3]")) as resp:
        assert resp.headers["Content-Type"].startswith("text/event-stream")
        text = await resp.text()
    frames = [f for f in text.split("\r\n\r\n") if f]
    assert len(frames) == 3 and all(f.startswith("data: ") for f in frames)
    sse_chunks = [orjson.loads(f[6:]) for f in frames]
    assert [c["usageMetadata"]["candidatesTokenCount"] for c in sse_chunks] == [1, 2, 3]

    async with http.post(base, json=body("go [sim:tokens=3]")) as resp:
        assert resp.headers["Content-Type"].startswith("application/json")
        array = orjson.loads(await resp.read())
    assert [c["candidates"] for c in array] == [c["candidates"] for c in sse_chunks]


async def test_stream_of_two_image_candidates(http: aiohttp.ClientSession, sim: Simulator) -> None:
    payload = body(
        "fox [sim:tokens=2]",
        generationConfig={"candidateCount": 2, "responseModalities": ["TEXT", "IMAGE"]},
    )
    url = f"{root(sim)}/v1beta/models/{MODEL}:streamGenerateContent"
    async with http.post(url, json=payload) as resp:
        chunks = orjson.loads(await resp.read())
    counts = [c["usageMetadata"].get("candidatesTokenCount") for c in chunks]
    assert counts == [2, 4, 4 + 2 * 1290]
    assert all([x["index"] for x in c["candidates"]] == [0, 1] for c in chunks)
    image = chunks[-1]["candidates"][1]["content"]["parts"][0]["inlineData"]
    assert base64.b64decode(image["data"]).startswith(PNG_SIGNATURE)
    assert [x["finishReason"] for x in chunks[-1]["candidates"]] == ["STOP", "STOP"]
    assert chunks[-1]["usageMetadata"]["candidatesTokensDetails"] == [
        {"modality": "IMAGE", "tokenCount": 2 * 1290},
        {"modality": "TEXT", "tokenCount": 4},
    ]

    async with http.post(url + "?alt=sse", json=body("[sim:choices=0]")) as resp:
        frames = [f for f in (await resp.text()).split("\r\n\r\n") if f]
    assert len(frames) == 1 and orjson.loads(frames[0][6:])["candidates"] == []


async def test_error_directives_raise_the_sdk_classes(sim: Simulator, client: Any) -> None:
    with pytest.raises(errors.ClientError) as limited:
        await client.models.generate_content(model=MODEL, contents="hi [sim:error=429]")
    assert limited.value.code == 429 and limited.value.status == "RESOURCE_EXHAUSTED"
    with pytest.raises(errors.ServerError) as unavailable:
        await client.models.generate_content(model=MODEL, contents="hi [sim:error=503]")
    assert unavailable.value.code == 503 and unavailable.value.status == "UNAVAILABLE"
    with pytest.raises(errors.ServerError) as failed:
        async for _ in await client.models.generate_content_stream(
            model=MODEL, contents="hi [sim:error=500]"
        ):
            pass
    assert failed.value.status == "INTERNAL"
    with pytest.raises(errors.ClientError, match="unknown simulator directive"):
        await client.models.generate_content(model=MODEL, contents="hi [sim:tokenz=3]")
    assert sim.stats.requests == 4 and sim.stats.errors == 4  # no retries behind our back


async def test_error_statuses(http: aiohttp.ClientSession, sim: Simulator) -> None:
    expected = {
        400: "INVALID_ARGUMENT",
        403: "PERMISSION_DENIED",
        404: "NOT_FOUND",
        429: "RESOURCE_EXHAUSTED",
        500: "INTERNAL",
        503: "UNAVAILABLE",
        504: "DEADLINE_EXCEEDED",
    }
    for status, name in expected.items():
        got, error = await post(http, sim, body(f"x [sim:error={status}]"))
        assert got == status and set(error) == {"error"}
        assert error["error"]["code"] == status and error["error"]["status"] == name
        assert error["error"]["message"]


async def test_validation_errors(http: aiohttp.ClientSession, sim: Simulator) -> None:
    cases: list[Any] = [
        b"{not json",
        {},
        {"contents": []},
        {"contents": [{"role": "system", "parts": [{"text": "x"}]}]},
        {"contents": [{"role": "user", "parts": []}]},
        {"contents": [{"role": "user", "parts": [{"bogus": 1}]}]},
        body(generationConfig={"maxOutputTokens": "many"}),
        body(generationConfig={"candidateCount": 9}),
    ]
    for payload in cases:
        status, error = await post(http, sim, payload)
        assert status == 400, payload
        assert error["error"]["status"] == "INVALID_ARGUMENT" and error["error"]["code"] == 400
    async with http.post(f"{root(sim)}/v1beta/models/{MODEL}:nothing", json=body()) as resp:
        assert resp.status == 404 and (await resp.json())["error"]["status"] == "NOT_FOUND"


async def test_drop_after_cuts_the_stream(http: aiohttp.ClientSession, sim: Simulator) -> None:
    url = f"{root(sim)}/v1beta/models/{MODEL}:streamGenerateContent?alt=sse"
    frames = []
    async with http.post(url, json=body("go [sim:drop_after=3]")) as resp:
        with pytest.raises(aiohttp.ClientPayloadError):
            async for line in resp.content:
                if line.startswith(b"data: "):
                    frames.append(orjson.loads(line[6:]))
    assert len(frames) == 3 and all("finishReason" not in f["candidates"][0] for f in frames)
    assert sim.stats.dropped == 1

    with pytest.raises(aiohttp.ServerDisconnectedError):
        async with http.post(
            f"{root(sim)}/v1beta/models/{MODEL}:generateContent", json=body("[sim:drop_after=0]")
        ):
            pass


async def test_no_usage(http: aiohttp.ClientSession, sim: Simulator) -> None:
    status, reply = await post(http, sim, body("[sim:no_usage]"))
    assert status == 200 and "usageMetadata" not in reply
    url = f"{root(sim)}/v1beta/models/{MODEL}:streamGenerateContent"
    async with http.post(url, json=body("[sim:no_usage]")) as resp:
        chunks = orjson.loads(await resp.read())
    assert len(chunks) == 16 and all("usageMetadata" not in c for c in chunks)


async def test_latency_and_chunk_delay(client: Any) -> None:
    began = time.perf_counter()
    await client.models.generate_content(model=MODEL, contents="[sim:latency_ms=60]")
    assert time.perf_counter() - began >= 0.06
    began = time.perf_counter()
    stream = await client.models.generate_content_stream(
        model=MODEL, contents="[sim:chunk_delay_ms=10] [sim:tokens=5]"
    )
    assert len([chunk async for chunk in stream]) == 5
    assert time.perf_counter() - began >= 0.05


async def test_count_tokens(sim: Simulator, client: Any) -> None:
    counted = await client.models.count_tokens(model=MODEL, contents="Hello there friend")
    assert counted.total_tokens == 9
    forced = await client.models.count_tokens(model=MODEL, contents="[sim:prompt_tokens=77]")
    assert forced.total_tokens == 77
    assert sim.stats.by_path == {"/v1/models/{model}:countTokens": 2}


async def test_api_key(http: aiohttp.ClientSession) -> None:
    async with await start(SimulatorConfig(api_key="g-key")) as sim:
        url = f"{root(sim)}/v1beta/models/{MODEL}:generateContent"
        async with http.post(url, json=body(), headers={"x-goog-api-key": "g-key"}) as resp:
            assert resp.status == 200
        async with http.post(url + "?key=g-key", json=body()) as resp:
            assert resp.status == 200
        async with http.post(url, json=body()) as resp:
            error = (await resp.json())["error"]
            assert resp.status == 403 and error["status"] == "PERMISSION_DENIED"
        good = make_client(sim, key="g-key").aio
        assert (await good.models.generate_content(model=MODEL, contents="hi")).text
        with pytest.raises(errors.ClientError) as denied:
            await make_client(sim, key="wrong").aio.models.generate_content(
                model=MODEL, contents="hi"
            )
        assert denied.value.code == 400 and denied.value.status == "INVALID_ARGUMENT"
        assert denied.value.details["error"]["details"][0]["reason"] == "API_KEY_INVALID"
        assert sim.stats.requests == 5 and sim.stats.errors == 2


async def test_openai_model_routes_are_untouched(http: aiohttp.ClientSession) -> None:
    async with await start(SimulatorConfig(api_key="sk")) as sim:
        headers = {"Authorization": "Bearer sk"}
        async with http.get(f"{sim.base_url}/models/ft:gpt-4o:org::x1", headers=headers) as resp:
            assert resp.status == 200 and (await resp.json())["id"] == "ft:gpt-4o:org::x1"
