"""Image edits and variations through a served gateway, driven by the official
openai SDK: multipart uploads forwarded as the SDK sends them, the charge to
the nano-USD by tokens (text, image input, image output) or per image,
Gemini's image models editing through a gemini channel, billing-mode
refusals, and hostile uploads refused before anything is held."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import openai
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tollway.billing.images import (
    GPT_IMAGE_HIGH_FIDELITY,
    GPT_IMAGE_LOW_FIDELITY,
    edit_image_tokens,
)
from tollway.errors import ApiError
from tollway.relay.image_edits import ImageForm, _fields_payload, png_dimensions
from tollway.relay.multipart import Form
from tollway.simulator import Simulator
from tollway.simulator.images import Upload, input_image_tokens
from tollway.simulator.media import encode_png
from tollway.types import Model, ModelKind

from conftest import Served, customer, sdk, usage_records
from native import gateway

EDITS = "/v1/images/edits"
VARIATIONS = "/v1/images/variations"
FOX = "a red fox in snow"  # the simulator counts 5 text tokens (words)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# gpt-image-1's tokens for one 16x16 input image: 65 + one 512-px tile of 129
# (OpenAI's rule, as the simulator applies it); high fidelity adds 4,160 (square).
SMALL_IMAGE_TOKENS = 65 + 129
HIGH_FIDELITY_SQUARE = 4160


def png(width: int = 16, height: int = 16, shade: int = 0) -> bytes:
    return encode_png(width, height, bytes([shade]) * (width * height * 3))


def spent(balance_usd: str, credit: str = "10") -> Decimal:
    return Decimal(credit) - Decimal(balance_usd)


def usd(nano_times_million: int) -> Decimal:
    """Tokens x a catalog price (nano-USD per 1M tokens), in USD."""
    return Decimal(nano_times_million) / 10**6 / 10**9


def catalog(served: Served, model_id: str) -> Model:
    model = served.gw.state.catalog.get(model_id)
    assert model is not None
    return model


def per_image_nano(served: Served, model_id: str, variant: str) -> int:
    price = catalog(served, model_id).per_call
    assert price is not None
    return dict(price.variants)[variant]


def sent(simulator: Simulator, path: str) -> int:
    return simulator.stats.by_path.get(path, 0)


def last_upstream_body(simulator: Simulator, path: str) -> dict[str, Any]:
    found = [r["body"] for r in simulator.stats.recent if r["path"] == path]
    assert found, path
    body: dict[str, Any] = found[-1]
    return body


# --- gpt-image: by tokens ---------------------------------------------------------


async def test_gpt_image_edit_of_two_images_is_billed_by_text_image_input_and_output_tokens(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.edit(
            model="gpt-image-1",
            image=[("a.png", png(shade=1), "image/png"), ("b.png", png(shade=2), "image/png")],
            prompt=FOX,
            size="1024x1024",
            quality="low",
        )
    result = raw.parse()
    assert result.data and len(result.data) == 1
    assert base64.b64decode(result.data[0].b64_json or "").startswith(PNG_SIGNATURE)
    usage = result.usage
    assert usage is not None and usage.input_tokens_details is not None
    assert usage.input_tokens_details.image_tokens == 2 * SMALL_IMAGE_TOKENS
    assert usage.input_tokens_details.text_tokens == 5
    price = catalog(served, "gpt-image-1").per_use
    assert price is not None and price.input_mtok and price.image_input_mtok
    assert price.image_output_mtok
    expected = usd(
        5 * price.input_mtok
        + 2 * SMALL_IMAGE_TOKENS * price.image_input_mtok
        + 272 * price.image_output_mtok  # OpenAI's tokens for a low 1024x1024 image
    )
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected
    assert spent(await served.balance_usd(mkey)) == expected
    [record] = await usage_records(served, mkey)
    assert (record["model"], record["endpoint"], record["status"]) == (
        "gpt-image-1",
        "images/edits",
        "ok",
    )
    assert record["tokens"]["input_tokens"] == 5
    assert record["tokens"]["image_input_tokens"] == 2 * SMALL_IMAGE_TOKENS
    assert record["tokens"]["image_output_tokens"] == 272
    assert record["usage_source"] == "upstream" and not record["exceeded_hold"]
    assert Decimal(record["cost_usd"]) == expected
    # forwarded as the SDK sends a list: repeated image[] parts, the model by its id
    upstream = last_upstream_body(simulator, EDITS)
    assert upstream["model"] == "gpt-image-1" and upstream["prompt"] == FOX
    assert [f["name"] for f in upstream["files"]] == ["image[]", "image[]"]
    assert [f["filename"] for f in upstream["files"]] == ["a.png", "b.png"]


async def test_one_image_with_a_mask_at_high_fidelity(served: Served, simulator: Simulator) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_use")
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.edit(
            model="gpt-image-1",
            image=("photo.png", png(), "image/png"),
            mask=("mask.png", png(shade=9), "image/png"),
            prompt=FOX,
            input_fidelity="high",
            quality="medium",
            size="1536x1024",
            n=2,
        )
    image_tokens = SMALL_IMAGE_TOKENS + HIGH_FIDELITY_SQUARE
    price = catalog(served, "gpt-image-1").per_use
    assert price is not None and price.input_mtok and price.image_input_mtok
    assert price.image_output_mtok
    expected = usd(
        5 * price.input_mtok
        + image_tokens * price.image_input_mtok
        + 2 * 1568 * price.image_output_mtok  # OpenAI's tokens for a medium 1536x1024
    )
    assert len(raw.parse().data or []) == 2
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["image_input_tokens"] == image_tokens
    assert record["items"] == 2 and Decimal(record["cost_usd"]) == expected
    assert spent(await served.balance_usd(mkey)) == expected
    upstream = last_upstream_body(simulator, EDITS)
    assert [f["name"] for f in upstream["files"]] == ["image", "mask"]
    assert upstream["input_fidelity"] == "high" and upstream["n"] == "2"


async def test_without_usage_an_edit_is_billed_by_the_estimate(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.edit(
            model="gpt-image-1",
            image=[("a.png", png(), "image/png"), ("b.png", png(), "image/png")],
            prompt=f"{FOX} [sim:no_usage]",
            quality="low",
            size="1024x1024",
        )
    assert raw.parse().usage is None
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "estimated" and record["status"] == "ok"
    # the input images at what they were held for (low fidelity: 581 each)
    assert record["tokens"]["image_input_tokens"] == 2 * GPT_IMAGE_LOW_FIDELITY
    assert record["tokens"]["image_output_tokens"] == 272
    price = catalog(served, "gpt-image-1").per_use
    assert price is not None and price.input_mtok and price.image_input_mtok
    assert price.image_output_mtok
    expected = usd(
        record["tokens"]["input_tokens"] * price.input_mtok
        + 2 * GPT_IMAGE_LOW_FIDELITY * price.image_input_mtok
        + 272 * price.image_output_mtok
    )
    assert Decimal(record["cost_usd"]) == expected
    assert raw.headers["x-tollway-cost-usd"] == record["cost_usd"]


async def test_a_hold_for_many_images_that_does_not_fit_is_402(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served, credit="0.5")
    before = sent(simulator, EDITS)
    images = [(f"{i}.png", png(), "image/png") for i in range(16)]
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.images.edit(
                model="gpt-image-1", image=images, prompt=FOX, input_fidelity="high", n=1
            )
    # 16 images at high fidelity hold 16 x 6,821 image input tokens at $10/1M ($1.09)
    assert caught.value.status_code == 402 and caught.value.code == "insufficient_quota"
    assert sent(simulator, EDITS) == before
    assert await served.balance_usd(mkey) == "0.5"


# --- per image: DALL-E 2 -----------------------------------------------------------


async def test_dall_e_2_edit_and_variation_are_billed_per_image_at_the_size(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        edit = await client.images.with_raw_response.edit(
            model="dall-e-2", image=("sq.png", png(), "image/png"), prompt=FOX, size="512x512", n=2
        )
        with pytest.warns(DeprecationWarning):  # the SDK marks variations retired
            variation = await client.images.with_raw_response.create_variation(
                model="dall-e-2", image=("sq.png", png(), "image/png"), size="256x256", n=3
            )
    edit_price = per_image_nano(served, "dall-e-2", "512x512/standard")
    variation_price = per_image_nano(served, "dall-e-2", "256x256/standard")
    assert Decimal(edit.headers["x-tollway-cost-usd"]) == Decimal(2 * edit_price) / 10**9
    assert Decimal(variation.headers["x-tollway-cost-usd"]) == Decimal(3 * variation_price) / 10**9
    assert edit.headers["x-tollway-billing-method"] == "per_call"
    edit_data = edit.parse().data or []
    assert len(edit_data) == 2 and edit_data[0].url  # DALL-E 2 answers urls by default
    assert len(variation.parse().data or []) == 3
    total = Decimal(2 * edit_price + 3 * variation_price) / 10**9
    assert spent(await served.balance_usd(mkey)) == total
    variation_record, edit_record = await usage_records(served, mkey)
    assert (edit_record["endpoint"], edit_record["items"]) == ("images/edits", 2)
    assert edit_record["unit_prices_usd"] == {"images:512x512/standard": "0.018"}
    assert (variation_record["endpoint"], variation_record["items"]) == ("images/variations", 3)
    assert variation_record["method"] == "per_call"
    upstream = last_upstream_body(simulator, VARIATIONS)
    assert [f["name"] for f in upstream["files"]] == ["image"]


# --- Gemini's image models through a gemini channel ----------------------------------


@pytest.fixture
async def gemini_served(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> AsyncIterator[Served]:
    async with gateway(database_url, catalog_models, simulator, "gemini") as served:
        yield served


GEMINI_PROMPT = "put a hat on it [sim:tokens=4]"
GEMINI_IMAGE_PART_TOKENS = 85  # the simulator's tokens for an image in a prompt
GEMINI_IMAGE_TOKENS = 1290  # the simulator's (and Gemini 2.5 Flash Image's) per image made


async def test_a_gemini_image_model_edits_through_a_gemini_channel(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_use")
    async with sdk(gemini_served, key) as client:
        raw = await client.images.with_raw_response.edit(
            model="nano-banana",
            image=[("a.png", png(), "image/png"), ("b.png", png(shade=3), "image/png")],
            prompt=GEMINI_PROMPT,
            n=2,
        )
    result = raw.parse()
    assert result.data is not None and len(result.data) == 2
    assert all(base64.b64decode(d.b64_json or "").startswith(PNG_SIGNATURE) for d in result.data)
    # the simulator's chat rule: 3 + (3 + words + 85 an image part), a call
    prompt_tokens = 3 + 3 + len(GEMINI_PROMPT.split()) + 2 * GEMINI_IMAGE_PART_TOKENS
    price = catalog(gemini_served, "gemini-2.5-flash-image").per_use
    assert price is not None and price.input_mtok and price.output_mtok
    assert price.image_output_mtok
    expected = usd(
        2
        * (
            prompt_tokens * price.input_mtok
            + 4 * price.output_mtok
            + GEMINI_IMAGE_TOKENS * price.image_output_mtok
        )
    )
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == expected
    assert spent(await gemini_served.balance_usd(mkey)) == expected
    [record] = await usage_records(gemini_served, mkey)
    assert (record["model"], record["endpoint"], record["items"]) == (
        "gemini-2.5-flash-image",
        "images/edits",
        2,
    )
    assert record["tokens"]["input_tokens"] == 2 * prompt_tokens
    assert record["usage_source"] == "upstream" and not record["exceeded_hold"]
    path = "/v1beta/models/gemini-2.5-flash-image:generateContent"
    body = last_upstream_body(simulator, path)
    parts = body["contents"][0]["parts"]
    assert parts[0] == {"text": GEMINI_PROMPT}
    assert [p["inline_data"]["mime_type"] for p in parts[1:]] == ["image/png", "image/png"]
    assert base64.b64decode(parts[2]["inline_data"]["data"]) == png(shade=3)


async def test_a_gemini_edit_per_call_and_what_gemini_cannot_do(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_call")
    async with sdk(gemini_served, key) as client:
        raw = await client.images.with_raw_response.edit(
            model="gemini-2.5-flash-image", image=("a.png", png(), "image/png"), prompt=FOX, n=3
        )
        before = simulator.stats.errors, await gemini_served.balance_usd(mkey)
        with pytest.raises(openai.BadRequestError) as masked:
            await client.images.edit(
                model="nano-banana",
                image=("a.png", png(), "image/png"),
                mask=("m.png", png(), "image/png"),
                prompt=FOX,
            )
        with pytest.raises(openai.BadRequestError) as url:
            await client.images.edit(
                model="nano-banana",
                image=("a.png", png(), "image/png"),
                prompt=FOX,
                response_format="url",
            )
    price = catalog(gemini_served, "gemini-2.5-flash-image").per_call
    assert price is not None
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == Decimal(3 * price.price_nano) / 10**9
    assert len(raw.parse().data or []) == 3
    assert masked.value.param == "mask" and url.value.param == "response_format"
    assert (simulator.stats.errors, await gemini_served.balance_usd(mkey)) == before
    assert len(await usage_records(gemini_served, mkey)) == 1


# --- billing modes -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "model"), [("pay_per_use", "flux-kontext-pro"), ("pay_per_call", "gpt-image-1")]
)
async def test_a_mode_that_cannot_bill_the_model_refuses_the_edit(
    served: Served, simulator: Simulator, mode: str, model: str
) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    before = sent(simulator, EDITS)
    async with sdk(served, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.images.edit(model=model, image=("a.png", png(), "image/png"), prompt=FOX)
    assert caught.value.code == "billing_mode_mismatch"
    assert mode in caught.value.message
    assert sent(simulator, EDITS) == before
    assert await usage_records(served, mkey) == []
    assert await served.balance_usd(mkey) == "10"


async def test_a_pay_per_use_token_cannot_ask_for_a_variation(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_use")
    async with sdk(served, key) as client:
        with (
            pytest.raises(openai.PermissionDeniedError) as caught,
            pytest.warns(DeprecationWarning),
        ):
            await client.images.create_variation(
                model="dall-e-2", image=("a.png", png(), "image/png")
            )
    assert caught.value.code == "billing_mode_mismatch"
    assert await served.balance_usd(mkey) == "10"


# --- hostile input -------------------------------------------------------------------

TEXT_FILE = ("notes.txt", b"hello, not an image", "text/plain")
JPEG = ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(64), "image/jpeg")
WIDE = ("wide.png", png(32, 16), "image/png")
FIELDS = {"model": "gpt-image-1", "prompt": FOX}
BAD_EDITS: list[tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]], str]] = [
    (FIELDS, [], "image"),
    (FIELDS, [("image", TEXT_FILE)], "image"),
    (FIELDS, [("image", ("empty.png", b"", "image/png"))], "image"),
    (FIELDS, [("image[]", ("p.png", png(), "image/png"))] * 17, "image"),
    ({"model": "gpt-image-1"}, [("image", ("p.png", png(), "image/png"))], "prompt"),
    ({**FIELDS, "prompt": " "}, [("image", ("p.png", png(), "image/png"))], "prompt"),
    ({**FIELDS, "prompt": "x" * 32_001}, [("image", ("p.png", png(), "image/png"))], "prompt"),
    ({**FIELDS, "n": "0"}, [("image", ("p.png", png(), "image/png"))], "n"),
    ({**FIELDS, "n": "11"}, [("image", ("p.png", png(), "image/png"))], "n"),
    ({**FIELDS, "n": "two"}, [("image", ("p.png", png(), "image/png"))], "n"),
    ({**FIELDS, "size": "big"}, [("image", ("p.png", png(), "image/png"))], "size"),
    ({**FIELDS, "quality": "ultra"}, [("image", ("p.png", png(), "image/png"))], "quality"),
    ({**FIELDS, "input_fidelity": "max"}, [("image", ("p.png", png(), "image/png"))],
     "input_fidelity"),
    ({**FIELDS, "output_compression": "101"}, [("image", ("p.png", png(), "image/png"))],
     "output_compression"),
    ({**FIELDS, "stream": "true"}, [("image", ("p.png", png(), "image/png"))], "stream"),
    (FIELDS, [("image", ("p.png", png(), "image/png")), ("mask", JPEG)], "mask"),
    (FIELDS, [("image", ("p.png", png(), "image/png")), ("markup", TEXT_FILE)], "markup"),
    # DALL-E 2: one square PNG under 4 MB, a prompt of 1,000 characters, its sizes
    ({"model": "dall-e-2", "prompt": FOX}, [("image", JPEG)], "image"),
    ({"model": "dall-e-2", "prompt": FOX}, [("image", WIDE)], "image"),
    ({"model": "dall-e-2", "prompt": FOX}, [("image[]", ("p.png", png(), "image/png"))] * 2,
     "image"),
    ({"model": "dall-e-2", "prompt": FOX},
     [("image", ("big.png", png() + bytes(4 * 1024 * 1024), "image/png"))], "image"),
    ({"model": "dall-e-2", "prompt": "x" * 1001}, [("image", ("p.png", png(), "image/png"))],
     "prompt"),
    ({"model": "dall-e-2", "prompt": FOX, "size": "1536x1024"},
     [("image", ("p.png", png(), "image/png"))], "size"),
    ({"model": "dall-e-2", "prompt": FOX, "background": "transparent"},
     [("image", ("p.png", png(), "image/png"))], "background"),
    # not an image model
    ({"model": "gpt-4o", "prompt": FOX}, [("image", ("p.png", png(), "image/png"))], "model"),
]  # fmt: skip
BAD_VARIATIONS: list[tuple[dict[str, str], list[tuple[str, tuple[str, bytes, str]]], str]] = [
    ({"model": "gpt-image-1"}, [("image", ("p.png", png(), "image/png"))], "model"),
    ({"model": "dall-e-2"}, [("image", WIDE)], "image"),
    ({"model": "dall-e-2"}, [("image", TEXT_FILE)], "image"),
    ({"model": "dall-e-2", "size": "1024x1536"}, [("image", ("p.png", png(), "image/png"))],
     "size"),
    ({"model": "dall-e-2", "prompt": FOX}, [("image", ("p.png", png(), "image/png"))], "prompt"),
    ({"model": "dall-e-2"}, [("image", ("p.png", png(), "image/png"))] * 2, "image"),
]  # fmt: skip


def multipart(
    fields: dict[str, str], files: list[tuple[str, tuple[str, bytes, str]]]
) -> tuple[bytes, str]:
    """A multipart/form-data body of ``fields`` and ``files`` (even with no file)."""
    boundary = "test-boundary-7d2f"
    out = b""
    for name, value in fields.items():
        out += f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'.encode()
        out += value.encode() + b"\r\n"
    for name, (filename, data, kind) in files:
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
        head += f'filename="{filename}"\r\nContent-Type: {kind}\r\n\r\n'
        out += head.encode() + data + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return out, f"multipart/form-data; boundary={boundary}"


async def test_bad_uploads_and_fields_are_400_before_anything_is_held(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    before = sent(simulator, EDITS), sent(simulator, VARIATIONS)
    async with served.client(key) as c:
        for path, cases in ((EDITS, BAD_EDITS), (VARIATIONS, BAD_VARIATIONS)):
            for fields, files, param in cases:
                body, content_type = multipart(fields, files)
                got = await c.post(path, content=body, headers={"content-type": content_type})
                assert got.status_code == 400, (path, fields, got.text)
                error = got.json()["error"]
                assert (error["param"], error["type"]) == (param, "invalid_request_error"), (
                    path,
                    fields,
                    error,
                )
        as_json = await c.post(EDITS, json={"model": "gpt-image-1", "prompt": FOX, "image": "x"})
        assert as_json.status_code == 400 and as_json.json()["error"]["param"] == "image"
    assert (sent(simulator, EDITS), sent(simulator, VARIATIONS)) == before
    assert await usage_records(served, mkey) == []
    assert await served.balance_usd(mkey) == "10"


async def test_image_parts_named_by_index_are_accepted(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    files = [("image[0]", ("a.png", png(), "image/png")), ("image[1]", JPEG)]
    body, content_type = multipart({**FIELDS, "quality": "low", "size": "1024x1024"}, files)
    async with served.client(key) as c:
        got = await c.post(EDITS, content=body, headers={"content-type": content_type})
        text_plain = await c.post(EDITS, content=b"x", headers={"content-type": "text/plain"})
    assert got.status_code == 200, got.text
    # the JPEG's size is not read (the simulator takes it as 1024x1024: one tile too)
    assert got.json()["usage"]["input_tokens_details"]["image_tokens"] == 2 * SMALL_IMAGE_TOKENS
    upstream = last_upstream_body(simulator, EDITS)
    assert [(f["name"], f["content_type"]) for f in upstream["files"]] == [
        ("image[]", "image/png"),
        ("image[]", "image/jpeg"),
    ]
    assert text_plain.status_code == 415
    [record] = await usage_records(served, mkey)
    assert record["tokens"]["image_input_tokens"] == 2 * SMALL_IMAGE_TOKENS


# --- parsing and the hold's bound, over many inputs ----------------------------------------

FORM_FIELDS = (
    "n", "size", "quality", "input_fidelity", "background", "output_format",
    "output_compression", "response_format", "partial_images", "stream", "user",
)  # fmt: skip
TEXT = st.one_of(
    st.sampled_from(["1", "10", "0", "11", "-1", "1.5", "auto", "high", "low", "png", "true",
                     "1024x1024", "", "９", " 2"]),
    st.text(max_size=12),
)  # fmt: skip


# A shared machine may be slow to start drawing: no health check fails a run for that.
PATIENT = settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))


@PATIENT
@given(st.dictionaries(st.sampled_from(FORM_FIELDS), TEXT, max_size=6))
def test_form_fields_are_read_or_refused_with_a_400(fields: dict[str, str]) -> None:
    parsed = ImageForm(Form([]), fields=dict(fields))
    try:
        payload = _fields_payload(parsed)
    except ApiError as exc:
        assert exc.status == 400 and exc.param in FORM_FIELDS
        return
    for name in ("n", "output_compression", "partial_images"):
        if name in fields:
            assert fields[name].isascii() and payload[name] == int(fields[name])
    assert payload["model"] == "dall-e-2"  # OpenAI's default for edits


@PATIENT
@given(
    st.integers(min_value=1, max_value=20_000),
    st.integers(min_value=1, max_value=20_000),
    st.sampled_from(["low", "high"]),
    st.sampled_from(["gpt-image-1", "gpt-image-1-mini", "gpt-image-1.5"]),
)
def test_the_hold_bounds_what_any_input_image_is_billed(
    width: int, height: int, fidelity: str, model_id: str
) -> None:
    head = PNG_SIGNATURE + b"\x00\x00\x00\x0dIHDR" + width.to_bytes(4, "big")
    head += height.to_bytes(4, "big")
    assert png_dimensions(head) == (width, height)
    billed = input_image_tokens(Upload("image", "a.png", "image/png", head), fidelity)
    model = Model(model_id, ModelKind.IMAGE, "openai")
    assert billed <= edit_image_tokens(model, 1, fidelity)
    assert edit_image_tokens(model, 3, fidelity) == 3 * edit_image_tokens(model, 1, fidelity)
    held = edit_image_tokens(model, 1, fidelity)
    assert held in (GPT_IMAGE_LOW_FIDELITY, GPT_IMAGE_HIGH_FIDELITY)
