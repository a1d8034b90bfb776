"""Reading OpenAI-shaped usage and relaying SSE streams byte-exactly."""

from __future__ import annotations

import orjson
import pytest

from tollway.counting import TokenCounter, heuristic_tokens
from tollway.providers.base import NotJson, Outbound
from tollway.providers.openai import (
    ChatStreamScanner,
    OpenAIProvider,
    image_usage_from_openai,
    usage_from_openai,
)
from tollway.types import Usage


def event(obj: object) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


CHUNKS = [
    event({"id": "c", "choices": [{"index": 0, "delta": {"role": "assistant"}}], "usage": None}),
    event({"id": "c", "choices": [{"index": 0, "delta": {"content": "Hello"}}], "usage": None}),
    event({"id": "c", "choices": [{"index": 0, "delta": {"content": " world"}}], "usage": None}),
    event(
        {
            "id": "c",
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
        }
    ),
    b"data: [DONE]\n\n",
]


def test_chat_usage_splits_audio_and_keeps_cached_and_reasoning() -> None:
    usage = usage_from_openai(
        {
            "prompt_tokens": 100,
            "completion_tokens": 50,
            "prompt_tokens_details": {"cached_tokens": 30, "audio_tokens": 10},
            "completion_tokens_details": {"reasoning_tokens": 20, "audio_tokens": 5},
        }
    )
    assert usage == Usage(
        input_tokens=90,
        cached_input_tokens=30,
        output_tokens=45,
        reasoning_tokens=20,
        audio_input_tokens=10,
        audio_output_tokens=5,
    )


def test_image_style_usage() -> None:
    usage = usage_from_openai(
        {
            "input_tokens": 50,
            "output_tokens": 4160,
            "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
        }
    )
    assert usage is not None
    assert (usage.input_tokens, usage.image_input_tokens, usage.output_tokens) == (40, 10, 4160)


def test_images_endpoint_usage_is_text_in_image_in_and_image_out() -> None:
    provider = OpenAIProvider()
    answer = {
        "data": [],
        "usage": {
            "input_tokens": 50,
            "input_tokens_details": {"text_tokens": 40, "image_tokens": 10},
            "output_tokens": 4160,
            "total_tokens": 4210,
        },
    }
    data = orjson.dumps(answer)
    usage = provider.answer(Outbound("images/generations"), data).usage
    assert usage == Usage(input_tokens=40, image_input_tokens=10, image_output_tokens=4160)
    # the chat reading of the same answer is unchanged
    chat = provider.answer(Outbound("chat/completions"), data).usage
    assert chat is not None and (chat.output_tokens, chat.image_output_tokens) == (4160, 0)


def test_image_usage_with_text_output_and_cached_input() -> None:
    usage = image_usage_from_openai(
        {
            "input_tokens": 30,
            "input_tokens_details": {"text_tokens": 20, "image_tokens": 10, "cached_tokens": 25},
            "output_tokens": 1100,
            "output_tokens_details": {"image_tokens": 1056, "text_tokens": 44},
        }
    )
    assert usage == Usage(
        input_tokens=20,
        cached_input_tokens=20,  # capped at the text tokens it is part of
        image_input_tokens=10,
        output_tokens=44,
        image_output_tokens=1056,
    )


@pytest.mark.parametrize(
    "bad",
    [
        {"input_tokens": 5},  # no output count at all
        {"input_tokens": 5, "output_tokens": -1},
        {"input_tokens": 5, "output_tokens": "7"},
        {"input_tokens": 5, "output_tokens": 9, "input_tokens_details": {"image_tokens": 6}},
        {"output_tokens": 9, "output_tokens_details": {"image_tokens": 10}},
        {"output_tokens": 9, "input_tokens_details": "x"},
    ],
)
def test_garbage_image_usage_means_none(bad: dict[str, object]) -> None:
    assert image_usage_from_openai(bad) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"prompt_tokens": -1},
        {"prompt_tokens": "7"},
        {"prompt_tokens": 1.5},
        {"nothing": 1},
        # parts larger than their totals would price negative token counts
        {"prompt_tokens": 5, "prompt_tokens_details": {"audio_tokens": 6}},
        {
            "prompt_tokens": 5,
            "completion_tokens": 2,
            "completion_tokens_details": {"audio_tokens": 9},
        },
        {"input_tokens": 5, "input_tokens_details": {"image_tokens": 6}},
        {"prompt_tokens": 5, "prompt_tokens_details": "x"},
        {"input_tokens": 5, "output_tokens_details": ["x"]},
    ],
)
def test_garbage_usage_means_none(bad: dict[str, object]) -> None:
    assert usage_from_openai(bad) is None


def test_cached_tokens_are_capped_at_the_input_they_are_part_of() -> None:
    chat = {"prompt_tokens": 10, "prompt_tokens_details": {"cached_tokens": 12, "audio_tokens": 4}}
    assert usage_from_openai(chat) == Usage(
        input_tokens=6, cached_input_tokens=6, audio_input_tokens=4
    )
    io = {"input_tokens": 10, "input_tokens_details": {"cached_tokens": 12, "image_tokens": 3}}
    assert usage_from_openai(io) == Usage(
        input_tokens=7, cached_input_tokens=7, image_input_tokens=3
    )


def choice_event(*choices: dict[str, object]) -> bytes:
    return event({"id": "c", "choices": list(choices)})


def test_stream_counts_the_choices_delivered() -> None:
    scanner = ChatStreamScanner(strip_usage=False)
    opening = [
        choice_event({"index": i, "delta": {"role": "assistant", "content": ""}}) for i in range(4)
    ]
    for chunk in opening:
        scanner.feed(chunk)
    assert scanner.delivered_choices() == 0  # the role chunks carry nothing yet
    scanner.feed(choice_event({"index": 0, "delta": {"content": "Hi"}}))
    scanner.feed(choice_event({"index": 0, "delta": {"content": " there"}}))
    assert scanner.delivered_choices() == 1
    scanner.feed(
        choice_event(
            {"index": 1, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ""}}]}}
        )
    )
    scanner.feed(choice_event({"index": 2, "delta": {}, "finish_reason": "stop"}))
    scanner.feed(choice_event({"index": 3, "delta": {"tool_calls": 5, "content": None}}))
    assert scanner.delivered_choices() == 3
    assert scanner.output_text() == "Hi there"


def test_stream_passes_bytes_through_untouched_when_client_asked_for_usage() -> None:
    scanner = ChatStreamScanner(strip_usage=False)
    out = b"".join(scanner.feed(chunk) for chunk in CHUNKS)
    assert out == b"".join(CHUNKS)
    assert scanner.usage == Usage(input_tokens=5, output_tokens=2)
    assert scanner.done and scanner.output_text() == "Hello world"


def test_stream_strips_what_the_gateway_added() -> None:
    scanner = ChatStreamScanner(strip_usage=True)
    whole = b"".join(CHUNKS)
    # split at awkward places: events arrive in pieces
    pieces = [whole[i : i + 7] for i in range(0, len(whole), 7)]
    out = b"".join(scanner.feed(piece) for piece in pieces)
    assert b"usage" not in out
    assert out.endswith(b"data: [DONE]\n\n")
    assert out.count(b"data: ") == 4
    assert scanner.usage == Usage(input_tokens=5, output_tokens=2)


def test_a_stream_is_asked_for_usage_only_when_the_client_did_not() -> None:
    provider = OpenAIProvider()
    asked = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    body = orjson.dumps(asked)
    call = Outbound("chat/completions", body, asked, stream=True)
    assert provider.request("http://up/v1", "k", call).body == body
    assert not provider.scanner(call).strip_usage
    plain = {"model": "m", "stream": True}
    call = Outbound("chat/completions", orjson.dumps(plain), plain, stream=True)
    sent = provider.request("http://up/v1", "k", call)
    assert orjson.loads(sent.body)["stream_options"] == {"include_usage": True}
    assert sent.url == "http://up/v1/chat/completions"
    assert sent.headers["Authorization"] == "Bearer k"
    assert provider.scanner(call).strip_usage  # the usage the client did not ask for is cut


def test_answers_pass_through_and_errors_map_to_the_clients_status() -> None:
    provider = OpenAIProvider()
    data = b'{"id":"x","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":4}}'
    answer = provider.answer(Outbound("chat/completions"), data)
    assert answer.body == data and answer.usage == Usage(input_tokens=3, output_tokens=4)
    with pytest.raises(NotJson):
        provider.answer(Outbound("chat/completions"), b"<html>")
    error = b'{"error":{"message":"bad model","type":"invalid_request_error"}}'
    assert provider.failure(404, error).status == 404
    assert provider.failure(404, error).message == "bad model"
    assert provider.failure(429, b"").code == "rate_limit_exceeded"
    assert provider.failure(401, b"").status == 502  # the gateway's key, not the client's
    assert provider.failure(503, b"").status == 502


def test_counting_offline() -> None:
    counter = TokenCounter()
    counter.load()
    assert counter.count("hello world, how are you?") == 7  # cl100k_base, exact
    prompt = {
        "messages": [
            {"role": "user", "content": "hello world"},
            {
                "role": "user",
                "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {}}],
            },
        ]
    }
    assert counter.count_chat_prompt(prompt) == 3 + (3 + 2) + (3 + 1 + 85)
    assert counter.count_inputs(["a b", [1, 2, 3]]) == 2 + 3


def test_heuristic_when_no_encoding() -> None:
    assert heuristic_tokens("abcdefgh") == 2
    assert heuristic_tokens("你好") == 2
    assert TokenCounter().count("abcd") == 1  # not loaded: the heuristic stands in
