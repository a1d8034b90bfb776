"""The Gemini codec (generateContent) against Google's documented examples and
the google-genai SDK: requests, answers, usage and streams both ways, errors,
the image helpers, and hostile request bodies."""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollway.errors import ApiError
from tollway.protocols.base import Codec, StreamFailed
from tollway.protocols.gemini import (
    GeminiCodec,
    GeminiReader,
    image_answer_to_openai,
    image_request_from_openai,
)
from tollway.types import Usage

Json = dict[str, Any]
CODEC: Codec = GeminiCodec()


def hub_of(body: Json) -> Json:
    return CODEC.request_to_hub(copy.deepcopy(body))


def refused(body: Any) -> ApiError:
    with pytest.raises(ApiError) as caught:
        CODEC.request_to_hub(body)
    assert caught.value.status == 400
    return caught.value


@pytest.fixture(scope="module")
def genai_types() -> Any:
    return pytest.importorskip("google.genai.types")


def sdk_client(handler: Callable[[httpx.Request], httpx.Response]) -> Any:
    """google-genai's own client, talking to ``handler`` instead of Google."""
    genai = pytest.importorskip("google.genai")
    http = httpx.Client(transport=httpx.MockTransport(handler))
    options = genai.types.HttpOptions(base_url="http://gemini.test", httpx_client=http)
    return genai.Client(api_key="test-key", http_options=options)


def test_the_codec_is_named_gemini() -> None:
    assert CODEC.name == "gemini"


# --- requests: Gemini body -> hub -------------------------------------------

REQUESTS_TO_HUB = [
    pytest.param(
        # https://github.com/google-gemini/cookbook/blob/main/quickstarts/rest/System_instructions_REST.ipynb
        # (snake_case names and single objects where lists go, as Google's parser takes them)
        {
            "system_instruction": {"parts": {"text": "You are Neko the cat respond like one"}},
            "contents": {"parts": {"text": "Hello there"}},
        },
        {
            "messages": [
                {"role": "system", "content": "You are Neko the cat respond like one"},
                {"role": "user", "content": "Hello there"},
            ]
        },
        id="system-instruction",
    ),
    pytest.param(
        # the same notebook, "Use system instructions with chat"
        {
            "system_instruction": {"parts": {"text": "You are Neko the cat respond like one"}},
            "contents": [
                {"role": "user", "parts": [{"text": "Hello cat."}]},
                {"role": "model", "parts": [{"text": "Meow? 😻 \n"}]},
                {"role": "user", "parts": [{"text": "What is your name? What do like to drink?"}]},
            ],
        },
        {
            "messages": [
                {"role": "system", "content": "You are Neko the cat respond like one"},
                {"role": "user", "content": "Hello cat."},
                {"role": "assistant", "content": "Meow? 😻 \n"},
                {"role": "user", "content": "What is your name? What do like to drink?"},
            ]
        },
        id="chat-roles",
    ),
    pytest.param(
        # https://ai.google.dev/gemini-api/docs/text-generation (configuration parameters)
        {
            "contents": [{"parts": [{"text": "Explain how AI works"}]}],
            "generationConfig": {
                "stopSequences": ["Title"],
                "temperature": 1.0,
                "maxOutputTokens": 800,
                "topP": 0.8,
                "topK": 10,
            },
        },
        {
            "messages": [{"role": "user", "content": "Explain how AI works"}],
            "stop": ["Title"],
            "temperature": 1.0,
            "max_tokens": 800,
            "top_p": 0.8,
        },
        id="generation-config",
    ),
    pytest.param(
        # https://ai.google.dev/gemini-api/docs/image-understanding (inline image data)
        {
            "contents": [
                {
                    "parts": [
                        {"inline_data": {"mime_type": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
                        {"text": "Caption this image."},
                    ]
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQSkZJRg=="},
                        },
                        {"type": "text", "text": "Caption this image."},
                    ],
                }
            ]
        },
        id="inline-image",
    ),
    pytest.param(
        {
            "contents": [
                {
                    "parts": [
                        {
                            "fileData": {
                                "mimeType": "image/png",
                                "fileUri": "https://x.test/cat.png",
                            }
                        },
                        {"text": "What is this?"},
                    ]
                }
            ]
        },
        {
            "messages": [
                {
                    "role": "user",
                    "content": [
                        {"type": "image_url", "image_url": {"url": "https://x.test/cat.png"}},
                        {"type": "text", "text": "What is this?"},
                    ],
                }
            ]
        },
        id="file-data-image",
    ),
    pytest.param(
        # https://github.com/google-gemini/cookbook/blob/main/quickstarts/rest/Function_calling_REST.ipynb
        # (multi-turn: the function's answer in a "function" turn; Gemini's upper-case schema types)
        {
            "contents": [
                {
                    "role": "user",
                    "parts": [{"text": "Which theaters in Mountain View show Barbie movie?"}],
                },
                {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {
                                "name": "find_theaters",
                                "args": {"location": "Mountain View, CA", "movie": "Barbie"},
                            }
                        }
                    ],
                },
                {
                    "role": "function",
                    "parts": [
                        {
                            "functionResponse": {
                                "name": "find_theaters",
                                "response": {
                                    "name": "find_theaters",
                                    "content": {
                                        "movie": "Barbie",
                                        "theaters": [
                                            {
                                                "name": "AMC Mountain View 16",
                                                "address": "2000 W El Camino Real, Mountain View, CA 94040",
                                            },
                                        ],
                                    },
                                },
                            }
                        }
                    ],
                },
            ],
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "name": "find_theaters",
                            "description": "find theaters based on location and optionally movie title which are is currently playing in theaters",
                            "parameters": {
                                "type": "OBJECT",
                                "properties": {
                                    "location": {
                                        "type": "STRING",
                                        "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616",
                                    },
                                    "movie": {"type": "STRING", "description": "Any movie title"},
                                },
                                "required": ["location"],
                            },
                        }
                    ]
                }
            ],
        },
        {
            "messages": [
                {"role": "user", "content": "Which theaters in Mountain View show Barbie movie?"},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {
                                "name": "find_theaters",
                                "arguments": '{"location":"Mountain View, CA","movie":"Barbie"}',
                            },
                        }
                    ],
                },
                {
                    "role": "tool",
                    "tool_call_id": "call_0",
                    "content": '{"name":"find_theaters","content":{"movie":"Barbie","theaters":'
                    '[{"name":"AMC Mountain View 16","address":'
                    '"2000 W El Camino Real, Mountain View, CA 94040"}]}}',
                },
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "find_theaters",
                        "description": "find theaters based on location and optionally movie title which are is currently playing in theaters",
                        "parameters": {
                            "type": "object",
                            "properties": {
                                "location": {
                                    "type": "string",
                                    "description": "The city and state, e.g. San Francisco, CA or a zip code e.g. 95616",
                                },
                                "movie": {"type": "string", "description": "Any movie title"},
                            },
                            "required": ["location"],
                        },
                    },
                }
            ],
        },
        id="function-call-and-response",
    ),
    pytest.param(
        # the body google-genai 3.6.1 sends for a chat with tools (captured from the SDK): it
        # mixes camelCase with snake_case (mime_type, parameters_json_schema)
        {
            "contents": [
                {
                    "parts": [
                        {"text": "hi"},
                        {"inlineData": {"data": "iVBORw==", "mime_type": "image/png"}},
                    ],
                    "role": "user",
                },
                {
                    "parts": [{"functionCall": {"args": {"city": "Paris"}, "name": "get_weather"}}],
                    "role": "model",
                },
                {
                    "parts": [{"functionResponse": {"name": "get_weather", "response": {"t": 20}}}],
                    "role": "user",
                },
            ],
            "systemInstruction": {"parts": [{"text": "Be brief"}], "role": "user"},
            "tools": [
                {
                    "functionDeclarations": [
                        {
                            "description": "Weather",
                            "name": "get_weather",
                            "parameters_json_schema": {
                                "type": "object",
                                "properties": {"city": {"type": "string"}},
                            },
                        }
                    ]
                }
            ],
            "toolConfig": {
                "functionCallingConfig": {"allowedFunctionNames": ["get_weather"], "mode": "ANY"}
            },
            "generationConfig": {
                "temperature": 0.5,
                "topP": 0.9,
                "candidateCount": 2,
                "maxOutputTokens": 100,
                "stopSequences": ["END"],
                "responseMimeType": "application/json",
            },
        },
        {
            "messages": [
                {"role": "system", "content": "Be brief"},
                {
                    "role": "user",
                    "content": [
                        {"type": "text", "text": "hi"},
                        {
                            "type": "image_url",
                            "image_url": {"url": "data:image/png;base64,iVBORw=="},
                        },
                    ],
                },
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {
                            "id": "call_0",
                            "type": "function",
                            "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                        }
                    ],
                },
                {"role": "tool", "tool_call_id": "call_0", "content": '{"t":20}'},
            ],
            "tools": [
                {
                    "type": "function",
                    "function": {
                        "name": "get_weather",
                        "description": "Weather",
                        "parameters": {
                            "type": "object",
                            "properties": {"city": {"type": "string"}},
                        },
                    },
                }
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "temperature": 0.5,
            "top_p": 0.9,
            "n": 2,
            "max_tokens": 100,
            "stop": ["END"],
            "response_format": {"type": "json_object"},
        },
        id="google-genai-sdk-body",
    ),
]


@pytest.mark.parametrize(("body", "hub"), REQUESTS_TO_HUB)
def test_request_to_hub(body: Json, hub: Json) -> None:
    assert hub_of(body) == hub


def test_request_to_hub_puts_neither_model_nor_stream() -> None:
    hub = hub_of({"contents": [{"parts": [{"text": "hi"}]}]})
    assert "model" not in hub and "stream" not in hub


def test_call_ids_thoughts_and_responses_matched_by_name_in_order() -> None:
    weather = {"type": "OBJECT", "properties": {"city": {"type": "STRING"}}}
    body = {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Rome?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "The user wants two cities.", "thought": True},
                    {"text": "Checking."},
                    {"functionCall": {"id": "fc-1", "name": "weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "weather", "args": {"city": "Rome"}}},
                ],
            },
            {
                "role": "user",
                "parts": [
                    {"text": "here you are"},
                    {"functionResponse": {"name": "weather", "response": {"t": 21}}},
                    {
                        "functionResponse": {
                            "id": "call_1",
                            "name": "weather",
                            "response": {"t": 25},
                        }
                    },
                ],
            },
        ],
        "tools": [{"functionDeclarations": [{"name": "weather", "parameters": weather}]}],
    }
    messages = hub_of(body)["messages"]
    assert messages[1] == {
        "role": "assistant",
        "content": "Checking.",
        "tool_calls": [
            {"id": "fc-1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Rome"}'}},
        ],
    }  # fmt: skip
    # the tool results come first: they answer the calls just made
    assert messages[2:] == [
        {"role": "tool", "tool_call_id": "fc-1", "content": '{"t":21}'},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"t":25}'},
        {"role": "user", "content": "here you are"},
    ]


TOOLS = [{"functionDeclarations": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}]


@pytest.mark.parametrize(
    ("calling", "choice", "names"),
    [
        ({"mode": "AUTO"}, "auto", ["a", "b", "c"]),
        ({"mode": "NONE"}, "none", ["a", "b", "c"]),
        ({"mode": "ANY"}, "required", ["a", "b", "c"]),
        ({}, "auto", ["a", "b", "c"]),
        (
            {"mode": "ANY", "allowedFunctionNames": ["b"]},
            {"type": "function", "function": {"name": "b"}},
            ["a", "b", "c"],
        ),
        # several allowed names: only those are offered, one of them must be called
        ({"mode": "ANY", "allowedFunctionNames": ["a", "c"]}, "required", ["a", "c"]),
    ],
)
def test_tool_config_to_tool_choice(calling: Json, choice: Any, names: list[str]) -> None:
    hub = hub_of(
        {
            "contents": [{"parts": [{"text": "hi"}]}],
            "tools": TOOLS,
            "toolConfig": {"functionCallingConfig": calling},
        }
    )
    assert hub["tool_choice"] == choice
    assert [tool["function"]["name"] for tool in hub["tools"]] == names


@pytest.mark.parametrize(
    ("config", "response_format"),
    [
        ({"responseMimeType": "application/json"}, {"type": "json_object"}),
        ({"responseMimeType": "text/plain"}, None),
        (
            {
                "responseMimeType": "application/json",
                "responseSchema": {
                    "type": "ARRAY",
                    "items": {
                        "type": "OBJECT",
                        "properties": {"name": {"type": "STRING", "nullable": True}},
                        "propertyOrdering": ["name"],
                    },
                },
            },
            {
                "type": "json_schema",
                "json_schema": {
                    "name": "response",
                    "schema": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"name": {"type": ["string", "null"]}},
                        },
                    },
                },
            },
        ),
        (
            {"responseMimeType": "application/json", "responseJsonSchema": {"type": "integer"}},
            {
                "type": "json_schema",
                "json_schema": {"name": "response", "schema": {"type": "integer"}},
            },
        ),
    ],
)
def test_response_mime_type_and_schema(config: Json, response_format: Json | None) -> None:
    hub = hub_of({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": config})
    assert hub.get("response_format") == response_format


def test_other_generation_numbers() -> None:
    config = {"seed": 7, "presencePenalty": 0.5, "frequency_penalty": -0.5, "candidateCount": 3}
    hub = hub_of({"contents": [{"parts": [{"text": "hi"}]}], "generationConfig": config})
    assert (hub["seed"], hub["presence_penalty"], hub["frequency_penalty"], hub["n"]) == (
        7,
        0.5,
        -0.5,
        3,
    )


HI = {"parts": [{"text": "hi"}]}

REFUSED_REQUESTS = [
    pytest.param([], "body", id="not-an-object"),
    pytest.param({}, "contents", id="no-contents"),
    pytest.param({"contents": []}, "contents", id="empty-contents"),
    pytest.param(
        {"contents": [{"role": "system", "parts": [{"text": "x"}]}]}, "contents[0].role", id="role"
    ),
    pytest.param({"contents": [{"role": "user"}]}, "contents[0].parts", id="no-parts"),
    pytest.param(
        {"contents": [{"parts": [{"text": 5}]}]}, "contents[0].parts[0].text", id="text-type"
    ),
    pytest.param({"contents": [{"parts": [{}]}]}, "contents[0].parts[0]", id="empty-part"),
    pytest.param(
        {
            "contents": [
                {"parts": [{"text": "a", "inlineData": {"mimeType": "image/png", "data": ""}}]}
            ]
        },
        "contents[0].parts[0]",
        id="two-kinds-of-data",
    ),
    pytest.param(
        {"contents": [{"parts": [{"executableCode": {"code": "1"}}]}]},
        "contents[0].parts[0]",
        id="executable-code",
    ),
    pytest.param(
        {
            "contents": [
                {"parts": [{"inlineData": {"mimeType": "application/pdf", "data": "JVBERi0="}}]}
            ]
        },
        "contents[0].parts[0].inlineData.mimeType",
        id="pdf-inline-data",
    ),
    pytest.param(
        {
            "contents": [
                {"parts": [{"inlineData": {"mimeType": "image/png", "data": "not base64!"}}]}
            ]
        },
        "contents[0].parts[0].inlineData.data",
        id="inline-data-not-base64",
    ),
    pytest.param(
        {
            "contents": [
                {"parts": [{"fileData": {"mimeType": "image/png", "fileUri": "gs://b/o.png"}}]}
            ]
        },
        "contents[0].parts[0].fileData.fileUri",
        id="file-uri-scheme",
    ),
    pytest.param(
        {
            "contents": [
                {"parts": [{"fileData": {"mimeType": "video/mp4", "fileUri": "https://x/v"}}]}
            ]
        },
        "contents[0].parts[0].fileData.mimeType",
        id="video-file-data",
    ),
    pytest.param(
        {"contents": [{"parts": [{"functionResponse": {"name": "f", "response": {}}}]}]},
        "contents[0].parts[0].functionResponse.name",
        id="response-without-call",
    ),
    pytest.param(
        {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "f", "args": [1]}}]}]},
        "contents[0].parts[0].functionCall.args",
        id="args-not-object",
    ),
    pytest.param(
        {"contents": [{"role": "user", "parts": [{"functionCall": {"name": "f"}}]}]},
        "contents[0].parts[0]",
        id="user-function-call",
    ),
    pytest.param(
        {"contents": [{"role": "model", "parts": [{"functionCall": {"name": "9 lives"}}]}]},
        "contents[0].parts[0].functionCall.name",
        id="function-name",
    ),
    pytest.param(
        {"contents": [{"role": "model", "parts": [{"text": "x", "thought": "yes"}]}]},
        "contents[0].parts[0].thought",
        id="thought-type",
    ),
    pytest.param(
        {"contents": [HI], "systemInstruction": {"parts": [{"inlineData": {}}]}},
        "systemInstruction.parts[0]",
        id="system-image",
    ),
    pytest.param(
        {"contents": [HI], "system_instruction": {"parts": []}, "systemInstruction": {"parts": []}},
        "systemInstruction",
        id="camel-and-snake-twice",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"temperature": 3}},
        "generationConfig.temperature",
        id="temperature-range",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"temperature": True}},
        "generationConfig.temperature",
        id="temperature-bool",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"topP": float("nan")}},
        "generationConfig.topP",
        id="top-p-nan",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"maxOutputTokens": 0}},
        "generationConfig.maxOutputTokens",
        id="max-output-tokens",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"maxOutputTokens": 10.5}},
        "generationConfig.maxOutputTokens",
        id="max-output-tokens-float",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"candidateCount": 9}},
        "generationConfig.candidateCount",
        id="candidate-count",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"stopSequences": ["a", "b", "c", "d", "e", "f"]}},
        "generationConfig.stopSequences",
        id="six-stop-sequences",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"responseMimeType": "text/x.enum"}},
        "generationConfig.responseMimeType",
        id="enum-mime-type",
    ),
    pytest.param(
        {"contents": [HI], "generationConfig": {"responseSchema": {"type": "OBJECT"}}},
        "generationConfig.responseMimeType",
        id="schema-without-json",
    ),
    pytest.param(
        {"contents": [HI], "tools": [{"googleSearch": {}}]},
        "tools[0]",
        id="google-search-tool",
    ),
    pytest.param(
        {"contents": [HI], "tools": [{"functionDeclarations": [{"name": "a"}, {"name": "a"}]}]},
        "tools",
        id="duplicate-function",
    ),
    pytest.param(
        {
            "contents": [HI],
            "tools": [{"functionDeclarations": [{"name": "a", "parameters": {"type": "OBJ"}}]}],
        },
        "tools[0].functionDeclarations[0].parameters.type",
        id="schema-type",
    ),
    pytest.param(
        {
            "contents": [HI],
            "tools": TOOLS,
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["z"]}},
        },
        "toolConfig.functionCallingConfig.allowedFunctionNames",
        id="allowed-name-undeclared",
    ),
    pytest.param(
        {
            "contents": [HI],
            "tools": TOOLS,
            "toolConfig": {"functionCallingConfig": {"mode": "ALL"}},
        },
        "toolConfig.functionCallingConfig.mode",
        id="calling-mode",
    ),
]


@pytest.mark.parametrize(("body", "param"), REFUSED_REQUESTS)
def test_invalid_requests_are_400_naming_the_field(body: Any, param: str) -> None:
    error = refused(body)
    assert error.param == param, error.message


def test_deeply_nested_arguments_and_schemas_are_400() -> None:
    deep: Json = {}
    for _ in range(2000):
        deep = {"a": deep}
    call = {"role": "model", "parts": [{"functionCall": {"name": "f", "args": deep}}]}
    assert refused({"contents": [call]}).param == "contents[0].parts[0].functionCall"
    schema: Json = {"type": "OBJECT"}
    for _ in range(200):
        schema = {"type": "OBJECT", "properties": {"x": schema}}
    tools = [{"functionDeclarations": [{"name": "f", "parameters": schema}]}]
    refused({"contents": [HI], "tools": tools})


# --- requests: hub -> Gemini body -------------------------------------------

HUB_REQUEST: Json = {
    "model": "gemini-3-pro-preview",
    "stream": True,
    "messages": [
        {"role": "system", "content": "Be brief."},
        {"role": "developer", "content": [{"type": "text", "text": "Answer in French."}]},
        {"role": "user", "content": "Weather?"},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw=="}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a/cat.PNG?w=1"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/photo"}},
            ],
        },
        {
            "role": "assistant",
            "content": "Let me check.",
            "reasoning_content": "not replayed",
            "tool_calls": [
                {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                {"id": "c2", "type": "function", "function": {"name": "time", "arguments": ""}},
            ],
        },
        {"role": "tool", "tool_call_id": "c2", "content": "12:00"},
        {"role": "tool", "tool_call_id": "c1", "content": '{"t": 21}'},
        {"role": "user", "content": "Thanks"},
    ],
    "tools": [
        {"type": "function", "function": {"name": "weather", "description": "Weather", "parameters": {"type": "object"}}},
        {"type": "function", "function": {"name": "time"}},
    ],
    "tool_choice": "required",
    "max_completion_tokens": 300,
    "max_tokens": 999,
    "temperature": 0.2,
    "top_p": 0.5,
    "n": 2,
    "stop": "END",
    "response_format": {"type": "json_schema", "json_schema": {"name": "x", "schema": {"type": "object"}}},
}  # fmt: skip

GEMINI_BODY: Json = {
    "contents": [
        {
            "role": "user",
            "parts": [
                {"text": "Weather?"},
                {"inlineData": {"mimeType": "image/png", "data": "iVBORw=="}},
                {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/a/cat.PNG?w=1"}},
                {"fileData": {"mimeType": "image/jpeg", "fileUri": "https://x.test/photo"}},
            ],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Let me check."},
                {
                    "functionCall": {"name": "weather", "args": {"city": "Paris"}},
                    "thoughtSignature": "skip_thought_signature_validator",
                },
                {"functionCall": {"name": "time", "args": {}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "time", "response": {"content": "12:00"}}},
                {"functionResponse": {"name": "weather", "response": {"t": 21}}},
                {"text": "Thanks"},
            ],
        },
    ],
    "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Answer in French."}]},
    "tools": [
        {
            "functionDeclarations": [
                {"name": "weather", "description": "Weather", "parametersJsonSchema": {"type": "object"}},
                {"name": "time"},
            ]
        }
    ],
    "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
    "generationConfig": {
        "maxOutputTokens": 300,
        "temperature": 0.2,
        "topP": 0.5,
        "candidateCount": 2,
        "stopSequences": ["END"],
        "responseMimeType": "application/json",
        "responseJsonSchema": {"type": "object"},
    },
}  # fmt: skip


def test_request_from_hub() -> None:
    body = CODEC.request_from_hub(copy.deepcopy(HUB_REQUEST))
    assert body == GEMINI_BODY
    assert "model" not in body and "stream" not in body


def test_request_from_hub_validates_as_google_genai_types(genai_types: Any) -> None:
    body = CODEC.request_from_hub(copy.deepcopy(HUB_REQUEST))
    for content in body["contents"]:
        genai_types.Content.model_validate_json(orjson.dumps(content))
    genai_types.Content.model_validate_json(orjson.dumps(body["systemInstruction"]))
    genai_types.Tool.model_validate_json(orjson.dumps(body["tools"][0]))
    genai_types.ToolConfig.model_validate_json(orjson.dumps(body["toolConfig"]))
    genai_types.GenerationConfig.model_validate_json(orjson.dumps(body["generationConfig"]))


def test_older_models_get_no_thought_signature() -> None:
    hub = {**copy.deepcopy(HUB_REQUEST), "model": "gemini-2.5-flash"}
    parts = CODEC.request_from_hub(hub)["contents"][1]["parts"]
    assert not any("thoughtSignature" in part for part in parts)


def test_a_system_only_request_becomes_the_users_turn() -> None:
    body = CODEC.request_from_hub({"model": "m", "messages": [{"role": "system", "content": "Hi"}]})
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]}


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "tool", "tool_call_id": "nope", "content": "x"}], "messages[0].tool_call_id"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": "{"}}]}],
            "messages[0].tool_calls[0].function.arguments",
        ),
        ([{"role": "user", "content": [{"type": "input_file", "x": 1}]}], "messages[0].content[0]"),
        ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}],
         "messages[0].content[0]"),
        ([{"role": "wizard", "content": "x"}], "messages[0].role"),
    ],
)  # fmt: skip
def test_request_from_hub_refuses_what_gemini_cannot_be_sent(
    messages: list[Json], param: str
) -> None:
    with pytest.raises(ApiError) as caught:
        CODEC.request_from_hub({"model": "m", "messages": messages})
    assert (caught.value.status, caught.value.param) == (400, param)


def test_a_gemini_body_survives_the_hub_both_ways() -> None:
    body = {
        "contents": [
            {
                "role": "user",
                "parts": [
                    {"text": "Look:"},
                    {"inlineData": {"mimeType": "image/webp", "data": "UklGRg=="}},
                    {"fileData": {"mimeType": "image/png", "fileUri": "https://x.test/cat.png"}},
                ],
            },
            {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"n": [1, 2]}}}]},
            {
                "role": "user",
                "parts": [{"functionResponse": {"name": "f", "response": {"ok": True}}}],
            },
            {"role": "model", "parts": [{"text": "Done."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be kind."}]},
        "tools": [
            {"functionDeclarations": [{"name": "f", "parametersJsonSchema": {"type": "object"}}]}
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "AUTO"}},
        "generationConfig": {
            "maxOutputTokens": 50,
            "temperature": 0.7,
            "topP": 0.9,
            "candidateCount": 1,
            "seed": 3,
            "stopSequences": ["x"],
            "responseMimeType": "application/json",
        },
    }
    hub = {**hub_of(body), "model": "gemini-2.5-pro"}
    assert CODEC.request_from_hub(hub) == body


# --- answers ----------------------------------------------------------------

# https://github.com/google-gemini/cookbook/blob/main/quickstarts/rest/Function_calling_REST.ipynb
FUNCTION_CALL_ANSWER: Json = {
    "candidates": [
        {
            "content": {
                "parts": [
                    {
                        "functionCall": {
                            "name": "find_theaters",
                            "args": {"movie": "Barbie", "location": "Mountain View, CA"},
                        }
                    }
                ],
                "role": "model",
            },
            "finishReason": "STOP",
            "index": 0,
            "safetyRatings": [
                {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
            ],
        }
    ],
    "promptFeedback": {
        "safetyRatings": [
            {"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT", "probability": "NEGLIGIBLE"},
            {"category": "HARM_CATEGORY_HATE_SPEECH", "probability": "NEGLIGIBLE"},
            {"category": "HARM_CATEGORY_HARASSMENT", "probability": "NEGLIGIBLE"},
            {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "NEGLIGIBLE"},
        ]
    },
}

# https://firebase.google.com/docs/ai-logic/server-prompt-templates/get-started (a test
# response of a thinking model; its text shortened here)
THINKING_ANSWER: Json = {
    "candidates": [
        {
            "content": {"parts": [{"text": "```\n---\n **INVOICE**\n---\n```"}], "role": "model"},
            "finishReason": "STOP",
            "index": 0,
        }
    ],
    "usageMetadata": {
        "promptTokenCount": 34,
        "candidatesTokenCount": 418,
        "totalTokenCount": 890,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 34}],
        "thoughtsTokenCount": 438,
    },
    "modelVersion": "gemini-3-flash-preview",
    "responseId": "3w4Vad6yF-y1vdIP_q_zgAw",
    "turnToken": "v1:ChczdzRWYWQ2eUYteTF2ZElQX3FfemdBdxIXM3c0VmFkNnlGLXkxdmRJUF9xX3pnQXc",
}


def test_function_call_answer_to_hub() -> None:
    hub = CODEC.answer_to_hub(FUNCTION_CALL_ANSWER)
    assert hub["object"] == "chat.completion" and "usage" not in hub
    [choice] = hub["choices"]
    assert choice["finish_reason"] == "tool_calls"
    message = choice["message"]
    assert message["content"] is None
    [call] = message["tool_calls"]
    assert call["id"].startswith("call_") and call["type"] == "function"
    assert call["function"]["name"] == "find_theaters"
    assert orjson.loads(call["function"]["arguments"]) == {
        "movie": "Barbie",
        "location": "Mountain View, CA",
    }


def test_thinking_answer_to_hub() -> None:
    hub = CODEC.answer_to_hub(THINKING_ANSWER)
    assert (hub["id"], hub["model"]) == ("3w4Vad6yF-y1vdIP_q_zgAw", "gemini-3-flash-preview")
    assert hub["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "```\n---\n **INVOICE**\n---\n```"},
            "finish_reason": "stop",
        }
    ]
    assert hub["usage"] == {
        "prompt_tokens": 34,
        "completion_tokens": 856,  # thoughts are output
        "total_tokens": 890,
        "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 438, "audio_tokens": 0},
    }


def test_thought_parts_are_reasoning_and_candidates_are_choices() -> None:
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "First, ", "thought": True},
                        {"text": "think.", "thought": True},
                        {"text": "Four", "thoughtSignature": "c2ln"},
                        {"text": "."},
                    ],
                },
                "finishReason": "STOP",
                "index": 1,
            },
            {"content": {"role": "model", "parts": [{"text": "4"}]}, "finishReason": "MAX_TOKENS"},
        ]
    }
    choices = CODEC.answer_to_hub(answer)["choices"]
    assert choices == [
        {
            "index": 1,
            "message": {
                "role": "assistant",
                "content": "Four.",
                "reasoning_content": "First, think.",
            },
            "finish_reason": "stop",
        },
        {"index": 1, "message": {"role": "assistant", "content": "4"}, "finish_reason": "length"},
    ]


# Every FinishReason of google-genai 3.6.1, and what the hub calls it.
FINISH_REASONS = {
    "FINISH_REASON_UNSPECIFIED": "stop",
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "LANGUAGE": "stop",
    "OTHER": "stop",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "MALFORMED_FUNCTION_CALL": "stop",
    "IMAGE_SAFETY": "content_filter",
    "IMAGE_PROHIBITED_CONTENT": "content_filter",
    "IMAGE_OTHER": "stop",
    "NO_IMAGE": "stop",
    "IMAGE_RECITATION": "content_filter",
    "UNEXPECTED_TOOL_CALL": "stop",
    "TOO_MANY_TOOL_CALLS": "stop",
    "MISSING_THOUGHT_SIGNATURE": "stop",
    "MALFORMED_RESPONSE": "stop",
    "ESCALATION": "stop",
    "PUP_LIMITED_DISABLED": "stop",
    "CONTINUATION": "stop",
    "MODEL_ARMOR": "stop",
}


@pytest.mark.parametrize(("reason", "expected"), FINISH_REASONS.items())
def test_every_finish_reason(reason: str, expected: str) -> None:
    answer = {"candidates": [{"content": {"parts": [{"text": "x"}]}, "finishReason": reason}]}
    assert CODEC.answer_to_hub(answer)["choices"][0]["finish_reason"] == expected


def test_the_finish_reason_table_covers_the_sdk(genai_types: Any) -> None:
    assert {reason.value for reason in genai_types.FinishReason} <= set(FINISH_REASONS)


def test_a_blocked_prompt_is_one_filtered_choice() -> None:
    answer = {
        "promptFeedback": {
            "blockReason": "SAFETY",
            "safetyRatings": [
                {"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH"}
            ],
        },
        "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        "modelVersion": "gemini-2.5-flash",
    }
    hub = CODEC.answer_to_hub(answer)
    assert hub["choices"] == [
        {
            "index": 0,
            "message": {"role": "assistant", "content": None},
            "finish_reason": "content_filter",
        }
    ]
    assert hub["usage"]["prompt_tokens"] == 8 and hub["usage"]["completion_tokens"] == 0


HUB_ANSWER: Json = {
    "id": "chatcmpl-42",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o",
    "choices": [
        {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": "Calling.",
                "reasoning_content": "Need the weather.",
                "tool_calls": [
                    {"id": "call_9", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}},
                    {"id": "call_10", "type": "function", "function": {"name": "now", "arguments": "not json"}},
                ],
            },
            "finish_reason": "tool_calls",
        },
        {"index": 1, "message": {"role": "assistant", "content": None}, "finish_reason": "content_filter"},
    ],
}  # fmt: skip


def test_answer_from_hub() -> None:
    usage = Usage(input_tokens=100, cached_input_tokens=40, output_tokens=30, reasoning_tokens=12)
    assert CODEC.answer_from_hub(HUB_ANSWER, usage) == {
        "candidates": [
            {
                "index": 0,
                "content": {
                    "role": "model",
                    "parts": [
                        {"text": "Need the weather.", "thought": True},
                        {"text": "Calling."},
                        {
                            "functionCall": {
                                "name": "weather",
                                "args": {"city": "Paris"},
                                "id": "call_9",
                            }
                        },
                        {"functionCall": {"name": "now", "args": {}, "id": "call_10"}},
                    ],
                },
                "finishReason": "STOP",
            },
            {"index": 1, "finishReason": "SAFETY"},
        ],
        "usageMetadata": {
            "promptTokenCount": 100,
            "candidatesTokenCount": 18,
            "cachedContentTokenCount": 40,
            "thoughtsTokenCount": 12,
            "totalTokenCount": 130,
        },
        "modelVersion": "gpt-4o",
        "responseId": "chatcmpl-42",
    }


@pytest.mark.parametrize(
    ("finish", "reason"),
    [("stop", "STOP"), ("tool_calls", "STOP"), ("length", "MAX_TOKENS"), ("content_filter", "SAFETY"), (None, None)],
)  # fmt: skip
def test_finish_reasons_back(finish: str | None, reason: str | None) -> None:
    hub = {"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": finish}]}
    [candidate] = CODEC.answer_from_hub(hub, None)["candidates"]
    assert candidate.get("finishReason") == reason


def test_answer_from_hub_reads_back_through_google_genai(genai_types: Any) -> None:
    usage = Usage(input_tokens=100, cached_input_tokens=40, output_tokens=30, reasoning_tokens=12)
    answer = CODEC.answer_from_hub(HUB_ANSWER, usage)
    parsed = genai_types.GenerateContentResponse.model_validate_json(orjson.dumps(answer))
    assert [(call.name, call.args) for call in parsed.function_calls] == [
        ("weather", {"city": "Paris"}),
        ("now", {}),
    ]
    assert parsed.candidates[1].finish_reason == genai_types.FinishReason.SAFETY
    assert parsed.usage_metadata.thoughts_token_count == 12


def test_the_google_genai_client_reads_a_translated_answer() -> None:
    hub = {"id": "r1", "model": "m", "choices": [{"index": 0, "message": {"content": "Hello!"}, "finish_reason": "stop"}]}  # fmt: skip
    body = orjson.dumps(CODEC.answer_from_hub(hub, Usage(input_tokens=3, output_tokens=2)))
    client = sdk_client(lambda request: httpx.Response(200, content=body))
    response = client.models.generate_content(model="gemini-2.5-flash", contents="Hi")
    assert response.text == "Hello!"
    assert (
        response.usage_metadata.prompt_token_count,
        response.usage_metadata.total_token_count,
    ) == (3, 5)


# --- usage ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("meta", "usage"),
    [
        pytest.param(
            {"promptTokenCount": 5000, "candidatesTokenCount": 30, "totalTokenCount": 5030, "cachedContentTokenCount": 4200},
            Usage(input_tokens=5000, cached_input_tokens=4200, output_tokens=30),
            id="cached-is-inside-prompt",
        ),
        pytest.param(
            {"promptTokenCount": 844, "candidatesTokenCount": 46, "totalTokenCount": 2040, "thoughtsTokenCount": 1150},
            Usage(input_tokens=844, output_tokens=1196, reasoning_tokens=1150),
            id="thoughts-are-output",
        ),
        pytest.param(
            {"promptTokenCount": 100, "candidatesTokenCount": 20, "toolUsePromptTokenCount": 5, "totalTokenCount": 125},
            Usage(input_tokens=105, output_tokens=20),
            id="tool-use-prompt-is-input",
        ),
        pytest.param(
            {
                "promptTokenCount": 12,
                "candidatesTokenCount": 1300,
                "totalTokenCount": 1312,
                "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 8}, {"modality": "IMAGE", "tokenCount": 4}],
                "candidatesTokensDetails": [{"modality": "TEXT", "tokenCount": 10}, {"modality": "IMAGE", "tokenCount": 1290}],
            },
            Usage(input_tokens=12, output_tokens=10, image_output_tokens=1290),
            id="image-output-apart-image-input-inside",
        ),
        pytest.param({"promptTokenCount": 8}, Usage(input_tokens=8), id="prompt-only"),
    ],
)  # fmt: skip
def test_usage(meta: Json, usage: Usage) -> None:
    assert CODEC.usage({"usageMetadata": meta}) == usage


@pytest.mark.parametrize(
    "meta",
    [
        None,
        {},
        "12",
        {"promptTokenCount": -1},
        {"promptTokenCount": 1.5},
        {"promptTokenCount": True},
        {"promptTokenCount": "12"},
        {"promptTokenCount": 10, "candidatesTokenCount": None, "thoughtsTokenCount": -3},
        {"promptTokenCount": 10, "cachedContentTokenCount": 11},
        {"candidatesTokenCount": 5, "candidatesTokensDetails": "IMAGE"},
        {
            "candidatesTokenCount": 5,
            "candidatesTokensDetails": [{"modality": "IMAGE", "tokenCount": 6}],
        },
        {"candidatesTokenCount": 5, "candidatesTokensDetails": [7]},
    ],
)
def test_garbage_usage_is_none(meta: Any) -> None:
    answer = {} if meta is None else {"usageMetadata": meta}
    assert CODEC.usage(answer) is None


@pytest.mark.parametrize(
    "usage",
    [
        Usage(input_tokens=10, output_tokens=5),
        Usage(input_tokens=100, cached_input_tokens=60, output_tokens=50, reasoning_tokens=20),
        Usage(input_tokens=12, output_tokens=10, image_output_tokens=1290),
        Usage(input_tokens=7, output_tokens=0, audio_output_tokens=40),
    ],
)
def test_usage_metadata_reads_back_unchanged(usage: Usage) -> None:
    hub = {"choices": [{"index": 0, "message": {"content": "x"}, "finish_reason": "stop"}]}
    assert CODEC.usage(CODEC.answer_from_hub(hub, usage)) == usage


# --- streams: reading -------------------------------------------------------

# https://github.com/google-gemini/cookbook/blob/main/quickstarts/rest/Streaming_REST.ipynb
# (first and last events; that model sent finishReason STOP on every event)
DOC_STREAM = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "In the quaint, sunlit cottage nestled amidst a lush meadow, resided two feline"}],"role": "model"},"finishReason": "STOP","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HATE_SPEECH","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HARASSMENT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_DANGEROUS_CONTENT","probability": "NEGLIGIBLE"}]}],"promptFeedback": {"safetyRatings": [{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HATE_SPEECH","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HARASSMENT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_DANGEROUS_CONTENT","probability": "NEGLIGIBLE"}]}}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": " other and for adventure stronger than ever."}],"role": "model"},"finishReason": "STOP","index": 0,"safetyRatings": [{"category": "HARM_CATEGORY_SEXUALLY_EXPLICIT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HATE_SPEECH","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_HARASSMENT","probability": "NEGLIGIBLE"},{"category": "HARM_CATEGORY_DANGEROUS_CONTENT","probability": "NEGLIGIBLE"}]}]}\r\n\r\n'
)  # fmt: skip


def read(stream: bytes, pieces: Iterator[bytes] | None = None) -> tuple[list[Json], GeminiReader]:
    reader = GeminiReader()
    chunks: list[Json] = []
    for piece in pieces if pieces is not None else [stream]:
        chunks += reader.feed(piece)
    for chunk in chunks:
        chunk.pop("created")  # the reading's clock
    return chunks, reader


def test_the_documented_stream() -> None:
    chunks, reader = read(DOC_STREAM)
    assert [chunk["choices"] for chunk in chunks] == [
        [
            {
                "index": 0,
                "delta": {
                    "role": "assistant",
                    "content": "In the quaint, sunlit cottage nestled amidst a lush meadow, resided two feline",
                },
                "finish_reason": "stop",
            }
        ],
        [{"index": 0, "delta": {"content": " other and for adventure stronger than ever."}, "finish_reason": "stop"}],
    ]  # fmt: skip
    assert chunks[0]["id"] == chunks[1]["id"] and chunks[0]["object"] == "chat.completion.chunk"
    assert reader.done and reader.usage is None


def event(body: Json, end: bytes = b"\r\n\r\n") -> bytes:
    return b"data: " + orjson.dumps(body) + end


def stream_events(end: bytes) -> bytes:
    def chunk(parts: list[Json], usage: Json, finish: str | None = None) -> Json:
        candidate: Json = {"content": {"role": "model", "parts": parts}, "index": 0}
        if finish:
            candidate["finishReason"] = finish
        return {"candidates": [candidate], "usageMetadata": usage, "modelVersion": "gemini-2.5-flash", "responseId": "resp-1"}  # fmt: skip

    return b"".join(
        event(body, end)
        for body in [
            chunk([{"text": "Let me think.", "thought": True}], {"promptTokenCount": 10, "totalTokenCount": 10}),
            chunk([{"text": "Paris "}], {"promptTokenCount": 10, "candidatesTokenCount": 2, "thoughtsTokenCount": 7, "totalTokenCount": 19}),
            chunk(
                [{"functionCall": {"id": "fc1", "name": "weather", "args": {"city": "Paris"}}, "thoughtSignature": "c2ln"}],
                {"promptTokenCount": 10, "candidatesTokenCount": 9, "thoughtsTokenCount": 7, "totalTokenCount": 26},
            ),
            chunk([{"text": ""}], {"promptTokenCount": 10, "candidatesTokenCount": 12, "thoughtsTokenCount": 7, "totalTokenCount": 29}, "STOP"),
        ]
    )  # fmt: skip


STREAM_CHOICES = [
    [{"index": 0, "delta": {"role": "assistant", "reasoning_content": "Let me think."}, "finish_reason": None}],
    [{"index": 0, "delta": {"content": "Paris "}, "finish_reason": None}],
    [
        {
            "index": 0,
            "delta": {
                "tool_calls": [
                    {"index": 0, "id": "fc1", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
                ]
            },
            "finish_reason": None,
        }
    ],
    [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}],
]  # fmt: skip
FINAL_USAGE = Usage(input_tokens=10, output_tokens=19, reasoning_tokens=7)


@pytest.mark.parametrize("end", [b"\r\n\r\n", b"\n\n"])
def test_a_stream_split_at_every_byte(end: bytes) -> None:
    stream = stream_events(end)
    whole, reader = read(stream)
    assert [chunk["choices"] for chunk in whole] == STREAM_CHOICES
    assert {(chunk["id"], chunk["model"]) for chunk in whole} == {("resp-1", "gemini-2.5-flash")}
    # the last event's usage, not a sum of every event's
    assert reader.usage == FINAL_USAGE and reader.done
    for cut in range(1, len(stream)):
        chunks, reader = read(stream, iter([stream[:cut], stream[cut:]]))
        assert chunks == whole, cut
        assert reader.usage == FINAL_USAGE
    chunks, reader = read(stream, (stream[i : i + 1] for i in range(len(stream))))
    assert chunks == whole and reader.usage == FINAL_USAGE


def test_done_only_once_a_finish_reason_came() -> None:
    stream = stream_events(b"\r\n\r\n")
    last = stream.rindex(b"data: ")
    reader = GeminiReader()
    reader.feed(stream[:last])
    assert not reader.done
    assert reader.usage == Usage(input_tokens=10, output_tokens=16, reasoning_tokens=7)
    reader.feed(stream[last:])
    assert reader.done


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        ({"code": 429, "message": "Resource exhausted.", "status": "RESOURCE_EXHAUSTED"}, 429, "rate_limit_exceeded"),
        ({"code": 500, "message": "Internal error.", "status": "INTERNAL"}, 502, "upstream_error"),
        ({"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}, 503, "upstream_overloaded"),
        ({"message": "no code"}, 502, "upstream_error"),
    ],
)  # fmt: skip
def test_an_error_event_fails_the_stream(error: Json, status: int, code: str) -> None:
    reader = GeminiReader()
    assert reader.feed(stream_events(b"\r\n\r\n").split(b"\r\n\r\n")[0] + b"\r\n\r\n")
    with pytest.raises(StreamFailed) as caught:
        reader.feed(event({"error": error}))
    assert (caught.value.error.status, caught.value.error.code) == (status, code)
    assert str(error["message"]) in caught.value.error.message
    assert not reader.done


def test_a_blocked_stream_is_filtered_and_done() -> None:
    body = {"promptFeedback": {"blockReason": "PROHIBITED_CONTENT"}, "usageMetadata": {"promptTokenCount": 6, "totalTokenCount": 6}}  # fmt: skip
    chunks, reader = read(event(body))
    assert [chunk["choices"] for chunk in chunks] == [
        [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": "content_filter"}]
    ]
    assert reader.done and reader.usage == Usage(input_tokens=6)


def test_usage_that_turns_to_garbage_is_none() -> None:
    good = {
        "candidates": [{"content": {"parts": [{"text": "a"}]}}],
        "usageMetadata": {"promptTokenCount": 4},
    }
    bad = {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}], "usageMetadata": {"promptTokenCount": -4}}  # fmt: skip
    _, reader = read(event(good) + b": a comment\n\n" + event(bad))
    assert reader.usage is None and reader.done


# --- streams: writing -------------------------------------------------------

HUB_CHUNKS: list[Json] = [
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"reasoning_content": "Hmm."}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": "Hello"}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": " there"}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": ""}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}, "finish_reason": None}]},
    {"id": "chatcmpl-7", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]},
]  # fmt: skip
WRITTEN_USAGE = Usage(input_tokens=20, cached_input_tokens=5, output_tokens=9, reasoning_tokens=3)


def written(usage: Usage | None = WRITTEN_USAGE) -> bytes:
    writer = CODEC.writer({"model": "gemini-2.5-flash", "messages": []})
    return b"".join(writer.write(copy.deepcopy(chunk)) for chunk in HUB_CHUNKS) + writer.finish(
        usage
    )


def events_of(stream: bytes) -> list[Json]:
    assert stream.endswith(b"\r\n\r\n")
    return [orjson.loads(part.removeprefix(b"data: ")) for part in stream.split(b"\r\n\r\n")[:-1]]


def test_writer_events() -> None:
    events = events_of(written())
    meta = {"modelVersion": "gpt-4o", "responseId": "chatcmpl-7"}
    model = "model"
    assert events == [
        {"candidates": [{"content": {"role": model, "parts": [{"text": "Hmm.", "thought": True}]}, "index": 0}], **meta},
        {"candidates": [{"content": {"role": model, "parts": [{"text": "Hello"}]}, "index": 0}], **meta},
        {"candidates": [{"content": {"role": model, "parts": [{"text": " there"}]}, "index": 0}], **meta},
        {"candidates": [{"content": {"role": model, "parts": [{"functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "call_a"}}]}, "index": 0}], **meta},
        {
            "candidates": [{"content": {"role": model, "parts": [{"text": ""}]}, "finishReason": "STOP", "index": 0}],
            "usageMetadata": {"promptTokenCount": 20, "candidatesTokenCount": 6, "cachedContentTokenCount": 5, "thoughtsTokenCount": 3, "totalTokenCount": 29},
            **meta,
        },
    ]  # fmt: skip


def test_writer_events_validate_as_google_genai_responses(genai_types: Any) -> None:
    writer = CODEC.writer({"model": "m", "messages": []})
    stream = written() + written(None) + writer.finish(None)
    for body in events_of(stream):
        genai_types.GenerateContentResponse.model_validate_json(orjson.dumps(body))


def test_the_google_genai_client_reads_a_translated_stream() -> None:
    body = written()
    client = sdk_client(lambda request: httpx.Response(200, content=body))
    responses = list(client.models.generate_content_stream(model="gemini-2.5-flash", contents="Hi"))
    parts = [part for r in responses if r.candidates for part in r.candidates[0].content.parts]
    assert "".join(p.text for p in parts if p.text and not p.thought) == "Hello there"
    assert [(p.function_call.name, p.function_call.args) for p in parts if p.function_call] == [
        ("weather", {"city": "Paris"})
    ]
    last = responses[-1]
    assert last.candidates[0].finish_reason.value == "STOP"
    assert last.usage_metadata.total_token_count == 29


def test_the_google_genai_client_raises_on_a_failed_stream() -> None:
    genai_errors = pytest.importorskip("google.genai.errors")
    writer = CODEC.writer({"model": "m", "messages": []})
    body = writer.write(HUB_CHUNKS[2]) + writer.fail(
        ApiError(429, "Slow down.", "rate_limit_exceeded")
    )
    client = sdk_client(lambda request: httpx.Response(200, content=body))
    with pytest.raises(genai_errors.APIError) as caught:
        list(client.models.generate_content_stream(model="m", contents="Hi"))
    assert (caught.value.code, caught.value.status, caught.value.message) == (
        429,
        "RESOURCE_EXHAUSTED",
        "Slow down.",
    )


def test_what_the_writer_writes_the_reader_reads_back() -> None:
    chunks, reader = read(written())
    deltas = [choice["delta"] for chunk in chunks for choice in chunk["choices"]]
    assert "".join(d.get("content", "") for d in deltas) == "Hello there"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "Hmm."
    calls = [call for d in deltas for call in d.get("tool_calls", [])]
    assert calls == [
        {"index": 0, "id": "call_a", "type": "function", "function": {"name": "weather", "arguments": '{"city":"Paris"}'}}
    ]  # fmt: skip
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"
    assert reader.done and reader.usage == WRITTEN_USAGE


def test_a_stream_without_finish_reasons_still_ends_each_choice() -> None:
    writer = CODEC.writer({"model": "m", "messages": []})
    for index in (0, 1):
        writer.write(
            {
                "choices": [
                    {"index": index, "delta": {"content": f"c{index}"}, "finish_reason": None}
                ]
            }
        )
    writer.write({"choices": [{"index": 1, "delta": {}, "finish_reason": "length"}]})
    last = events_of(writer.finish(None))[-1]
    assert [(c["index"], c["finishReason"]) for c in last["candidates"]] == [
        (0, "STOP"),
        (1, "MAX_TOKENS"),
    ]
    assert "usageMetadata" not in last
    assert (
        events_of(CODEC.writer({"messages": []}).finish(None))[0]["candidates"][0]["finishReason"]
        == "STOP"
    )


# --- errors -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "rpc"),
    [
        (400, "INVALID_ARGUMENT"),
        (401, "UNAUTHENTICATED"),
        (402, "FAILED_PRECONDITION"),
        (403, "PERMISSION_DENIED"),
        (404, "NOT_FOUND"),
        (413, "INVALID_ARGUMENT"),
        (429, "RESOURCE_EXHAUSTED"),
        (500, "INTERNAL"),
        (502, "UNAVAILABLE"),
        (503, "UNAVAILABLE"),
        (504, "DEADLINE_EXCEEDED"),
    ],
)
def test_error_body(status: int, rpc: str) -> None:
    body = orjson.loads(CODEC.error_body(ApiError(status, "Something.", "some_code")))
    assert body == {"error": {"code": status, "message": "Something.", "status": rpc}}


# An error as Gemini answers it (https://ai.google.dev/gemini-api/docs/troubleshooting)
QUOTA = b'{"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).", "status": "RESOURCE_EXHAUSTED"}}'  # fmt: skip


@pytest.mark.parametrize(
    ("status", "data", "expected"),
    [
        (400, b'{"error": {"code": 400, "message": "Request contains an invalid argument.", "status": "INVALID_ARGUMENT"}}',
         (400, "upstream_rejected_request", "Request contains an invalid argument.")),
        (404, b'[{"error": {"code": 404, "message": "models/x is not found.", "status": "NOT_FOUND"}}]',
         (404, "upstream_rejected_request", "models/x is not found.")),
        (429, QUOTA, (429, "rate_limit_exceeded", "Resource has been exhausted (e.g. check quota).")),
        (403, b'{"error": {"code": 403, "message": "API key not valid."}}',
         (502, "upstream_error", "The upstream refused the gateway's credentials for this model.")),
        (401, b"", (502, "upstream_error", "The upstream refused the gateway's credentials for this model.")),
        (503, b'{"error": {"code": 503, "message": "The model is overloaded."}}',
         (503, "upstream_overloaded", "The model is overloaded.")),
        (500, b"<html>oops</html>", (502, "upstream_error", "The upstream failed: The upstream answered HTTP 500.")),
    ],
)  # fmt: skip
def test_failure(status: int, data: bytes, expected: tuple[int, str, str]) -> None:
    error = CODEC.failure(status, data)
    assert (error.status, error.code, error.message) == expected


# --- the image helpers ------------------------------------------------------


@pytest.mark.parametrize(
    ("size", "ratio"),
    [
        ("1024x1024", "1:1"),
        ("1536x1024", "3:2"),
        ("1024x1536", "2:3"),
        ("1792x1008", "16:9"),
        ("768x1024", "3:4"),
        ("2560x1097", None),
        ("1792x1024", None),  # 7:4
        ("auto", None),
        ("0x10", None),
        (None, None),
    ],
)
def test_image_request(size: str | None, ratio: str | None) -> None:
    body = image_request_from_openai("A cat in a hat", 3, size)
    config: Json = {"responseModalities": ["TEXT", "IMAGE"]}
    if ratio is not None:
        config["imageConfig"] = {"aspectRatio": ratio}
    assert body == {"contents": [{"role": "user", "parts": [{"text": "A cat in a hat"}]}], "generationConfig": config}  # fmt: skip


def test_image_request_is_what_google_genai_sends() -> None:
    types = pytest.importorskip("google.genai.types")
    sent: list[Json] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(orjson.loads(request.content))
        return httpx.Response(200, json={"candidates": []})

    config = types.GenerateContentConfig(
        response_modalities=["TEXT", "IMAGE"], image_config=types.ImageConfig(aspect_ratio="16:9")
    )
    sdk_client(handler).models.generate_content(
        model="gemini-2.5-flash-image", contents="A cat", config=config
    )
    assert sent == [image_request_from_openai("A cat", 1, "1792x1008")]


def test_image_answer() -> None:
    # the shape https://ai.google.dev/gemini-api/docs/image-generation documents: text and
    # inlineData parts; a thinking image model adds draft images marked as thoughts
    answer = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "inlineData": {"mimeType": "image/png", "data": "ZHJhZnQ="},
                            "thought": True,
                        },
                        {"text": "Here is your cat."},
                        {"inlineData": {"mimeType": "image/png", "data": "aW1hZ2Ux"}},
                        {"inlineData": {"mimeType": "audio/wav", "data": "UklGRg=="}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 7,
            "candidatesTokenCount": 1290,
            "totalTokenCount": 1297,
        },
    }
    images, count = image_answer_to_openai(answer)
    assert count == 1 and images["data"] == [{"b64_json": "aW1hZ2Ux"}]
    assert isinstance(images["created"], int) and images["created"] > 1_700_000_000
    assert (
        image_answer_to_openai({"candidates": [{"finishReason": "IMAGE_SAFETY"}]})[0]["data"] == []
    )


# --- hostile bodies ---------------------------------------------------------

KEYS = [
    "contents", "role", "parts", "text", "thought", "inlineData", "inline_data", "mimeType", "mime_type",
    "data", "fileData", "fileUri", "functionCall", "functionResponse", "name", "args", "response", "id",
    "systemInstruction", "system_instruction", "tools", "functionDeclarations", "parameters",
    "parametersJsonSchema", "description", "type", "properties", "items", "anyOf", "nullable",
    "toolConfig", "functionCallingConfig", "mode", "allowedFunctionNames", "generationConfig",
    "temperature", "topP", "topK", "maxOutputTokens", "stopSequences", "candidateCount", "seed",
    "responseMimeType", "responseSchema", "responseJsonSchema", "executableCode",
]  # fmt: skip
WORDS = [
    "user", "model", "function", "system", "AUTO", "ANY", "NONE", "OBJECT", "STRING", "object",
    "image/png", "application/json", "application/pdf", "text/plain", "https://x.test/a.png",
    "gs://b/o", "aGk=", "f", "g", "9bad", "", "\x00", "x" * 300,
]  # fmt: skip
leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(),
    st.sampled_from(WORDS),
    st.text(max_size=8),
)
hostile = st.recursive(
    leaves,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=5), inner, max_size=5),
    ),
    max_leaves=40,
)


@settings(max_examples=600, deadline=None, database=None, suppress_health_check=list(HealthCheck))
@given(st.dictionaries(st.sampled_from(KEYS), hostile, max_size=6) | hostile)
def test_hostile_bodies_get_a_4xx_or_a_hub_request(body: Any) -> None:
    try:
        hub = CODEC.request_to_hub(body)
    except ApiError as error:
        assert 400 <= error.status < 500 and error.message
        return
    orjson.dumps(hub)
    try:
        CODEC.request_from_hub({**hub, "model": "gemini-3-flash"})
    except ApiError as error:
        assert 400 <= error.status < 500


@pytest.mark.parametrize("where", ["arguments", "parameters"])
def test_a_body_nested_past_what_json_writers_take_is_a_400(where: str) -> None:
    # orjson reads 1024 levels and writes 255: arguments parsed from the hub's
    # string, or a schema one level deeper in a body than in the hub, nest
    # past what can be sent.
    nested = '{"a":' * 250 + "1" + "}" * 250
    call = {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    hub: Json = {"model": "gemini-2.5-flash", "messages": [{"role": "user", "content": "x"}]}
    if where == "arguments":
        call["function"]["arguments"] = nested
        hub["messages"].append({"role": "assistant", "content": None, "tool_calls": [call]})
    else:
        function = {"name": "f", "parameters": orjson.loads(nested)}
        hub["tools"] = [{"type": "function", "function": function}]
    orjson.dumps(hub)  # the hub itself can be written
    with pytest.raises(ApiError) as refused:
        CODEC.request_from_hub(hub)
    assert refused.value.status == 400


def test_answered_arguments_nested_past_the_writer_read_as_none() -> None:
    nested = orjson.loads('{"a":' * 300 + "1" + "}" * 300)
    call = {"functionCall": {"name": "f", "args": nested}}
    answer = {"candidates": [{"content": {"role": "model", "parts": [call]}}]}
    [tool_call] = CODEC.answer_to_hub(answer)["choices"][0]["message"]["tool_calls"]
    assert tool_call["function"] == {"name": "f", "arguments": "{}"}
