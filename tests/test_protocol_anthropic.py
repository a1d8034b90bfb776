"""The Anthropic Messages codec, against Anthropic's documented examples.

The examples below are copied from Anthropic's public documentation (each
cites its page); the rest are tables of what each translation must do."""

from __future__ import annotations

import copy
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from tollway.errors import ApiError
from tollway.protocols.anthropic import (
    DEFAULT_MAX_TOKENS,
    AnthropicCodec,
    AnthropicReader,
    AnthropicWriter,
    native_only,
)
from tollway.protocols.base import Codec, HubReader, HubWriter, StreamFailed
from tollway.types import Usage

from fuzzing import FUZZ

CODEC: Codec = AnthropicCodec()  # mypy checks the codec keeps the interface
_READER: HubReader = AnthropicReader()
_WRITER: HubWriter = AnthropicWriter({})
Json = dict[str, Any]

# --- documented examples ---------------------------------------------------

# https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
WEATHER_TOOL = {
    "name": "get_weather",
    "description": "Get the current weather in a given location",
    "input_schema": {
        "type": "object",
        "properties": {
            "location": {
                "type": "string",
                "description": "The city and state, e.g. San Francisco, CA",
            },
            "unit": {
                "type": "string",
                "enum": ["celsius", "fahrenheit"],
                "description": 'The unit of temperature, either "celsius" or "fahrenheit"',
            },
        },
        "required": ["location"],
    },
}
# https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
TOOL_CONVERSATION = {
    "model": "claude-opus-4-1-20250805",
    "max_tokens": 1024,
    "tools": [WEATHER_TOOL],
    "messages": [
        {"role": "user", "content": "What's the weather like in San Francisco?"},
        {
            "role": "assistant",
            "content": [
                {
                    "type": "text",
                    "text": "I'll check the current weather in San Francisco for you.",
                },
                {
                    "type": "tool_use",
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "name": "get_weather",
                    "input": {"location": "San Francisco, CA", "unit": "celsius"},
                },
            ],
        },
        {
            "role": "user",
            "content": [
                {
                    "type": "tool_result",
                    "tool_use_id": "toolu_01A09q90qw90lq917835lq9",
                    "content": "15 degrees",
                }
            ],
        },
    ],
}
# https://docs.anthropic.com/en/docs/build-with-claude/vision
VISION_REQUEST = {
    "model": "claude-sonnet-4-20250514",
    "max_tokens": 1024,
    "messages": [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Image 1:"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/4AAQSk"},
                },
                {"type": "text", "text": "Image 2:"},
                {
                    "type": "image",
                    "source": {
                        "type": "url",
                        "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg",
                    },
                },
                {"type": "text", "text": "How are these images different?"},
            ],
        }
    ],
}
# https://docs.anthropic.com/en/api/messages (the example response)
TEXT_ANSWER = {
    "content": [{"text": "Hi! My name is Claude.", "type": "text"}],
    "id": "msg_013Zva2CMHLNnXjNJJKqJ2EF",
    "model": "claude-3-7-sonnet-20250219",
    "role": "assistant",
    "stop_reason": "end_turn",
    "stop_sequence": None,
    "type": "message",
    "usage": {"input_tokens": 2095, "output_tokens": 503},
}
# https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/overview
TOOL_ANSWER = {
    "id": "msg_01Aq9w938a90dw8q",
    "model": "claude-opus-4-1-20250805",
    "stop_reason": "tool_use",
    "role": "assistant",
    "content": [
        {"type": "text", "text": "I'll check the current weather in San Francisco for you."},
        {
            "type": "tool_use",
            "id": "toolu_01A09q90qw90lq917835lq9",
            "name": "get_weather",
            "input": {"location": "San Francisco, CA", "unit": "celsius"},
        },
    ],
}
# https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
THINKING_ANSWER = {
    "content": [
        {
            "type": "thinking",
            "thinking": "Let me analyze this step by step...",
            "signature": "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG"
            "/UvLEczmEsUjavL....",
        },
        {"type": "text", "text": "Based on my analysis..."},
    ]
}
# https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
CACHE_USAGE = {
    "input_tokens": 2048,
    "cache_read_input_tokens": 1800,
    "cache_creation_input_tokens": 248,
    "output_tokens": 503,
    "cache_creation": {"ephemeral_5m_input_tokens": 148, "ephemeral_1h_input_tokens": 100},
}
# https://docs.anthropic.com/en/api/messages-streaming (basic streaming request)
BASIC_STREAM = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-20250514", "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hello"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "!"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence":null}, "usage": {"output_tokens": 15}}

event: message_stop
data: {"type": "message_stop"}

"""  # noqa: E501
# https://docs.anthropic.com/en/api/messages-streaming (streaming request with tool use)
TOOL_STREAM = b"""event: message_start
data: {"type":"message_start","message":{"id":"msg_014p7gG3wDgGV9EUtLvnow3U","type":"message","role":"assistant","model":"claude-opus-4-20250514","stop_sequence":null,"usage":{"input_tokens":472,"output_tokens":2},"content":[],"stop_reason":null}}

event: content_block_start
data: {"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}

event: ping
data: {"type": "ping"}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Okay"}}

event: content_block_delta
data: {"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":", let's check the weather for San Francisco, CA:"}}

event: content_block_stop
data: {"type":"content_block_stop","index":0}

event: content_block_start
data: {"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_01T1x1fJ34qAmk2tNTrN7Up6","name":"get_weather","input":{}}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\\"location\\":"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" \\"San"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" Francisc"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"o,"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":" CA\\""}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":", "}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"\\"unit\\": \\"fah"}}

event: content_block_delta
data: {"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"renheit\\"}"}}

event: content_block_stop
data: {"type":"content_block_stop","index":1}

event: message_delta
data: {"type":"message_delta","delta":{"stop_reason":"tool_use","stop_sequence":null},"usage":{"output_tokens":89}}

event: message_stop
data: {"type":"message_stop"}

"""  # noqa: E501
# https://docs.anthropic.com/en/api/messages-streaming (streaming with extended thinking)
THINKING_STREAM = b"""event: message_start
data: {"type": "message_start", "message": {"id": "msg_01...", "type": "message", "role": "assistant", "content": [], "model": "claude-opus-4-20250514", "stop_reason": null, "stop_sequence": null}}

event: content_block_start
data: {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "Let me solve this step by step:\\n\\n1. First break down 27 * 453"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "thinking_delta", "thinking": "\\n2. 453 = 400 + 50 + 3"}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 0, "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 0}

event: content_block_start
data: {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}

event: content_block_delta
data: {"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "27 * 453 = 12,231"}}

event: content_block_stop
data: {"type": "content_block_stop", "index": 1}

event: message_delta
data: {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}}

event: message_stop
data: {"type": "message_stop"}

"""  # noqa: E501
# https://docs.anthropic.com/en/api/messages-streaming (error events)
OVERLOADED_EVENT = (
    b"event: error\n"
    b'data: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
)
# https://docs.anthropic.com/en/api/errors
NOT_FOUND_ERROR = {
    "type": "error",
    "error": {"type": "not_found_error", "message": "The requested resource could not be found."},
    "request_id": "req_011CSHoEeqs5C35K2UUqR7Fy",
}


def minimal(**fields: Any) -> Json:
    body: Json = {"model": "claude-sonnet-4-5", "max_tokens": 1024}
    body["messages"] = [{"role": "user", "content": "Hello, world"}]
    return {**body, **fields}


# --- request_to_hub -----------------------------------------------------------


def test_a_plain_request_becomes_a_hub_request() -> None:
    hub = CODEC.request_to_hub(
        minimal(
            system="You are a seasoned data scientist.",
            temperature=0.5,
            top_p=0.9,
            stop_sequences=["\n\nHuman:"],
            stream=True,
            metadata={"user_id": "user-42"},
        )
    )
    assert hub == {
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "messages": [
            {"role": "system", "content": "You are a seasoned data scientist."},
            {"role": "user", "content": "Hello, world"},
        ],
        "temperature": 0.5,
        "top_p": 0.9,
        "stop": ["\n\nHuman:"],
        "stream": True,
        "user": "user-42",
    }


def test_system_text_blocks_become_text_parts() -> None:
    system = [
        {"type": "text", "text": "You are an AI assistant."},
        {"type": "text", "text": "<the entire book>", "cache_control": {"type": "ephemeral"}},
    ]
    hub = CODEC.request_to_hub(minimal(system=system))
    assert hub["messages"][0] == {
        "role": "system",
        "content": [
            {"type": "text", "text": "You are an AI assistant."},
            {"type": "text", "text": "<the entire book>"},
        ],
    }


def test_images_by_base64_and_url_become_image_url_parts() -> None:
    hub = CODEC.request_to_hub(VISION_REQUEST)
    assert hub["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Image 1:"},
                {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSk"}},
                {"type": "text", "text": "Image 2:"},
                {
                    "type": "image_url",
                    "image_url": {
                        "url": "https://upload.wikimedia.org/wikipedia/commons/a/a7/Camponotus_flavomarginatus_ant.jpg"
                    },
                },
                {"type": "text", "text": "How are these images different?"},
            ],
        }
    ]


def test_tools_tool_use_and_tool_results_become_functions_calls_and_tool_messages() -> None:
    hub = CODEC.request_to_hub(TOOL_CONVERSATION)
    assert hub["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "description": "Get the current weather in a given location",
                "parameters": WEATHER_TOOL["input_schema"],
            },
        }
    ]
    assert hub["messages"][1:] == [
        {
            "role": "assistant",
            "content": "I'll check the current weather in San Francisco for you.",
            "tool_calls": [
                {
                    "id": "toolu_01A09q90qw90lq917835lq9",
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                    },
                }
            ],
        },
        {"role": "tool", "tool_call_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"},
    ]


def test_tool_results_keep_their_order_and_the_text_after_them() -> None:
    content = [
        {"type": "tool_result", "tool_use_id": "toolu_1", "content": "first"},
        {
            "type": "tool_result",
            "tool_use_id": "toolu_2",
            "content": [
                {"type": "text", "text": "15 degrees"},
                {
                    "type": "image",
                    "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"},
                },
            ],
            "is_error": False,
        },
        {"type": "text", "text": "What should I do next?"},
    ]
    hub = CODEC.request_to_hub(minimal(messages=[{"role": "user", "content": content}]))
    assert hub["messages"] == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "first"},
        {
            "role": "tool",
            "tool_call_id": "toolu_2",
            "content": [{"type": "text", "text": "15 degrees"}],
        },
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
                {"type": "text", "text": "What should I do next?"},
            ],
        },
    ]


def test_text_before_a_tool_result_stays_before_it() -> None:
    content = [
        {"type": "text", "text": "a"},
        {"type": "tool_result", "tool_use_id": "toolu_1"},
        {"type": "text", "text": "b"},
    ]
    hub = CODEC.request_to_hub(minimal(messages=[{"role": "user", "content": content}]))
    assert hub["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "a"}]},
        {"role": "tool", "tool_call_id": "toolu_1", "content": ""},
        {"role": "user", "content": [{"type": "text", "text": "b"}]},
    ]


def test_thinking_in_assistant_history_is_dropped() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "Let me think", "signature": "sig"},
            {"type": "redacted_thinking", "data": "EmwKAhgBEgy3va3pzix"},
            {"type": "text", "text": "Yes."},
        ],
    }
    hub = CODEC.request_to_hub(minimal(messages=[*minimal()["messages"], assistant]))
    assert hub["messages"][-1] == {"role": "assistant", "content": "Yes."}


@pytest.mark.parametrize(
    ("choice", "hub_choice"),
    [
        ({"type": "auto"}, {"tool_choice": "auto"}),
        ({"type": "any"}, {"tool_choice": "required"}),
        ({"type": "none"}, {"tool_choice": "none"}),
        (
            {"type": "tool", "name": "get_weather"},
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
        ),
        (
            {"type": "any", "disable_parallel_tool_use": True},
            {"tool_choice": "required", "parallel_tool_calls": False},
        ),
    ],
)
def test_tool_choice(choice: Json, hub_choice: Json) -> None:
    hub = CODEC.request_to_hub(minimal(tools=[WEATHER_TOOL], tool_choice=choice))
    assert {k: hub[k] for k in hub_choice} == hub_choice
    assert ("parallel_tool_calls" in hub) == ("parallel_tool_calls" in hub_choice)


@pytest.mark.parametrize(
    ("fields", "param"),
    [
        ({"model": ""}, "model"),
        ({"model": 7}, "model"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"max_tokens": True}, "max_tokens"),
        ({"max_tokens": None}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages[0]"),
        ({"messages": [{"role": "user", "content": []}]}, "messages[0].content"),
        ({"messages": [{"role": "user", "content": 3}]}, "messages[0].content"),
        (
            {"messages": [{"role": "user", "content": [{"type": "tool_use"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {"messages": [{"role": "assistant", "content": [{"type": "image"}]}]},
            "messages[0].content[0].type",
        ),
        (
            {
                "messages": [
                    {
                        "role": "user",
                        "content": [
                            {
                                "type": "image",
                                "source": {
                                    "type": "base64",
                                    "media_type": "image/bmp",
                                    "data": "x",
                                },
                            }
                        ],
                    }
                ]
            },
            "messages[0].content[0].source.media_type",
        ),
        ({"system": 5}, "system"),
        ({"system": [{"type": "image"}]}, "system[0]"),
        ({"temperature": 1.5}, "temperature"),
        ({"temperature": "hot"}, "temperature"),
        ({"top_p": -0.1}, "top_p"),
        ({"top_k": -1}, "top_k"),
        ({"stop_sequences": "STOP"}, "stop_sequences"),
        ({"stop_sequences": [""]}, "stop_sequences[0]"),
        ({"stream": "yes"}, "stream"),
        ({"metadata": {"user_id": 5}}, "metadata.user_id"),
        ({"tools": [{"name": "x"}]}, "tools[0].input_schema"),
        ({"tools": [{"type": 5, "name": "web_search"}]}, "tools[0].type"),
        ({"tools": [{"type": "web_search_20250305"}]}, "tools[0].name"),
        ({"tool_choice": {"type": "some"}}, "tool_choice.type"),
        ({"tool_choice": {"type": "tool"}}, "tool_choice.name"),
        ({"thinking": {"type": "enabled", "budget_tokens": 10}}, "thinking.budget_tokens"),
    ],
)
def test_invalid_requests_are_refused_naming_the_field(fields: Json, param: str) -> None:
    with pytest.raises(ApiError) as refused:
        CODEC.request_to_hub(minimal(**fields))
    assert refused.value.status == 400
    assert refused.value.code == "invalid_request"
    assert refused.value.param == param


def test_missing_required_fields_are_refused() -> None:
    for field in ("model", "max_tokens", "messages"):
        body = minimal()
        del body[field]
        with pytest.raises(ApiError) as refused:
            CODEC.request_to_hub(body)
        assert refused.value.param == field


def test_tool_input_too_deep_for_json_is_a_400() -> None:
    deep: Any = 1
    for _ in range(300):
        deep = [deep]
    assistant = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"x": deep}}],
    }
    with pytest.raises(ApiError) as refused:
        CODEC.request_to_hub(minimal(messages=[assistant]))
    assert refused.value.status == 400


def test_the_payload_is_not_changed() -> None:
    for payload in (TOOL_CONVERSATION, VISION_REQUEST):
        before = copy.deepcopy(payload)
        CODEC.request_from_hub(CODEC.request_to_hub(payload))
        assert payload == before


# --- request_from_hub ---------------------------------------------------------


def test_system_messages_are_joined_and_turns_alternate() -> None:
    hub = {
        "model": "claude-sonnet-4-5",
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric units."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "get_weather", "arguments": '{"location":"Paris"}'},
                    },
                    {
                        "id": "call_2",
                        "type": "function",
                        "function": {"name": "get_time", "arguments": "{not json"},
                    },
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "15 degrees"},
            {
                "role": "tool",
                "tool_call_id": "call_2",
                "content": [{"type": "text", "text": "9am"}],
            },
            {"role": "user", "content": "Thanks"},
        ],
    }
    body = CODEC.request_from_hub(hub)
    assert body["system"] == [
        {"type": "text", "text": "Be brief."},
        {"type": "text", "text": "Use metric units."},
    ]
    assert body["max_tokens"] == DEFAULT_MAX_TOKENS == 4096
    assert body["messages"] == [
        {
            "role": "user",
            "content": [
                {"type": "text", "text": "Hi"},
                {"type": "text", "text": "Weather in Paris?"},
            ],
        },
        {
            "role": "assistant",
            "content": [
                {
                    "type": "tool_use",
                    "id": "call_1",
                    "name": "get_weather",
                    "input": {"location": "Paris"},
                },
                {"type": "tool_use", "id": "call_2", "name": "get_time", "input": {}},
            ],
        },
        {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_1", "content": "15 degrees"},
                {
                    "type": "tool_result",
                    "tool_use_id": "call_2",
                    "content": [{"type": "text", "text": "9am"}],
                },
                {"type": "text", "text": "Thanks"},
            ],
        },
    ]


def test_one_system_message_is_a_string() -> None:
    hub = {"model": "m", "messages": [{"role": "system", "content": "Be brief."}]}
    assert CODEC.request_from_hub(hub)["system"] == "Be brief."


def test_image_urls_become_base64_or_url_image_blocks() -> None:
    content = [
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGR"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.png", "detail": "high"}},
        {"type": "text", "text": "Compare."},
    ]
    body = CODEC.request_from_hub(
        {"model": "m", "messages": [{"role": "user", "content": content}]}
    )
    assert body["messages"][0]["content"] == [
        {
            "type": "image",
            "source": {"type": "base64", "media_type": "image/webp", "data": "UklGR"},
        },
        {"type": "image", "source": {"type": "url", "url": "https://example.com/a.png"}},
        {"type": "text", "text": "Compare."},
    ]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"max_tokens": 100}, {"max_tokens": 100}),
        ({"max_tokens": 100, "max_completion_tokens": 50}, {"max_tokens": 50}),
        ({"stop": "END"}, {"stop_sequences": ["END"]}),
        ({"stop": ["a", "b"]}, {"stop_sequences": ["a", "b"]}),
        ({"temperature": 0.2, "top_p": 0.5}, {"temperature": 0.2, "top_p": 0.5}),
        ({"temperature": 1.8}, {"temperature": 1}),
        ({"stream": True}, {"stream": True}),
        ({"user": "u-1"}, {"metadata": {"user_id": "u-1"}}),
        ({"tool_choice": "auto"}, {"tool_choice": {"type": "auto"}}),
        ({"tool_choice": "required"}, {"tool_choice": {"type": "any"}}),
        ({"tool_choice": "none"}, {"tool_choice": {"type": "none"}}),
        (
            {"tool_choice": {"type": "function", "function": {"name": "get_weather"}}},
            {"tool_choice": {"type": "tool", "name": "get_weather"}},
        ),
        (
            {"tool_choice": "required", "parallel_tool_calls": False},
            {"tool_choice": {"type": "any", "disable_parallel_tool_use": True}},
        ),
        ({"tool_choice": "none", "parallel_tool_calls": False}, {"tool_choice": {"type": "none"}}),
        (
            {
                "tools": [{"type": "function", "function": {"name": "f"}}],
                "parallel_tool_calls": False,
            },
            {"tool_choice": {"type": "auto", "disable_parallel_tool_use": True}},
        ),
        ({"parallel_tool_calls": False}, {"tool_choice": None}),
    ],
)
def test_request_fields_from_hub(fields: Json, expected: Json) -> None:
    body = CODEC.request_from_hub(
        {"model": "m", "messages": [{"role": "user", "content": "x"}], **fields}
    )
    assert {k: body.get(k) for k in expected} == expected


def test_openai_only_fields_are_left_out() -> None:
    hub = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "response_format": {"type": "json_object"},
        "presence_penalty": 0.5,
        "logprobs": True,
        "seed": 4,
        "stream": False,
        "n": 1,
    }
    body = CODEC.request_from_hub(hub)
    assert body == {
        "model": "m",
        "max_tokens": DEFAULT_MAX_TOKENS,
        "messages": [{"role": "user", "content": "x"}],
    }


def test_functions_become_tools_with_an_input_schema() -> None:
    hub = {
        "model": "m",
        "messages": [{"role": "user", "content": "x"}],
        "tools": [
            {"type": "function", "function": {"name": "now"}},
            {
                "type": "function",
                "function": {"name": "get_weather", "parameters": WEATHER_TOOL["input_schema"]},
            },
        ],
    }
    assert CODEC.request_from_hub(hub)["tools"] == [
        {"name": "now", "input_schema": {"type": "object", "properties": {}}},
        {"name": "get_weather", "input_schema": WEATHER_TOOL["input_schema"]},
    ]


@pytest.mark.parametrize("n", [2, 5])
def test_more_than_one_choice_is_refused(n: int) -> None:
    with pytest.raises(ApiError) as refused:
        CODEC.request_from_hub(
            {"model": "m", "messages": [{"role": "user", "content": "x"}], "n": n}
        )
    assert refused.value.status == 400
    assert refused.value.param == "n"
    assert refused.value.message == "Anthropic models answer one choice: 'n' must be 1."


@pytest.mark.parametrize(
    "message",
    [
        {"role": "function", "name": "f", "content": "x"},
        {"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]},
        {"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]},
        {"role": "tool", "content": "no id"},
        {"role": "assistant", "tool_calls": [{"id": "c"}]},
    ],
)
def test_what_anthropic_cannot_take_is_a_400(message: Json) -> None:
    with pytest.raises(ApiError) as refused:
        CODEC.request_from_hub({"model": "m", "messages": [message]})
    assert refused.value.status == 400


@pytest.mark.parametrize(
    "payload",
    [
        TOOL_CONVERSATION,
        VISION_REQUEST,
        minimal(
            system="Be brief.",
            temperature=0.3,
            top_p=0.8,
            stop_sequences=["END"],
            stream=True,
            metadata={"user_id": "u"},
            tools=[WEATHER_TOOL],
            tool_choice={"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True},
        ),
    ],
    ids=["tools", "vision", "fields"],
)
def test_a_round_trip_through_the_hub_keeps_the_request(payload: Json) -> None:
    assert CODEC.request_from_hub(CODEC.request_to_hub(payload)) == payload


# --- answers ------------------------------------------------------------------


def test_a_text_answer_to_hub() -> None:
    hub = CODEC.answer_to_hub(TEXT_ANSWER)
    assert hub["id"] == "msg_013Zva2CMHLNnXjNJJKqJ2EF"
    assert hub["object"] == "chat.completion"
    assert isinstance(hub["created"], int)
    assert hub["model"] == "claude-3-7-sonnet-20250219"
    assert hub["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "Hi! My name is Claude."},
            "finish_reason": "stop",
        }
    ]
    assert hub["usage"] == {
        "prompt_tokens": 2095,
        "completion_tokens": 503,
        "total_tokens": 2598,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 0},
    }


def test_a_tool_use_answer_to_hub() -> None:
    hub = CODEC.answer_to_hub(TOOL_ANSWER)
    choice = hub["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"] == {
        "role": "assistant",
        "content": "I'll check the current weather in San Francisco for you.",
        "tool_calls": [
            {
                "id": "toolu_01A09q90qw90lq917835lq9",
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "arguments": '{"location":"San Francisco, CA","unit":"celsius"}',
                },
            }
        ],
    }
    assert "usage" not in hub  # the documented excerpt has none


def test_thinking_becomes_reasoning_content() -> None:
    message = CODEC.answer_to_hub(THINKING_ANSWER)["choices"][0]["message"]
    assert message == {
        "role": "assistant",
        "content": "Based on my analysis...",
        "reasoning_content": "Let me analyze this step by step...",
    }


def test_an_answer_of_only_tool_calls_has_no_content() -> None:
    answer = {**TOOL_ANSWER, "content": TOOL_ANSWER["content"][1:]}
    assert CODEC.answer_to_hub(answer)["choices"][0]["message"]["content"] is None


@pytest.mark.parametrize(
    ("stop", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("pause_turn", "stop"),
        ("max_tokens", "length"),
        ("model_context_window_exceeded", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        (None, "stop"),
        ("something_new", "stop"),
    ],
)
def test_every_stop_reason(stop: str | None, finish: str) -> None:
    hub = CODEC.answer_to_hub({**TEXT_ANSWER, "stop_reason": stop})
    assert hub["choices"][0]["finish_reason"] == finish


@pytest.mark.parametrize(
    ("finish", "stop"),
    [
        ("stop", "end_turn"),
        ("length", "max_tokens"),
        ("tool_calls", "tool_use"),
        ("function_call", "tool_use"),
        ("content_filter", "refusal"),
        (None, "end_turn"),
    ],
)
def test_every_finish_reason(finish: str | None, stop: str) -> None:
    hub = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": finish}
        ],
    }
    assert CODEC.answer_from_hub(hub, None)["stop_reason"] == stop


def test_a_hub_answer_from_hub() -> None:
    hub = {
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4o-2024-08-06",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": "Let me look.",
                    "reasoning_content": "The user wants weather.",
                    "tool_calls": [
                        {
                            "id": "call_1",
                            "type": "function",
                            "function": {
                                "name": "get_weather",
                                "arguments": '{"location":"Paris"}',
                            },
                        },
                        {
                            "id": "call_2",
                            "type": "function",
                            "function": {"name": "f", "arguments": "{"},
                        },
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
    }
    usage = Usage(
        input_tokens=1000,
        cached_input_tokens=600,
        cache_write_tokens=100,
        cache_write_1h_tokens=50,
        output_tokens=20,
    )
    assert CODEC.answer_from_hub(hub, usage) == {
        "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "type": "message",
        "role": "assistant",
        "model": "gpt-4o-2024-08-06",
        "content": [
            {"type": "thinking", "thinking": "The user wants weather.", "signature": ""},
            {"type": "text", "text": "Let me look."},
            {
                "type": "tool_use",
                "id": "call_1",
                "name": "get_weather",
                "input": {"location": "Paris"},
            },
            {"type": "tool_use", "id": "call_2", "name": "f", "input": {}},
        ],
        "stop_reason": "tool_use",
        "stop_sequence": None,
        "usage": {
            "input_tokens": 250,
            "output_tokens": 20,
            "cache_creation_input_tokens": 150,
            "cache_read_input_tokens": 600,
            "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 50},
        },
    }


def test_an_answer_without_usage_reports_zeros() -> None:
    hub = {
        "id": "msg_x",
        "model": "m",
        "choices": [{"message": {"content": "Hi"}, "finish_reason": "stop"}],
    }
    answer = CODEC.answer_from_hub(hub, None)
    assert answer["id"] == "msg_x"
    assert answer["content"] == [{"type": "text", "text": "Hi"}]
    assert answer["usage"]["input_tokens"] == answer["usage"]["output_tokens"] == 0


def test_an_anthropic_answer_survives_the_hub_and_back() -> None:
    answer = {**TOOL_ANSWER, "usage": CACHE_USAGE, "stop_sequence": None, "type": "message"}
    back = CODEC.answer_from_hub(CODEC.answer_to_hub(answer), CODEC.usage(answer))
    assert back == answer


# --- usage --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "expected"),
    [
        ({"input_tokens": 2095, "output_tokens": 503}, Usage(input_tokens=2095, output_tokens=503)),
        (
            CACHE_USAGE,
            Usage(
                input_tokens=2048 + 1800 + 248,
                cached_input_tokens=1800,
                cache_write_tokens=148,
                cache_write_1h_tokens=100,
                output_tokens=503,
            ),
        ),
        (
            # five-minute writes only, as before the breakdown existed
            {"input_tokens": 10, "cache_creation_input_tokens": 248, "output_tokens": 5},
            Usage(input_tokens=258, cache_write_tokens=248, output_tokens=5),
        ),
        (
            # a breakdown without its total: the parts are the total
            {
                "input_tokens": 1,
                "output_tokens": 2,
                "cache_creation": {"ephemeral_5m_input_tokens": 3, "ephemeral_1h_input_tokens": 4},
            },
            Usage(input_tokens=8, cache_write_tokens=3, cache_write_1h_tokens=4, output_tokens=2),
        ),
        (
            {
                "input_tokens": 5,
                "output_tokens": 50,
                "output_tokens_details": {"thinking_tokens": 30},
            },
            Usage(input_tokens=5, output_tokens=50, reasoning_tokens=30),
        ),
        (
            {"input_tokens": 5, "output_tokens": None, "cache_read_input_tokens": None},
            Usage(input_tokens=5),
        ),
    ],
)
def test_usage(reported: Json, expected: Usage) -> None:
    assert CODEC.usage({"usage": reported}) == expected


@pytest.mark.parametrize(
    "reported",
    [
        None,
        "lots",
        [],
        {},
        {"input_tokens": -1, "output_tokens": 1},
        {"input_tokens": 1.5, "output_tokens": 1},
        {"input_tokens": True, "output_tokens": 1},
        {"input_tokens": "10", "output_tokens": 1},
        {"input_tokens": 1, "output_tokens": 1, "cache_read_input_tokens": -5},
        {"input_tokens": 1, "output_tokens": 1, "cache_creation": "big"},
        {
            "input_tokens": 1,
            "output_tokens": 1,
            "cache_creation_input_tokens": 10,
            "cache_creation": {"ephemeral_1h_input_tokens": 11},
        },
        {"input_tokens": 1, "output_tokens": 1, "output_tokens_details": {"thinking_tokens": 2}},
    ],
)
def test_garbage_usage_is_none(reported: Any) -> None:
    answer = {} if reported is None else {"usage": reported}
    assert CODEC.usage(answer) is None


# --- the reader ---------------------------------------------------------------


def read(data: bytes, pieces: list[int] | None = None) -> tuple[list[Json], AnthropicReader]:
    """Feed the stream cut at the given offsets."""
    reader = AnthropicReader(created=1700000000)
    cuts = [0, *(pieces or []), len(data)]
    chunks: list[Json] = []
    for start, end in itertools.pairwise(cuts):
        chunks.extend(reader.feed(data[start:end]))
    return chunks, reader


def chunk(msg_id: str, model: str, delta: Json, finish: str | None = None) -> Json:
    return {
        "id": msg_id,
        "object": "chat.completion.chunk",
        "created": 1700000000,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


BASIC_CHUNKS = [
    chunk("msg_1nZdL29xx5MUA1yADyHTEsnR8uuvGzszyY", "claude-opus-4-20250514", d, f)
    for d, f in [
        ({"role": "assistant", "content": ""}, None),
        ({"content": "Hello"}, None),
        ({"content": "!"}, None),
        ({}, "stop"),
    ]
]


def test_the_documented_stream_as_hub_chunks() -> None:
    chunks, reader = read(BASIC_STREAM)
    assert chunks == BASIC_CHUNKS
    assert reader.done
    assert reader.usage == Usage(input_tokens=25, output_tokens=15)


@pytest.mark.parametrize(
    "stream", [BASIC_STREAM, BASIC_STREAM.replace(b"\n", b"\r\n")], ids=["lf", "crlf"]
)
def test_every_split_of_the_stream_reads_the_same(stream: bytes) -> None:
    whole, _ = read(BASIC_STREAM)
    for cut in range(1, len(stream)):
        chunks, reader = read(stream, [cut])
        assert chunks == whole, f"split at byte {cut}"
        assert reader.usage == Usage(input_tokens=25, output_tokens=15)
        assert reader.done


def test_a_stream_fed_byte_by_byte_reads_the_same() -> None:
    for stream in (TOOL_STREAM, TOOL_STREAM.replace(b"\n", b"\r\n")):
        assert read(stream, list(range(1, len(stream))))[0] == read(TOOL_STREAM)[0]


def test_the_tool_use_stream() -> None:
    chunks, reader = read(TOOL_STREAM)
    text = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks)
    assert text == "Okay, let's check the weather for San Francisco, CA:"
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0] == {
        "index": 0,
        "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6",
        "type": "function",
        "function": {"name": "get_weather", "arguments": ""},
    }
    assert all(call["index"] == 0 for call in calls)
    arguments = "".join(call["function"]["arguments"] for call in calls)
    assert orjson.loads(arguments) == {"location": "San Francisco, CA", "unit": "fahrenheit"}
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert reader.usage == Usage(input_tokens=472, output_tokens=89)


def test_the_thinking_stream() -> None:
    chunks, reader = read(THINKING_STREAM)
    deltas = [c["choices"][0]["delta"] for c in chunks]
    assert deltas == [
        {"role": "assistant", "content": ""},
        {"reasoning_content": "Let me solve this step by step:\n\n1. First break down 27 * 453"},
        {"reasoning_content": "\n2. 453 = 400 + 50 + 3"},
        {"content": "27 * 453 = 12,231"},
        {},
    ]
    assert reader.done
    assert reader.usage is None  # the excerpt reports none


def sse(body: Json) -> bytes:
    """One event as Anthropic writes it, named by its type."""
    return b"event: " + body["type"].encode() + b"\ndata: " + orjson.dumps(body) + b"\n\n"


def tool_start(index: int, call_id: str, name: str) -> Json:
    block = {"type": "tool_use", "id": call_id, "name": name, "input": {}}
    return {"type": "content_block_start", "index": index, "content_block": block}


def test_a_second_tool_call_gets_the_next_index() -> None:
    arguments = {"type": "input_json_delta", "partial_json": "{}"}
    stream = b"".join(
        sse(body)
        for body in [
            {"type": "message_start", "message": {"id": "msg_1", "model": "c"}},
            tool_start(0, "a", "f"),
            tool_start(1, "b", "g"),
            {"type": "content_block_delta", "index": 1, "delta": arguments},
        ]
    )
    calls = [c["choices"][0]["delta"]["tool_calls"][0] for c in read(stream)[0][1:]]
    assert [(call["index"], call.get("id")) for call in calls] == [(0, "a"), (1, "b"), (1, None)]


START = sse(
    {
        "type": "message_start",
        "message": {
            "id": "msg_1",
            "model": "claude",
            "usage": {"input_tokens": 10, "cache_read_input_tokens": 100, "output_tokens": 1},
        },
    },
)


def test_message_delta_usage_is_cumulative_the_latest_wins() -> None:
    first = sse(
        {"type": "message_delta", "delta": {"stop_reason": None}, "usage": {"output_tokens": 40}},
    )
    second = sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 70, "cache_read_input_tokens": 120},
        },
    )
    chunks, reader = read(START + first + second)
    assert reader.usage == Usage(input_tokens=130, cached_input_tokens=120, output_tokens=70)
    assert [c["choices"][0]["finish_reason"] for c in chunks] == [None, "stop"]


def test_message_delta_may_correct_the_input_count() -> None:
    delta = sse(
        {
            "type": "message_delta",
            "delta": {"stop_reason": "max_tokens"},
            "usage": {"input_tokens": 12, "output_tokens": 9, "cache_creation_input_tokens": 30},
        },
    )
    _, reader = read(START + delta)
    assert reader.usage == Usage(
        input_tokens=142, cached_input_tokens=100, cache_write_tokens=30, output_tokens=9
    )


def test_pings_comments_and_unknown_events_are_ignored() -> None:
    noise = (
        b": a comment\n\n"
        + sse({"type": "ping"})
        + sse({"type": "future_event", "x": 1})
        + b"event: content_block_delta\ndata: not json\n\n"
        + sse(
            {"type": "content_block_delta", "index": 0, "delta": {"type": "citations_delta"}},
        )
    )
    assert read(noise)[0] == []
    with_noise = BASIC_STREAM.replace(
        b"event: content_block_stop", noise + b"event: content_block_stop"
    )
    assert read(with_noise)[0] == BASIC_CHUNKS


def test_done_only_at_message_stop() -> None:
    cut = BASIC_STREAM.index(b"event: message_stop")
    assert not read(BASIC_STREAM[:cut])[1].done
    assert read(BASIC_STREAM)[1].done


@pytest.mark.parametrize(
    ("kind", "status", "code"),
    [
        ("overloaded_error", 503, "upstream_overloaded"),
        ("rate_limit_error", 429, "rate_limit_exceeded"),
        ("api_error", 502, "upstream_error"),
        ("invalid_request_error", 400, "upstream_rejected_request"),
    ],
)
def test_an_error_event_after_the_200_fails_the_stream(kind: str, status: int, code: str) -> None:
    cut = BASIC_STREAM.index(b"event: content_block_stop")
    reader = AnthropicReader()
    assert len(reader.feed(BASIC_STREAM[:cut])) == 3
    event = OVERLOADED_EVENT.replace(b"overloaded_error", kind.encode())
    with pytest.raises(StreamFailed) as failed:
        reader.feed(event)
    assert (failed.value.error.status, failed.value.error.code) == (status, code)
    assert not reader.done


def test_an_error_event_without_json_fails_the_stream_whatever_the_split() -> None:
    event = b"event: error\r\ndata: upstream exploded\r\n\r\n"
    for cut in range(1, len(event)):
        with pytest.raises(StreamFailed) as failed:
            read(event, [cut])
        assert failed.value.error.status == 502, f"split at byte {cut}"


def test_the_documented_overloaded_event_keeps_its_message() -> None:
    with pytest.raises(StreamFailed) as failed:
        read(OVERLOADED_EVENT)
    assert failed.value.error.message == "Overloaded"


# --- the writer ---------------------------------------------------------------


def hub_chunk(delta: Json, finish: str | None = None) -> Json:
    return {
        "id": "chatcmpl-123",
        "object": "chat.completion.chunk",
        "created": 1694268190,
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


TOOL_HUB_CHUNKS = [
    hub_chunk({"role": "assistant", "content": ""}),
    hub_chunk({"reasoning_content": "They want weather."}),
    hub_chunk({"content": "Let me check"}),
    hub_chunk({"content": " the weather."}),
    hub_chunk(
        {
            "tool_calls": [
                {
                    "index": 0,
                    "id": "call_a",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": ""},
                }
            ]
        }
    ),
    hub_chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"location":'}}]}),
    hub_chunk({"tool_calls": [{"index": 0, "function": {"arguments": ' "Paris"}'}}]}),
    hub_chunk(
        {
            "tool_calls": [
                {
                    "index": 1,
                    "id": "call_b",
                    "type": "function",
                    "function": {"name": "get_time", "arguments": "{}"},
                }
            ]
        }
    ),
    hub_chunk({}, "tool_calls"),
]
CACHED = Usage(input_tokens=500, cached_input_tokens=300, cache_write_tokens=50, output_tokens=42)


def write(chunks: list[Json], usage: Usage | None) -> bytes:
    writer = AnthropicWriter({"model": "gpt-4o-mini"})
    return b"".join(writer.write(c) for c in chunks) + writer.finish(usage)


def events(data: bytes) -> list[tuple[str, Json]]:
    found = []
    for block in data.decode().split("\n\n")[:-1]:
        kind, body = block.split("\n")
        assert kind.startswith("event: ") and body.startswith("data: ")
        parsed = orjson.loads(body[6:])
        assert parsed["type"] == kind[7:]
        found.append((kind[7:], parsed))
    return found


def test_the_writer_sends_events_in_anthropics_order() -> None:
    sent = events(write(TOOL_HUB_CHUNKS, CACHED))
    assert [(kind, body.get("index")) for kind, body in sent] == [
        ("message_start", None),
        ("content_block_start", 0),
        ("content_block_delta", 0),
        ("content_block_stop", 0),
        ("content_block_start", 1),
        ("content_block_delta", 1),
        ("content_block_delta", 1),
        ("content_block_stop", 1),
        ("content_block_start", 2),
        ("content_block_delta", 2),
        ("content_block_delta", 2),
        ("content_block_stop", 2),
        ("content_block_start", 3),
        ("content_block_delta", 3),
        ("content_block_stop", 3),
        ("message_delta", None),
        ("message_stop", None),
    ]
    message = sent[0][1]["message"]
    assert (message["id"], message["model"], message["content"]) == ("msg_123", "gpt-4o-mini", [])
    blocks = [body["content_block"] for kind, body in sent if kind == "content_block_start"]
    assert [b["type"] for b in blocks] == ["thinking", "text", "tool_use", "tool_use"]
    assert blocks[2] == {"type": "tool_use", "id": "call_a", "name": "get_weather", "input": {}}
    assert sent[-2][1] == {
        "type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": None},
        "usage": {
            "input_tokens": 150,
            "output_tokens": 42,
            "cache_creation_input_tokens": 50,
            "cache_read_input_tokens": 300,
        },
    }


def test_what_the_writer_sends_reads_back_as_the_same_chunks() -> None:
    chunks, reader = read(write(TOOL_HUB_CHUNKS, CACHED))
    deltas = [c["choices"][0]["delta"] for c in chunks]
    sent = [c["choices"][0]["delta"] for c in TOOL_HUB_CHUNKS]
    second_call = {"index": 1, "id": "call_b", "type": "function"}
    # the second call came whole in one hub chunk; Anthropic opens a tool_use
    # block empty and streams its input after, so it reads back as two
    assert deltas == [
        *sent[:7],
        {"tool_calls": [{**second_call, "function": {"name": "get_time", "arguments": ""}}]},
        {"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]},
        {},
    ]
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert reader.usage == CACHED
    assert reader.done


def test_an_empty_stream_still_closes_properly() -> None:
    sent = events(AnthropicWriter({"model": "m"}).finish(None))
    assert [kind for kind, _ in sent] == ["message_start", "message_delta", "message_stop"]
    assert sent[0][1]["message"]["model"] == "m"
    assert sent[1][1]["delta"]["stop_reason"] == "end_turn"


def test_fail_sends_an_error_event() -> None:
    sent = events(
        AnthropicWriter({}).fail(
            ApiError(503, "The upstream is overloaded.", "upstream_overloaded")
        )
    )
    assert sent == [
        (
            "error",
            {
                "type": "error",
                "error": {"type": "overloaded_error", "message": "The upstream is overloaded."},
            },
        )
    ]


def test_the_anthropic_sdk_reads_what_the_writer_sends() -> None:
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    body = write(TOOL_HUB_CHUNKS, CACHED)

    def answer(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    transport = httpx2.MockTransport(answer)
    client = anthropic.Anthropic(
        api_key="k", base_url="http://gateway.test", http_client=httpx2.Client(transport=transport)
    )
    with client.messages.stream(
        model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
    ) as stream:
        message = stream.get_final_message()
    assert [block.type for block in message.content] == ["thinking", "text", "tool_use", "tool_use"]
    assert message.content[1].text == "Let me check the weather."
    assert message.content[2].input == {"location": "Paris"}
    assert message.content[3].name == "get_time"
    assert message.stop_reason == "tool_use"
    usage = message.usage
    assert (usage.input_tokens, usage.output_tokens, usage.cache_read_input_tokens) == (
        150,
        42,
        300,
    )


def test_the_anthropic_sdk_raises_the_writers_error_event() -> None:
    anthropic = pytest.importorskip("anthropic")
    httpx2 = pytest.importorskip("httpx2")
    writer = AnthropicWriter({"model": "m"})
    body = writer.write(hub_chunk({"content": "Hi"})) + writer.fail(
        ApiError(529, "Overloaded", "x")
    )

    def answer(request: Any) -> Any:
        return httpx2.Response(200, headers={"content-type": "text/event-stream"}, content=body)

    client = anthropic.Anthropic(
        api_key="k",
        base_url="http://gateway.test",
        max_retries=0,
        http_client=httpx2.Client(transport=httpx2.MockTransport(answer)),
    )
    with (
        pytest.raises(anthropic.APIStatusError) as raised,
        client.messages.stream(
            model="m", max_tokens=10, messages=[{"role": "user", "content": "x"}]
        ) as stream,
    ):
        stream.get_final_message()
    assert raised.value.body["error"]["type"] == "overloaded_error"


# --- errors -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (402, "billing_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (413, "request_too_large"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
        (409, "invalid_request_error"),
        (507, "api_error"),
    ],
)
def test_error_body_types_by_status(status: int, kind: str) -> None:
    body = orjson.loads(CODEC.error_body(ApiError(status, "Nope.", "some_code")))
    assert body == {"type": "error", "error": {"type": kind, "message": "Nope."}}


def test_error_body_carries_the_request_id() -> None:
    error = ApiError(
        404,
        "The requested resource could not be found.",
        "not_found",
        headers={"x-request-id": "req_011CSHoEeqs5C35K2UUqR7Fy"},
    )
    assert orjson.loads(CODEC.error_body(error)) == NOT_FOUND_ERROR


def anthropic_error(kind: str, message: str) -> bytes:
    return orjson.dumps(
        {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_1"}
    )


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [
        (
            400,
            anthropic_error("invalid_request_error", "max_tokens: too big"),
            (400, "upstream_rejected_request", "max_tokens: too big"),
        ),
        (
            404,
            orjson.dumps(NOT_FOUND_ERROR),
            (404, "upstream_rejected_request", "The requested resource could not be found."),
        ),
        (
            413,
            anthropic_error("request_too_large", "Too big"),
            (413, "upstream_rejected_request", "Too big"),
        ),
        (
            429,
            anthropic_error("rate_limit_error", "Slow down"),
            (429, "rate_limit_exceeded", "Slow down"),
        ),
        (
            401,
            anthropic_error("authentication_error", "invalid x-api-key"),
            (
                502,
                "upstream_error",
                "The upstream refused the gateway's credentials for this model.",
            ),
        ),
        (
            403,
            anthropic_error("permission_error", "no"),
            (
                502,
                "upstream_error",
                "The upstream refused the gateway's credentials for this model.",
            ),
        ),
        (
            529,
            anthropic_error("overloaded_error", "Overloaded"),
            (503, "upstream_overloaded", "Overloaded"),
        ),
        (
            503,
            anthropic_error("overloaded_error", "Overloaded"),
            (503, "upstream_overloaded", "Overloaded"),
        ),
        (
            500,
            anthropic_error("api_error", "Internal"),
            (502, "upstream_error", "The upstream failed: Internal"),
        ),
        (
            502,
            b"<html>bad gateway</html>",
            (502, "upstream_error", "The upstream failed: The upstream answered HTTP 502."),
        ),
    ],
)
def test_failure(status: int, data: bytes, expected: tuple[int, str, str]) -> None:
    error = CODEC.failure(status, data)
    assert (error.status, error.code, error.message) == expected
    if status == 429:
        assert error.type == "rate_limit_error"


# --- hostile bodies -------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)


def maybe(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A field's valid value most of the time, anything JSON holds otherwise."""
    return st.one_of(valid, valid, JSON_VALUES)


BLOCKS = st.one_of(
    st.fixed_dictionaries({"type": st.just("text"), "text": maybe(st.text())}),
    st.fixed_dictionaries(
        {
            "type": st.just("image"),
            "source": maybe(
                st.fixed_dictionaries(
                    {
                        "type": maybe(st.sampled_from(["base64", "url"])),
                        "media_type": maybe(st.just("image/png")),
                        "data": JSON_VALUES,
                        "url": JSON_VALUES,
                    }
                )
            ),
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_use"),
            "id": maybe(st.just("t")),
            "name": maybe(st.just("f")),
            "input": JSON_VALUES,
        }
    ),
    st.fixed_dictionaries(
        {
            "type": st.just("tool_result"),
            "tool_use_id": maybe(st.just("t")),
            "content": JSON_VALUES,
            "is_error": JSON_VALUES,
        }
    ),
    st.fixed_dictionaries({"type": st.sampled_from(["thinking", "redacted_thinking", "document"])}),
    JSON_VALUES,
)
MESSAGES = st.lists(
    st.fixed_dictionaries(
        {
            "role": maybe(st.sampled_from(["user", "assistant"])),
            "content": st.one_of(st.text(), st.lists(BLOCKS, max_size=4), JSON_VALUES),
        }
    ),
    max_size=4,
)
BODIES = st.one_of(
    JSON_VALUES,
    st.fixed_dictionaries(
        {
            "model": maybe(st.just("claude")),
            "max_tokens": maybe(st.integers(1, 10_000)),
            "messages": maybe(MESSAGES),
        },
        optional={
            "system": st.one_of(st.text(), st.lists(BLOCKS, max_size=3), JSON_VALUES),
            "temperature": JSON_VALUES,
            "top_p": JSON_VALUES,
            "top_k": JSON_VALUES,
            "stop_sequences": maybe(st.lists(st.text(), max_size=3)),
            "stream": JSON_VALUES,
            "metadata": maybe(st.fixed_dictionaries({"user_id": JSON_VALUES})),
            "tools": maybe(
                st.lists(
                    st.fixed_dictionaries(
                        {"name": maybe(st.just("f")), "input_schema": JSON_VALUES},
                        optional={"type": JSON_VALUES, "description": JSON_VALUES},
                    ),
                    max_size=3,
                )
            ),
            "tool_choice": maybe(
                st.fixed_dictionaries(
                    {"type": maybe(st.sampled_from(["auto", "any", "tool", "none"]))},
                    optional={"name": JSON_VALUES, "disable_parallel_tool_use": JSON_VALUES},
                )
            ),
            "thinking": maybe(
                st.fixed_dictionaries(
                    {"type": maybe(st.just("enabled")), "budget_tokens": JSON_VALUES}
                )
            ),
        },
    ),
)


@FUZZ  # TOLLWAY_FUZZ_EXAMPLES=5000 for a longer hunt
@given(BODIES)
def test_hostile_bodies_get_a_4xx_or_a_hub_request(body: Any) -> None:
    before = copy.deepcopy(body)
    try:
        hub = CODEC.request_to_hub(body)
    except ApiError as refused:
        assert 400 <= refused.status < 500
    else:
        assert isinstance(hub["messages"], list) and hub["messages"]
        CODEC.request_from_hub(hub)  # what was accepted can be sent on
    assert repr(body) == repr(before)  # unchanged (repr: NaN is never equal to itself)


# --- what only Anthropic can carry (native.py) ------------------------------

PDF_SOURCE = {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0x"}


def _file(**fields: str) -> Json:
    return {"type": "file", "file": fields}


def _text(text: str) -> Json:
    return {"type": "text", "text": text}


def _asking(*blocks: Json, **fields: Any) -> Json:
    content = [*blocks, {"type": "text", "text": "Summarise."}]
    return {"model": "claude", "max_tokens": 8, "messages": [{"role": "user", "content": content}],
            **fields}  # fmt: skip


@pytest.mark.parametrize(
    ("source", "parts"),
    [
        (PDF_SOURCE, [_file(file_data="data:application/pdf;base64,JVBERi0x")]),
        ({"type": "text", "media_type": "text/plain", "data": "plain"}, [_text("plain")]),
        ({"type": "url", "url": "https://x/a.pdf"}, [_file(file_data="https://x/a.pdf")]),
        ({"type": "file", "file_id": "file_1"}, [_file(file_id="file_1")]),
        ({"type": "content", "content": [_text("a")]}, [_text("a")]),
    ],
)
def test_a_document_is_read_as_the_file_or_text_billing_holds(
    source: Json, parts: list[Json]
) -> None:
    hub = CODEC.request_to_hub(_asking({"type": "document", "source": source}))
    assert hub["messages"] == [
        {"role": "user", "content": [*parts, {"type": "text", "text": "Summarise."}]}
    ]


def test_native_only_names_documents_and_anthropic_tools_where_they_are() -> None:
    result = {
        "type": "tool_result",
        "tool_use_id": "t",
        "content": [{"type": "document", "source": PDF_SOURCE}],
    }
    body = _asking(
        {"type": "document", "source": PDF_SOURCE},
        result,
        tools=[{"name": "f", "input_schema": {}}, {"type": "web_search_20250305", "name": "s"}],
    )
    hub = CODEC.request_to_hub(body)
    assert [tool["function"]["name"] for tool in hub["tools"]] == ["f"]  # no server tool in the hub
    assert native_only(body) == [
        "tools[1] (web_search_20250305)",
        "messages[0].content[0] (document)",
        "messages[0].content[1].content[0] (document)",
    ]
    assert native_only(_asking()) == []


def test_server_tool_blocks_in_an_assistant_turn_are_left_out_of_the_hub() -> None:
    turn = [{"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_1", "content": []},
            {"type": "text", "text": "Found it."}]  # fmt: skip
    body = {"model": "claude", "max_tokens": 8, "messages": [
        {"role": "user", "content": "Search."}, {"role": "assistant", "content": turn},
        {"role": "user", "content": "Thanks."}]}  # fmt: skip
    hub = CODEC.request_to_hub(body)
    assert hub["messages"][1] == {"role": "assistant", "content": "Found it."}
    assert native_only(body) == [
        "messages[1].content[0] (server_tool_use)",
        "messages[1].content[1] (web_search_tool_result)",
    ]


@pytest.mark.parametrize(
    ("source", "param"),
    [
        ({"type": "pdf"}, "messages[0].content[0].source.type"),
        ({"type": "base64", "media_type": "application/pdf"}, "messages[0].content[0].source.data"),
        ({"type": "text", "data": 5}, "messages[0].content[0].source.data"),
        ({"type": "content", "content": []}, "messages[0].content[0].source.content"),
        ({"type": "file"}, "messages[0].content[0].source.file_id"),
    ],
)
def test_a_bad_document_is_refused_naming_the_field(source: Json, param: str) -> None:
    with pytest.raises(ApiError) as refused:
        CODEC.request_to_hub(_asking({"type": "document", "source": source}))
    assert refused.value.status == 400 and refused.value.param == param


def test_arguments_nested_past_what_json_writers_take_are_a_400() -> None:
    # orjson reads 1024 levels and writes 255: arguments parsed from the hub's
    # string and put in a body's tool_use block nest past what can be sent.
    nested = '{"a":' * 254 + "1" + "}" * 254
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": nested}}
    hub = {"model": "claude", "messages": [
        {"role": "assistant", "content": None, "tool_calls": [call]},
        {"role": "user", "content": "x"}]}  # fmt: skip
    with pytest.raises(ApiError) as refused:
        CODEC.request_from_hub(hub)
    assert refused.value.status == 400


def test_a_streamed_tool_input_nested_past_the_writer_opens_with_no_arguments() -> None:
    nested = b'{"a":' * 300 + b"1" + b"}" * 300
    start = b'{"type":"content_block_start","index":0,"content_block":{"type":"tool_use",'
    event = b"event: content_block_start\ndata: " + start + b'"id":"t","name":"f","input":'
    [chunk] = AnthropicReader().feed(event + nested + b"}}\n\n")
    [call] = chunk["choices"][0]["delta"]["tool_calls"]
    assert call["function"] == {"name": "f", "arguments": ""}
