"""The hold is the most a call can cost: every prompt part at its worst case."""

from __future__ import annotations

import base64
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tollway.billing import media
from tollway.billing.holds import hold_usage
from tollway.billing.shapes import TOOLS_TOKENS, CallShape, chat_shape
from tollway.counting import TokenCounter
from tollway.errors import ApiError
from tollway.types import Model, ModelKind, PerUsePrice

PRICE = PerUsePrice(5_000_000_000, 15_000_000_000, audio_input_mtok=40_000_000_000)


def model(model_id: str, provider: str = "openai") -> Model:
    return Model(model_id, ModelKind.MULTIMODAL, provider, per_use=PRICE)


GPT4O = model("gpt-4o")
IMAGE_URL = "https://example.com/cat.png"


def held(payload: dict[str, Any], on: Model = GPT4O) -> tuple[int, Any]:
    body = orjson.dumps(payload)
    usage = hold_usage(chat_shape(payload, len(body)), on)
    return len(body), usage


def chat(*content: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": list(content)}], **fields}


def image(url: str = IMAGE_URL, detail: str | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"url": url}
    if detail is not None:
        inner["detail"] = detail
    return {"type": "image_url", "image_url": inner}


def test_text_is_held_a_token_a_byte() -> None:
    size, usage = held({"model": "gpt-4o", "messages": [{"role": "user", "content": "1 1 1 1"}]})
    assert usage.input_tokens == size + 1


@pytest.mark.parametrize(
    ("model_id", "provider", "per_image"),
    [
        ("gpt-4o", "openai", 85 + 8 * 170),
        ("gpt-4o-2024-08-06", "openai", 85 + 8 * 170),
        ("gpt-4o-mini", "openai", 2833 + 8 * 5667),
        ("gpt-4.1-nano", "openai", 3779),
        ("claude-sonnet-4-5", "anthropic", 4800),
        ("gemini-2.5-pro", "google", 16384),
        ("gpt-5.4", "openai", 16384),
    ],
)
def test_each_image_is_held_at_its_models_worst_case(
    model_id: str, provider: str, per_image: int
) -> None:
    _, one = held(chat(image()), model(model_id, provider))
    size, usage = held(chat(*[image()] * 300), model(model_id, provider))
    text = size - 300 * len(IMAGE_URL)
    assert usage.input_tokens == text + 1 + 300 * per_image
    assert usage.input_tokens - one.input_tokens > 299 * per_image


def test_low_detail_images_are_held_at_the_low_detail_count() -> None:
    size, usage = held(chat(image(detail="low"), image(detail="high")))
    assert usage.input_tokens == size - 2 * len(IMAGE_URL) + 1 + 85 + 1445


def test_an_inline_image_is_held_as_an_image_not_as_its_bytes() -> None:
    data = "data:image/png;base64," + base64.b64encode(b"\x89PNG" + b"\0" * 300_000).decode()
    size, usage = held(chat({"type": "text", "text": "what is this?"}, image(data)))
    assert size > 400_000
    assert usage.input_tokens == size - len(data) + 1 + 1445


def test_audio_is_held_by_its_decoded_size_as_audio_tokens() -> None:
    audio = base64.b64encode(b"\0" * 15_984).decode()  # no padding: 15,984 bytes
    part = {"type": "input_audio", "input_audio": {"data": audio, "format": "wav"}}
    size, usage = held(chat(part))
    assert usage.audio_input_tokens == 999  # a token per 16 bytes
    assert usage.input_tokens == size - len(audio) + 1


def test_an_inline_file_is_held_as_its_most_pages() -> None:
    pdf = base64.b64encode(b"%PDF-1.7" + b"\0" * 1000).decode()
    part = {"type": "file", "file": {"file_data": pdf, "filename": "a.pdf"}}
    size, usage = held(chat(part))
    assert usage.input_tokens == size - len(pdf) + 1 + 100 * (1445 + 1500)


def test_a_file_by_id_cannot_be_held_and_is_refused() -> None:
    part = {"type": "file", "file": {"file_id": "file-abc"}}
    with pytest.raises(ApiError) as refused:
        held(chat(part))
    assert refused.value.status == 400
    assert refused.value.code == "unsupported_file_reference"


def test_tools_add_the_tool_use_system_prompt() -> None:
    tools = [{"type": "function", "function": {"name": "f"}}]
    size, usage = held(chat({"type": "text", "text": "hi"}, tools=tools))
    assert usage.input_tokens == size + 1 + TOOLS_TOKENS


def test_output_is_max_tokens_per_choice() -> None:
    _, usage = held(chat({"type": "text", "text": "hi"}, max_tokens=7, n=3))
    assert (usage.output_tokens, usage.items) == (21, 3)


def test_a_plain_shape_has_no_parts() -> None:
    assert hold_usage(CallShape(body_bytes=10), GPT4O).input_tokens == 11


# Text that tokenizes worst: digits and punctuation split by spaces are one
# token a byte on cl100k; the hold must still bound the gateway's own count.
_PIECES = ["1 ", "!a", "1,", "é ", "漢", "🙂", "\n", "\\", '"', "\u0000", "word "]
_HOSTILE_TEXT = st.lists(
    st.builds(lambda piece, times: piece * times, st.sampled_from(_PIECES), st.integers(0, 800)),
    max_size=4,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(texts=st.lists(_HOSTILE_TEXT, min_size=1, max_size=6), images=st.integers(0, 4))
def test_the_hold_bounds_the_counted_prompt(texts: list[str], images: int) -> None:
    content: list[Any] = [{"type": "text", "text": t} for t in texts]
    content += [image()] * images
    payload = chat(*content)
    _, usage = held(payload)
    counted = COUNTER.count_chat_prompt(payload) - images * 85  # the counter's stand-in
    assert usage.input_tokens >= counted + images * media.OPENAI_TILED


COUNTER = TokenCounter()
COUNTER.load()
