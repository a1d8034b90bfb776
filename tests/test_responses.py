"""POST /v1/responses end to end: real gateway and simulator processes on
loopback, the official openai SDK as the client, each call billed exactly
(the cost computed here from the catalog's prices).

On an OpenAI channel the call is passed through to the simulator's own
/v1/responses; on an Anthropic or Gemini channel it is translated through the
hub (the simulator speaks Messages and generateContent there)."""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import openai
import pytest

from tollway.simulator import Simulator
from tollway.types import Model

from conftest import Served, customer, sdk, serve, test_settings, usage_records
from native import gateway

# google-genai's async client subclasses aiohttp's session, which aiohttp warns about.
pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

OPENAI_MODEL = "gpt-5-mini"  # per use, with a cached-input price
WRITING_MODEL = "gpt-5.6-sol"  # per use, with cached-input and cache-write prices
CLAUDE = "claude-sonnet-4-5"
GEMINI = "gemini-2.5-flash"
INSTRUCTIONS = "You are terse."
WORDS = 7
USER = f"[sim:tokens={WORDS}] Say hello to the gateway"
PER_ITEM = 3  # the simulators' tokens per message, and 3 to prime the reply


def prompt_tokens(*texts: str) -> int:
    """The simulators' rule: 3 + each message's (3 + its words)."""
    return PER_ITEM + sum(PER_ITEM + len(text.split()) for text in texts)


def cost_nano(
    model: Model, input_tokens: int, output_tokens: int, cached: int = 0, written: int = 0
) -> int:
    """Exact cost of a call; ``written`` cache-write tokens need the model's write price."""
    price = model.per_use
    assert price is not None
    cached_rate = (
        price.cached_input_mtok if price.cached_input_mtok is not None else price.input_mtok
    )
    write_rate = price.cache_write_mtok if written else 0
    assert write_rate is not None
    exact = (
        Decimal(input_tokens - cached - written) * price.input_mtok
        + Decimal(cached) * cached_rate
        + Decimal(written) * write_rate
        + Decimal(output_tokens) * price.output_mtok
    ) / 10**6
    return int(exact.quantize(Decimal(1), ROUND_HALF_UP))


def find(models: list[Model], model_id: str) -> Model:
    return next(model for model in models if model.id == model_id)


async def only_record(served: Served, management_key: str) -> dict[str, Any]:
    records = await usage_records(served, management_key)
    assert len(records) == 1, records
    return records[0]


def assert_cost(record: dict[str, Any], nano: int) -> None:
    assert record["status"] == "ok", record
    assert record["usage_source"] == "upstream", record
    assert Decimal(record["cost_usd"]) == Decimal(nano) / 10**9, record


def sent_to(simulator: Simulator, path: str) -> list[dict[str, Any]]:
    return [entry["body"] for entry in simulator.stats.recent if entry["path"] == path]


# -- on an OpenAI channel: passed through ----------------------------------------


async def test_create_passes_through_and_bills_cached_and_reasoning_tokens(
    served: Served, simulator: Simulator, catalog_models: list[Model]
) -> None:
    mkey, key = await customer(served)
    user = f"[sim:tokens={WORDS}] [sim:cached=4] [sim:reasoning=5] Say hello"
    simulator.stats.recent.clear()
    async with sdk(served, key) as client:
        response = await client.responses.create(
            model=OPENAI_MODEL, instructions=INSTRUCTIONS, input=user, metadata={"k": "v"}
        )
    assert response.id.startswith("resp_") and len(response.id) == 37
    assert response.status == "completed" and response.store is True
    assert response.metadata == {"k": "v"} and response.instructions == INSTRUCTIONS
    assert len(response.output_text.split()) == WORDS
    assert [item.type for item in response.output] == ["reasoning", "message"]
    tokens = prompt_tokens(INSTRUCTIONS, user)
    assert response.usage is not None
    assert response.usage.input_tokens == tokens
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens == WORDS + 5
    assert response.usage.output_tokens_details.reasoning_tokens == 5
    [upstream] = sent_to(simulator, "/v1/responses")
    assert upstream["store"] is False and upstream["input"] == user  # the client's body
    record = await only_record(served, mkey)
    model = find(catalog_models, OPENAI_MODEL)
    assert_cost(record, cost_nano(model, tokens, WORDS + 5, cached=4))
    assert record["tokens"]["cached_input_tokens"] == 4


async def test_cache_writes_are_billed_at_the_cache_write_price(
    served: Served, catalog_models: list[Model]
) -> None:
    """gpt-5.6 reports prompt-cache writes in ``input_tokens_details.cache_write_tokens``
    (inside ``input_tokens``): they cost the catalog's write price, not input's."""
    mkey, key = await customer(served)
    user = f"[sim:tokens={WORDS}] [sim:cached=2] [sim:cache_write=5] Say hello"
    async with sdk(served, key) as client:
        response = await client.responses.create(model=WRITING_MODEL, input=user)
    tokens = prompt_tokens(user)
    assert response.usage is not None and response.usage.input_tokens == tokens
    record = await only_record(served, mkey)
    model = find(catalog_models, WRITING_MODEL)
    assert model.per_use is not None and model.per_use.cache_write_mtok is not None
    assert model.per_use.cache_write_mtok > model.per_use.input_mtok  # dearer than input
    assert_cost(record, cost_nano(model, tokens, WORDS, cached=2, written=5))
    assert record["tokens"]["cache_write_tokens"] == 5
    assert record["tokens"]["cached_input_tokens"] == 2


async def test_stream_passes_through_with_the_gateways_id(
    served: Served, simulator: Simulator, catalog_models: list[Model]
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        stream = await client.responses.create(
            model=OPENAI_MODEL, instructions=INSTRUCTIONS, input=USER, stream=True
        )
        events = [event async for event in stream]
    kinds = [event.type for event in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [event.sequence_number for event in events] == list(range(len(events)))
    ids = {event.response.id for event in events if hasattr(event, "response")}
    assert len(ids) == 1 and ids.pop().startswith("resp_")
    final = events[-1].response
    assert len(final.output_text.split()) == WORDS
    tokens = prompt_tokens(INSTRUCTIONS, USER)
    record = await only_record(served, mkey)
    assert_cost(record, cost_nano(find(catalog_models, OPENAI_MODEL), tokens, WORDS))


async def test_stream_helper_gets_the_final_response(
    served: Served, catalog_models: list[Model]
) -> None:
    mkey, key = await customer(served)
    async with (
        sdk(served, key) as client,
        client.responses.stream(model=OPENAI_MODEL, input=USER) as stream,
    ):
        final = await stream.get_final_response()
    assert len(final.output_text.split()) == WORDS
    record = await only_record(served, mkey)
    model = find(catalog_models, OPENAI_MODEL)
    assert_cost(record, cost_nano(model, prompt_tokens(USER), WORDS))


# -- on an Anthropic or Gemini channel: translated ---------------------------------


@pytest.mark.parametrize(("kind", "model_id"), [("anthropic", CLAUDE), ("gemini", GEMINI)])
@pytest.mark.parametrize("mode", ["create", "stream", "helper"])
async def test_translated_channels_answer_in_responses_shapes(
    database_url: str,
    catalog_models: list[Model],
    simulator: Simulator,
    kind: str,
    model_id: str,
    mode: str,
) -> None:
    async with gateway(database_url, catalog_models, simulator, kind) as served:
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            final = await _respond(client, mode, model_id)
        assert final.id.startswith("resp_") and final.status == "completed"
        assert len(final.output_text.split()) == WORDS
        tokens = prompt_tokens(INSTRUCTIONS, USER)
        assert final.usage is not None
        assert (final.usage.input_tokens, final.usage.output_tokens) == (tokens, WORDS)
        record = await only_record(served, mkey)
        assert_cost(record, cost_nano(find(catalog_models, model_id), tokens, WORDS))


async def _respond(client: openai.AsyncOpenAI, mode: str, model: str) -> Any:
    if mode == "create":
        return await client.responses.create(
            model=model, instructions=INSTRUCTIONS, input=USER, max_output_tokens=50
        )
    if mode == "helper":
        async with client.responses.stream(
            model=model, instructions=INSTRUCTIONS, input=USER, max_output_tokens=50
        ) as stream:
            return await stream.get_final_response()
    events = await client.responses.create(
        model=model, instructions=INSTRUCTIONS, input=USER, max_output_tokens=50, stream=True
    )
    final = None
    async for event in events:
        if event.type == "response.completed":
            final = event.response
    return final


# -- tools -----------------------------------------------------------------------

WEATHER = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    "strict": False,
}
ASK_TOOL = "[sim:tool=get_weather] [sim:tokens=2] Weather in Paris?"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_function_call_round_trip(
    database_url: str, catalog_models: list[Model], simulator: Simulator, kind: str
) -> None:
    model_id = OPENAI_MODEL if kind == "openai" else CLAUDE
    async with gateway(database_url, catalog_models, simulator, kind) as served:
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            async with client.responses.stream(  # the call streamed through the helper
                model=model_id, input=ASK_TOOL, tools=[WEATHER], store=False
            ) as stream:
                first = await stream.get_final_response()
            [call] = [item for item in first.output if item.type == "function_call"]
            assert call.name == "get_weather" and call.arguments == "{}"
            history: Any = [
                {"role": "user", "content": ASK_TOOL},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": '{"t": 21}'},
            ]
            async with client.responses.stream(
                model=model_id, input=history, tools=[WEATHER], max_output_tokens=40
            ) as stream:
                second = await stream.get_final_response()
        assert second.status == "completed" and second.output_text
        assert [item.type for item in second.output] == ["message"]
        records = await usage_records(served, mkey)
        assert len(records) == 2 and all(r["status"] == "ok" for r in records)


# -- an OpenAI-compatible upstream without /responses ------------------------------


async def test_a_channel_without_responses_serves_through_its_chat_completions(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    async with serve(test_settings(database_url), catalog_models) as served:
        got = await served.admin.post(
            "/api/channels",
            json={
                "name": "compat",
                "type": "openai",
                "base_url": simulator.base_url,
                "api_key": "sim-key",
                "models": [OPENAI_MODEL],
                "model_mapping": {OPENAI_MODEL: "no-responses/" + OPENAI_MODEL},
            },
        )
        assert got.status_code == 201, got.text
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            response = await client.responses.create(
                model=OPENAI_MODEL, instructions=INSTRUCTIONS, input=USER
            )
            async with client.responses.stream(
                model=OPENAI_MODEL, instructions=INSTRUCTIONS, input=USER
            ) as stream:
                streamed = await stream.get_final_response()
        for answer in (response, streamed):
            assert answer.status == "completed" and len(answer.output_text.split()) == WORDS
        tokens = prompt_tokens(INSTRUCTIONS, USER)
        records = await usage_records(served, mkey)
        assert len(records) == 2
        nano = cost_nano(find(catalog_models, OPENAI_MODEL), tokens, WORDS)
        for record in records:
            assert_cost(record, nano)


# -- refusals ----------------------------------------------------------------------


async def test_hosted_tools_need_an_openai_channel(
    database_url: str, catalog_models: list[Model], simulator: Simulator
) -> None:
    async with gateway(database_url, catalog_models, simulator, "anthropic") as served:
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            with pytest.raises(openai.BadRequestError) as caught:
                await client.responses.create(
                    model=CLAUDE, input="hi", tools=[{"type": "web_search"}]
                )
        assert "web_search" in caught.value.message
        assert caught.value.param == "tools[0]"
        assert await usage_records(served, mkey) == []
        assert await served.balance_usd(mkey) == "10"


async def test_a_per_call_token_is_refused_a_per_use_model(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    async with sdk(served, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.responses.create(model=OPENAI_MODEL, input="hi")
    assert caught.value.code == "billing_mode_mismatch"
    assert await usage_records(served, mkey) == []


HOSTILE: list[tuple[dict[str, Any], str | None]] = [
    ({"input": "hi"}, "model"),
    ({"model": OPENAI_MODEL}, "input"),
    ({"model": OPENAI_MODEL, "input": []}, "input"),
    ({"model": OPENAI_MODEL, "input": 7}, "input"),
    ({"model": OPENAI_MODEL, "input": [7]}, "input[0]"),
    ({"model": OPENAI_MODEL, "input": [{"role": "king", "content": "x"}]}, "input[0].role"),
    ({"model": OPENAI_MODEL, "input": [{"role": "user", "content": [{"type": "x"}]}]}, None),
    ({"model": OPENAI_MODEL, "input": [{"type": "function_call_output", "output": "x"}]}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "max_output_tokens": 0}, "max_output_tokens"),
    ({"model": OPENAI_MODEL, "input": "hi", "max_output_tokens": True}, "max_output_tokens"),
    ({"model": OPENAI_MODEL, "input": "hi", "temperature": 3}, "temperature"),
    ({"model": OPENAI_MODEL, "input": "hi", "stream": "yes"}, "stream"),
    ({"model": OPENAI_MODEL, "input": "hi", "store": 1}, "store"),
    ({"model": OPENAI_MODEL, "input": "hi", "metadata": {"k": 1}}, "metadata"),
    ({"model": OPENAI_MODEL, "input": "hi", "metadata": {str(i): "v" for i in range(17)}}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "tools": [{"type": "function", "name": ""}]}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "tools": {"a": 1}}, "tools"),
    ({"model": OPENAI_MODEL, "input": "hi", "tool_choice": ["auto"]}, "tool_choice"),
    ({"model": OPENAI_MODEL, "input": "hi", "reasoning": {"effort": "huge"}}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "text": {"format": {"type": "xml"}}}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "previous_response_id": "x" * 65}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "previous_response_id": "resp_nope"}, None),
    ({"model": OPENAI_MODEL, "input": "hi", "conversation": "conv_1"}, "conversation"),
    ({"model": OPENAI_MODEL, "input": "hi", "background": True}, "background"),
    ({"model": "text-embedding-3-small", "input": "hi"}, "model"),
]


async def test_hostile_input_is_a_400_and_costs_nothing(served: Served) -> None:
    mkey, key = await customer(served)
    async with served.client(key) as http:
        for body, param in HOSTILE:
            got = await http.post("/v1/responses", json=body)
            assert got.status_code == 400, (body, got.text)
            error = got.json()["error"]
            assert set(error) >= {"message", "type", "param", "code"}, body
            if param is not None:
                assert error["param"] == param, (body, error)
        for raw in (b"", b"[]", b"{", b'"x"'):
            got = await http.post("/v1/responses", content=raw)
            assert got.status_code == 400, (raw, got.text)
    assert await usage_records(served, mkey) == []
    assert await served.balance_usd(mkey) == "10"


@pytest.mark.parametrize("kind", ["openai", "anthropic"])
async def test_a_stream_the_upstream_cuts_ends_with_response_failed(
    database_url: str, catalog_models: list[Model], simulator: Simulator, kind: str
) -> None:
    model_id = OPENAI_MODEL if kind == "openai" else CLAUDE
    async with gateway(database_url, catalog_models, simulator, kind) as served:
        mkey, key = await customer(served)
        async with sdk(served, key) as client:
            stream = await client.responses.create(
                model=model_id, input="[sim:drop_after=2] Tell me", stream=True
            )
            events = [event async for event in stream]
        assert events[0].type == "response.created" and events[-1].type == "response.failed"
        numbers = [event.sequence_number for event in events]
        assert numbers == sorted(set(numbers))
        assert len({event.response.id for event in events if hasattr(event, "response")}) == 1
        assert events[-1].response.error is not None
        assert events[-1].response.error.code == "upstream_interrupted"
        deltas = [event for event in events if event.type == "response.output_text.delta"]
        assert len(deltas) == 2
        record = await only_record(served, mkey)
        assert record["status"] == "upstream_interrupted"
        assert Decimal(record["cost_usd"]) > 0
