"""The Responses codec (protocols/responses/): requests to the hub, answers
from it, and streams both ways, with hypothesis over request fields and
stream contents."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.errors import ApiError
from tollway.protocols import CODECS
from tollway.protocols.responses import ResponsesReader, ResponsesWriter, native_only
from tollway.protocols.sse import SseSplitter
from tollway.types import Usage

CODEC = CODECS["responses"]
Json = dict[str, Any]


def hub_of(**fields: Any) -> Json:
    return CODEC.request_to_hub({"model": "m", **fields})


# -- requests ------------------------------------------------------------------


def test_instructions_and_a_string_input_are_system_and_user() -> None:
    hub = hub_of(instructions="Be terse.", input="Hi", max_output_tokens=20, stream=True)
    assert hub["messages"] == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Hi"},
    ]
    assert hub["max_tokens"] == 20
    assert hub["stream"] is True and hub["stream_options"] == {"include_usage": True}


def test_items_become_messages_with_tool_calls_and_results() -> None:
    items = [
        {"role": "developer", "content": "Rules."},
        {
            "type": "message",
            "role": "user",
            "content": [
                {"type": "input_text", "text": "Look:"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"},
            ],
        },
        {"role": "assistant", "content": [{"type": "output_text", "text": "Let me check."}]},
        {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
        {"type": "function_call", "call_id": "c2", "name": "g", "arguments": '{"a":1}'},
        {"type": "reasoning", "id": "rs_1", "summary": []},
        {"type": "function_call_output", "call_id": "c1", "output": "one"},
        {
            "type": "function_call_output",
            "call_id": "c2",
            "output": [{"type": "input_text", "text": "two"}],
        },
    ]
    hub = hub_of(input=items)
    assert hub["messages"] == [
        {"role": "system", "content": "Rules."},
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                {"id": "c2", "type": "function", "function": {"name": "g", "arguments": '{"a":1}'}},
            ],
        },
        {"role": "tool", "tool_call_id": "c1", "content": "one"},
        {"role": "tool", "tool_call_id": "c2", "content": "two"},
    ]


def test_options_translate_to_chat_words() -> None:
    hub = hub_of(
        input="x",
        reasoning={"effort": "low", "summary": "auto"},
        text={
            "format": {
                "type": "json_schema",
                "name": "n",
                "schema": {"type": "object"},
                "strict": True,
            }
        },
        temperature=0.5,
        top_p=0.9,
        parallel_tool_calls=False,
        verbosity="low",
        tools=[{"type": "function", "name": "f", "parameters": None, "strict": True}],
        tool_choice={"type": "function", "name": "f"},
    )
    assert hub["reasoning_effort"] == "low"
    assert hub["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "n", "schema": {"type": "object"}, "strict": True},
    }
    assert (hub["temperature"], hub["top_p"], hub["parallel_tool_calls"]) == (0.5, 0.9, False)
    assert hub["verbosity"] == "low"
    assert hub["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "f",
                "parameters": {"type": "object", "properties": {}},
                "strict": True,
            },
        }
    ]
    assert hub["tool_choice"] == {"type": "function", "function": {"name": "f"}}


def test_hosted_tools_and_untranslatable_items_are_named_native_only() -> None:
    payload = {
        "model": "m",
        "input": [{"type": "item_reference", "id": "msg_1"}, {"role": "user", "content": "hi"}],
        "tools": [{"type": "web_search"}, {"type": "function", "name": "f"}],
    }
    hub = CODEC.request_to_hub(payload)
    assert [tool["function"]["name"] for tool in hub["tools"]] == ["f"]
    assert native_only(payload) == [
        "tools[0] of type 'web_search'",
        "input[0] of type 'item_reference'",
    ]
    assert native_only({"model": "m", "input": "hi"}) == []


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=8,
)
FIELDS = (
    "input",
    "instructions",
    "tools",
    "tool_choice",
    "max_output_tokens",
    "temperature",
    "top_p",
    "reasoning",
    "text",
    "metadata",
    "stream",
    "store",
    "previous_response_id",
    "parallel_tool_calls",
    "verbosity",
)


@settings(max_examples=400, deadline=None)
@given(st.dictionaries(st.sampled_from(FIELDS), JSON_VALUES, max_size=5))
def test_any_json_in_any_field_is_a_hub_or_a_400(fields: Json) -> None:
    payload = {"model": "m", "input": "hi", **fields}
    try:
        hub = CODEC.request_to_hub(payload)
    except ApiError as exc:
        assert exc.status == 400 and exc.message
        return
    assert hub["messages"] and all(isinstance(m, dict) for m in hub["messages"])
    orjson.dumps(hub)
    native_only(payload)


ITEM = st.one_of(
    st.builds(
        lambda role, text: {"role": role, "content": text},
        st.sampled_from(["user", "assistant", "system", "developer"]),
        st.text(max_size=20),
    ),
    st.builds(
        lambda text: {"role": "user", "content": [{"type": "input_text", "text": text}]},
        st.text(max_size=20),
    ),
    st.builds(
        lambda call_id, args: {
            "type": "function_call",
            "call_id": call_id,
            "name": "f",
            "arguments": args,
        },
        st.text(min_size=1, max_size=5),
        st.text(max_size=10),
    ),
    st.builds(
        lambda call_id, out: {"type": "function_call_output", "call_id": call_id, "output": out},
        st.text(min_size=1, max_size=5),
        st.text(max_size=10),
    ),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(ITEM, min_size=1, max_size=12), st.integers(1, 10_000))
def test_valid_items_keep_every_text_and_call(items: list[Json], limit: int) -> None:
    hub = hub_of(input=items, max_output_tokens=limit)
    assert hub["max_tokens"] == limit
    calls = [m for m in hub["messages"] for _ in m.get("tool_calls", ())]
    assert sum(len(m.get("tool_calls", ())) for m in hub["messages"]) == sum(
        1 for item in items if item.get("type") == "function_call"
    )
    assert len(calls) <= len(items)
    outputs = [m["content"] for m in hub["messages"] if m["role"] == "tool"]
    assert outputs == [
        item["output"] for item in items if item.get("type") == "function_call_output"
    ]


# -- answers -------------------------------------------------------------------


def hub_answer(message: Json, finish: str = "stop") -> Json:
    return {
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "m",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
    }


def test_an_answer_becomes_a_response_with_items_and_usage() -> None:
    message = {
        "role": "assistant",
        "content": "Hello",
        "reasoning_content": "Thinking",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
        ],
    }
    usage = Usage(input_tokens=10, cached_input_tokens=4, output_tokens=9, reasoning_tokens=3)
    response = CODEC.answer_from_hub(hub_answer(message, "tool_calls"), usage)
    assert response["id"] == "resp_abc" and response["object"] == "response"
    assert response["status"] == "completed"
    assert [item["type"] for item in response["output"]] == [
        "reasoning",
        "message",
        "function_call",
    ]
    assert response["output"][1]["content"][0]["text"] == "Hello"
    call = response["output"][2]
    assert (call["call_id"], call["name"], call["arguments"]) == ("call_1", "f", "{}")
    assert response["usage"] == {
        "input_tokens": 10,
        "input_tokens_details": {"cached_tokens": 4},
        "output_tokens": 9,
        "output_tokens_details": {"reasoning_tokens": 3},
        "total_tokens": 19,
    }
    assert CODEC.usage(response) == usage
    back = CODEC.answer_to_hub(response)
    assert back["choices"][0]["message"]["content"] == "Hello"
    assert back["choices"][0]["finish_reason"] == "tool_calls"


def test_a_cut_answer_is_incomplete() -> None:
    response = CODEC.answer_from_hub(
        hub_answer({"role": "assistant", "content": "Hel"}, "length"), None
    )
    assert response["status"] == "incomplete"
    assert response["incomplete_details"] == {"reason": "max_output_tokens"}
    assert CODEC.answer_to_hub(response)["choices"][0]["finish_reason"] == "length"


# -- streams -------------------------------------------------------------------


def chunk(delta: Json, finish: str | None = None) -> Json:
    return {
        "id": "chatcmpl-s",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "m",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def events_of(data: bytes) -> list[Json]:
    return [orjson.loads(payload) for _, payload in SseSplitter().feed(data)]


def written(chunks: list[Json], usage: Usage | None) -> bytes:
    writer = ResponsesWriter({"model": "m"})
    return b"".join(writer.write(c) for c in chunks) + writer.finish(usage)


def test_the_stream_follows_the_order_the_sdk_helper_requires() -> None:
    chunks = [
        chunk({"role": "assistant", "content": ""}),
        chunk({"reasoning_content": "Hm"}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "f", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}),
        chunk({}, "tool_calls"),
    ]
    events = events_of(written(chunks, Usage(input_tokens=5, output_tokens=4)))
    assert [e["type"] for e in events] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.reasoning_summary_part.added",
        "response.reasoning_summary_text.delta",
        "response.reasoning_summary_text.done",
        "response.reasoning_summary_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.content_part.added",
        "response.output_text.delta",
        "response.output_text.delta",
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.output_item.added",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.delta",
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in events] == list(range(len(events)))
    ids = {e["response"]["id"] for e in events if "response" in e}
    assert ids == {"resp_s"}
    final = events[-1]["response"]
    assert [item["type"] for item in final["output"]] == ["reasoning", "message", "function_call"]
    assert final["output"][1]["content"][0]["text"] == "Hello"
    assert final["output"][2]["arguments"] == '{"a":1}'
    assert final["usage"]["input_tokens"] == 5
    for event in events:  # every item event names an item that was added
        if "output_index" in event and event["type"] != "response.output_item.added":
            assert event["output_index"] < len(final["output"])


def test_a_stream_cut_by_its_limit_ends_incomplete() -> None:
    events = events_of(written([chunk({"content": "Hel"}), chunk({}, "length")], None))
    assert events[-1]["type"] == "response.incomplete"
    assert events[-1]["response"]["incomplete_details"] == {"reason": "max_output_tokens"}


def test_a_failed_stream_ends_with_response_failed() -> None:
    writer = ResponsesWriter({"model": "m"})
    data = writer.write(chunk({"content": "Hel"})) + writer.fail(
        ApiError(502, "boom", "upstream_error")
    )
    events = events_of(data)
    assert events[-1]["type"] == "response.failed"
    assert events[-1]["response"]["error"] == {"code": "upstream_error", "message": "boom"}


TEXT_PIECES = st.lists(st.text(min_size=1, max_size=6), max_size=8)


@settings(max_examples=200, deadline=None)
@given(
    TEXT_PIECES,
    TEXT_PIECES,
    st.lists(st.tuples(st.text(min_size=1, max_size=6), TEXT_PIECES), max_size=3),
    st.integers(0, 10_000),
    st.integers(0, 10_000),
    st.integers(1, 97),
)
def test_a_written_stream_reads_back_the_same(
    thoughts: list[str],
    texts: list[str],
    calls: list[tuple[str, list[str]]],
    input_tokens: int,
    output_tokens: int,
    split: int,
) -> None:
    chunks = [chunk({"reasoning_content": t}) for t in thoughts]
    chunks += [chunk({"content": t}) for t in texts]
    for index, (name, pieces) in enumerate(calls):
        first = {
            "index": index,
            "id": f"call_{index}",
            "type": "function",
            "function": {"name": name, "arguments": ""},
        }
        chunks.append(chunk({"tool_calls": [first]}))
        chunks += [
            chunk({"tool_calls": [{"index": index, "function": {"arguments": p}}]}) for p in pieces
        ]
    chunks.append(chunk({}, "tool_calls" if calls else "stop"))
    usage = Usage(input_tokens=input_tokens, output_tokens=output_tokens)
    data = written(chunks, usage)
    reader = ResponsesReader()
    read: list[Json] = []
    for start in range(0, len(data), split):  # any split of the bytes
        read.extend(reader.feed(data[start : start + split]))
    assert reader.done and reader.usage == usage
    deltas = [c["choices"][0]["delta"] for c in read]
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "".join(thoughts)
    assert "".join(d.get("content", "") for d in deltas) == "".join(texts)
    arguments: dict[int, str] = {}
    names: dict[int, str] = {}
    for delta in deltas:
        for call in delta.get("tool_calls", ()):
            arguments[call["index"]] = (
                arguments.get(call["index"], "") + call["function"]["arguments"]
            )
            if "name" in call["function"]:
                names[call["index"]] = call["function"]["name"]
    assert [names[i] for i in sorted(names)] == [name for name, _ in calls]
    assert [arguments[i] for i in sorted(arguments)] == ["".join(p) for _, p in calls]
    assert read[-1]["choices"][0]["finish_reason"] == ("tool_calls" if calls else "stop")


def test_the_reader_fails_on_an_upstream_failure() -> None:
    from tollway.protocols import StreamFailed

    failed = {
        "type": "response.failed",
        "sequence_number": 3,
        "response": {"error": {"code": "server_error", "message": "down"}},
    }
    data = b"event: response.failed\ndata: " + orjson.dumps(failed) + b"\n\n"
    with pytest.raises(StreamFailed) as caught:
        ResponsesReader().feed(data)
    assert "down" in caught.value.error.message


def test_a_hub_request_as_a_responses_body() -> None:
    hub = {
        "model": "m",
        "messages": [
            {"role": "system", "content": "Rules."},
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                ],
            },
            {"role": "tool", "tool_call_id": "c", "content": "ok"},
        ],
        "max_tokens": 30,
        "tools": [
            {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
        ],
    }
    body = CODEC.request_from_hub(hub)
    assert body["instructions"] == "Rules." and body["max_output_tokens"] == 30
    assert body["store"] is False
    assert body["input"] == [
        {"role": "user", "content": "Hi"},
        {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "c", "output": "ok"},
    ]
    assert body["tools"] == [{"type": "function", "name": "f", "parameters": {"type": "object"}}]
    assert CODEC.request_to_hub(body)["messages"][1:] == hub["messages"][1:]


def test_a_replayed_response_reads_back_the_same() -> None:
    from tollway.protocols.responses.replay import replay

    message = {
        "role": "assistant",
        "content": "Hello there",
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": 1}'}}
        ],
    }
    usage = Usage(input_tokens=10, output_tokens=4)
    response = CODEC.answer_from_hub(hub_answer(message, "tool_calls"), usage)
    reader = ResponsesReader()
    chunks = reader.feed(replay(response))
    assert reader.done and reader.usage == usage
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert "".join(d.get("content", "") for d in deltas) == "Hello there"
    events = events_of(replay(response, starting_after=3))
    assert events[0]["sequence_number"] == 4 and events[-1]["type"] == "response.completed"
