"""Tool calls across protocols: a tool the client declares in its own API
reaches an Anthropic or Gemini upstream translated, the upstream's call comes
back in the client's shape (stop reason included), and the tool's result
goes up again on the next turn."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types as gtypes

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records
from native import claude, gateway, gemini

pytestmark = pytest.mark.filterwarnings(
    "ignore:Inheritance class AiohttpClientSession:DeprecationWarning"
)

MODEL = "claude-sonnet-4-5"
ASK = "[sim:tokens=2] [sim:tool=get_weather] weather in Paris?"
PARAMETERS = {"type": "object", "properties": {"city": {"type": "string"}}}


async def openai_tool_turns(served: Served, key: str, stream: bool) -> None:
    tools: Any = [{"type": "function", "function": {"name": "get_weather",
                   "description": "Weather now", "parameters": PARAMETERS}}]  # fmt: skip
    messages: Any = [{"role": "user", "content": ASK}]
    async with sdk(served, key) as client:
        if stream:
            chunks = await client.chat.completions.create(
                model=MODEL, messages=messages, tools=tools, stream=True
            )
            calls, finish = [], None
            async for chunk in chunks:
                for choice in chunk.choices:
                    calls += choice.delta.tool_calls or []
                    finish = choice.finish_reason or finish
            assert finish == "tool_calls"
            call_id, name = calls[0].id, calls[0].function.name  # type: ignore[union-attr]
        else:
            answer = await client.chat.completions.create(
                model=MODEL, messages=messages, tools=tools
            )
            choice = answer.choices[0]
            assert choice.finish_reason == "tool_calls"
            assert choice.message.tool_calls is not None
            call_id, name = (
                choice.message.tool_calls[0].id,
                choice.message.tool_calls[0].function.name,
            )  # type: ignore[union-attr]
        assert name == "get_weather" and call_id
        messages += [
            {"role": "assistant", "tool_calls": [{"id": call_id, "type": "function",
             "function": {"name": name, "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": call_id, "content": "sunny [sim:tokens=3]"},
        ]  # fmt: skip
        final = await client.chat.completions.create(model=MODEL, messages=messages, tools=tools)
    assert final.choices[0].finish_reason == "stop"
    assert len((final.choices[0].message.content or "").split()) == 3


async def anthropic_tool_turns(served: Served, key: str, stream: bool) -> None:
    tools: Any = [{"name": "get_weather", "description": "Weather now",
                   "input_schema": PARAMETERS}]  # fmt: skip
    messages: Any = [{"role": "user", "content": ASK}]
    async with claude(served, key) as client:
        if stream:
            async with client.messages.stream(
                model=MODEL, messages=messages, tools=tools, max_tokens=100
            ) as events:
                message = await events.get_final_message()
        else:
            message = await client.messages.create(
                model=MODEL, messages=messages, tools=tools, max_tokens=100
            )
        assert message.stop_reason == "tool_use"
        [use] = [block for block in message.content if block.type == "tool_use"]
        assert use.name == "get_weather"
        messages += [
            {"role": "assistant", "content": [block.model_dump() for block in message.content]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": use.id,
                                          "content": "sunny [sim:tokens=3]"}]},
        ]  # fmt: skip
        final = await client.messages.create(
            model=MODEL, messages=messages, tools=tools, max_tokens=100
        )
    assert final.stop_reason == "end_turn"
    assert len("".join(b.text for b in final.content if b.type == "text").split()) == 3


async def gemini_tool_turns(served: Served, key: str, stream: bool) -> None:
    declaration = gtypes.FunctionDeclaration(
        name="get_weather", description="Weather now", parameters_json_schema=PARAMETERS
    )
    config = gtypes.GenerateContentConfig(
        tools=[gtypes.Tool(function_declarations=[declaration])],
        automatic_function_calling=gtypes.AutomaticFunctionCallingConfig(disable=True),
    )
    contents: list[Any] = [gtypes.Content(role="user", parts=[gtypes.Part(text=ASK)])]
    async with gemini(served, key).aio as client:
        if stream:
            parts = []
            async for chunk in await client.models.generate_content_stream(
                model=MODEL, contents=contents, config=config
            ):
                for candidate in chunk.candidates or []:
                    parts += (candidate.content.parts or []) if candidate.content else []
        else:
            answer = await client.models.generate_content(
                model=MODEL, contents=contents, config=config
            )
            assert answer.candidates and answer.candidates[0].content
            parts = answer.candidates[0].content.parts or []
        [call] = [part.function_call for part in parts if part.function_call]
        assert call.name == "get_weather"
        response = gtypes.Part.from_function_response(
            name="get_weather", response={"result": "sunny [sim:tokens=3]"}
        )
        contents += [gtypes.Content(role="model", parts=[gtypes.Part(function_call=call)]),
                     gtypes.Content(role="user", parts=[response])]  # fmt: skip
        final = await client.models.generate_content(model=MODEL, contents=contents, config=config)
    assert final.candidates and final.candidates[0].finish_reason == gtypes.FinishReason.STOP
    assert len((final.text or "").split()) == 3


CLIENTS = {"openai": openai_tool_turns, "anthropic": anthropic_tool_turns,
           "gemini": gemini_tool_turns}  # fmt: skip


@pytest.mark.parametrize("upstream", ["anthropic", "gemini"])
@pytest.mark.parametrize("inbound", sorted(CLIENTS))
async def test_a_tool_call_round_trips_through_every_protocol_pair(
    database_url: str, catalog_models: list[Any], simulator: Simulator, upstream: str,
    inbound: str,
) -> None:  # fmt: skip
    async with gateway(database_url, catalog_models, simulator, upstream) as served:
        for stream in (False, True):
            mkey, key = await customer(served)
            await CLIENTS[inbound](served, key, stream)
            records = await usage_records(served, mkey)
            assert [r["status"] for r in records] == ["ok", "ok"], (stream, records)
