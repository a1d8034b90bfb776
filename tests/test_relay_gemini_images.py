"""Gemini's image models behind OpenAI's images API: a gateway whose channel
speaks Gemini's generateContent, driven by the official openai SDK. The
charge to the nano-USD per image or by the tokens Gemini reports, n images as
n calls, what Gemini cannot do refused before anything is held, upstream
errors in OpenAI's shape, and the hold bounding what a call can cost."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import openai
import pytest

from tollway.billing.holds import hold_bill, image_hold_tokens
from tollway.billing.images import image_request, image_shape, one_image_a_call
from tollway.billing.pricing import bill
from tollway.simulator import Simulator
from tollway.types import BillingMethod, Model, Usage

from conftest import Served, customer, sdk, usage_records
from native import gateway

FOX = "a red fox in snow [sim:tokens=4]"
# The simulator's rule: 3 + (3 + words); the directive is a word.
PROMPT_TOKENS = 3 + 3 + len(FOX.split())
TEXT_TOKENS = 4
IMAGE_TOKENS = 1290  # the simulator's (and Gemini 2.5 Flash Image's) tokens an image
# The most one image call may generate: the hold's tokens for an image of no
# named size or quality, sent as maxOutputTokens.
OUTPUT_BOUND = 7500
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
async def gemini_served(
    database_url: str, catalog_models: list[Any], simulator: Simulator
) -> AsyncIterator[Served]:
    async with gateway(database_url, catalog_models, simulator, "gemini") as served:
        yield served


def spent(balance_usd: str, credit: str = "10") -> Decimal:
    return Decimal(credit) - Decimal(balance_usd)


def generate_calls(simulator: Simulator) -> int:
    return sum(
        n for path, n in simulator.stats.by_path.items() if path.endswith(":generateContent")
    )


def sent_bodies(simulator: Simulator, model: str, prompt: str) -> list[dict[str, Any]]:
    """The generateContent bodies the simulator got for ``prompt`` on ``model``."""
    path = f"/v1beta/models/{model}:generateContent"
    return [
        r["body"]
        for r in simulator.stats.recent
        if r["path"] == path and r["body"]["contents"][0]["parts"][0]["text"] == prompt
    ]


async def test_by_tokens_each_image_is_a_call_billed_as_gemini_reports(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_use")
    async with sdk(gemini_served, key) as client:
        raw = await client.images.with_raw_response.generate(
            model="nano-banana", prompt=FOX, n=2, size="1792x1024"
        )
    result = raw.parse()
    assert result.data is not None and len(result.data) == 2
    assert all(base64.b64decode(d.b64_json or "").startswith(PNG) for d in result.data)
    assert result.output_format == "png"
    assert result.usage is not None
    assert result.usage.input_tokens == 2 * PROMPT_TOKENS
    assert result.usage.output_tokens == 2 * (TEXT_TOKENS + IMAGE_TOKENS)
    details = result.usage.output_tokens_details
    assert details is not None and details.image_tokens == 2 * IMAGE_TOKENS
    # two calls, each: input at $0.30/1M, text out at $2.50/1M, the image at $30/1M
    nano = 2 * (PROMPT_TOKENS * 300 + TEXT_TOKENS * 2_500 + IMAGE_TOKENS * 30_000)
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == Decimal(nano) / 10**9
    assert spent(await gemini_served.balance_usd(mkey)) == Decimal(nano) / 10**9
    [record] = await usage_records(gemini_served, mkey)
    assert (record["model"], record["status"], record["items"]) == (
        "gemini-2.5-flash-image",
        "ok",
        2,
    )
    assert record["tokens"]["input_tokens"] == 2 * PROMPT_TOKENS
    assert record["tokens"]["output_tokens"] == 2 * TEXT_TOKENS
    assert record["tokens"]["image_output_tokens"] == 2 * IMAGE_TOKENS
    assert record["usage_source"] == "upstream" and not record["exceeded_hold"]
    assert record["unit_prices_usd"] == {
        "input_tokens": "0.3",
        "output_tokens": "2.5",
        "image_output_tokens": "30",
    }
    config = {
        "responseModalities": ["TEXT", "IMAGE"],
        "maxOutputTokens": OUTPUT_BOUND,
        "imageConfig": {"aspectRatio": "16:9"},
    }
    one_image = {
        "contents": [{"role": "user", "parts": [{"text": FOX}]}],
        "generationConfig": config,
    }
    assert sent_bodies(simulator, "gemini-2.5-flash-image", FOX)[-2:] == [one_image] * 2


async def test_per_call_each_image_is_billed_at_its_price(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_call")
    before = generate_calls(simulator)
    async with sdk(gemini_served, key) as client:
        three = await client.images.with_raw_response.generate(
            model="gemini-3.1-flash-image-preview", prompt=FOX, n=3, response_format="b64_json"
        )
        pro = await client.images.with_raw_response.generate(
            model="nano-banana-pro", prompt=FOX, size="auto"
        )
    assert generate_calls(simulator) == before + 4
    assert len(three.parse().data or []) == 3
    assert three.headers["x-tollway-billing-method"] == "per_call"
    assert three.headers["x-tollway-cost-usd"] == "0.201"  # $0.067 an image x 3
    pro_data = pro.parse().data or []
    assert len(pro_data) == 1 and base64.b64decode(pro_data[0].b64_json or "").startswith(PNG)
    assert pro.headers["x-tollway-cost-usd"] == "0.05"
    assert spent(await gemini_served.balance_usd(mkey)) == Decimal("0.251")
    pro_record, three_record = await usage_records(gemini_served, mkey)
    assert (three_record["items"], three_record["unit_prices_usd"]) == (3, {"images": "0.067"})
    assert three_record["cost_usd"] == "0.201"
    assert (pro_record["model"], pro_record["items"]) == ("gemini-3-pro-image-preview", 1)
    # the tokens Gemini reported are kept on the record, though the images are the charge
    assert three_record["tokens"]["image_output_tokens"] == 3 * IMAGE_TOKENS


async def test_what_gemini_cannot_do_is_refused_before_anything_is_held(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_use")
    before = generate_calls(simulator)
    async with sdk(gemini_served, key) as client:
        with pytest.raises(openai.BadRequestError) as url:
            await client.images.generate(model="nano-banana", prompt=FOX, response_format="url")
        with pytest.raises(openai.BadRequestError) as size:
            await client.images.generate(model="nano-banana", prompt=FOX, size="1000x100")
        # nano-banana-pro is priced per image only: a pay-per-use token cannot call it
        with pytest.raises(openai.PermissionDeniedError) as mode:
            await client.images.generate(model="nano-banana-pro", prompt=FOX)
    url_error: Any = url.value.body
    assert url_error["param"] == "response_format" and "b64_json" in url_error["message"]
    size_error: Any = size.value.body
    assert size_error["param"] == "size" and "16:9" in size_error["message"]
    assert mode.value.code == "billing_mode_mismatch"
    assert generate_calls(simulator) == before
    assert await usage_records(gemini_served, mkey) == []
    assert await gemini_served.balance_usd(mkey) == "10"


async def test_a_hold_that_does_not_fit_is_402_before_upstream(
    gemini_served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(gemini_served, credit="0.1", billing_mode="pay_per_call")
    before = generate_calls(simulator)
    async with sdk(gemini_served, key) as client:
        with pytest.raises(openai.APIStatusError) as caught:
            await client.images.generate(model="nano-banana", prompt=FOX, n=3)
    assert caught.value.status_code == 402
    assert "$0.117" in caught.value.message  # 3 images at $0.039
    assert generate_calls(simulator) == before
    assert await gemini_served.balance_usd(mkey) == "0.1"


@pytest.mark.parametrize(
    ("directive", "status", "error_class", "code"),
    [
        ("[sim:error=429]", 429, openai.RateLimitError, "rate_limit_exceeded"),
        ("[sim:error=400]", 400, openai.BadRequestError, "upstream_rejected_request"),
        ("[sim:error=500]", 502, openai.APIStatusError, "upstream_error"),
        # an answer without an image (a blocked prompt): nothing to hand over
        ("[sim:choices=0]", 400, openai.BadRequestError, "no_image"),
    ],
)
async def test_upstream_failures_are_openai_errors_and_cost_nothing(
    gemini_served: Served,
    simulator: Simulator,
    directive: str,
    status: int,
    error_class: type[openai.APIStatusError],
    code: str,
) -> None:
    mkey, key = await customer(gemini_served, billing_mode="pay_per_use")
    before = generate_calls(simulator)
    async with sdk(gemini_served, key) as client:
        with pytest.raises(error_class) as caught:
            await client.images.generate(model="nano-banana", prompt=f"{FOX} {directive}", n=2)
    assert caught.value.status_code == status
    error: Any = caught.value.body
    assert error["code"] == code and error["message"]
    assert set(error) == {"message", "type", "param", "code"}
    assert generate_calls(simulator) == before + 2
    [record] = await usage_records(gemini_served, mkey)
    assert (record["status"], record["cost_usd"]) == ("upstream_error", "0")
    assert await gemini_served.balance_usd(mkey) == "10"


async def test_an_openai_channel_gets_one_image_a_call_too(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    before = simulator.stats.by_path.get("/v1/images/generations", 0)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.generate(
            model="nano-banana", prompt=FOX, n=2, response_format="b64_json"
        )
    assert simulator.stats.by_path.get("/v1/images/generations", 0) == before + 2
    assert len(raw.parse().data or []) == 2
    assert raw.headers["x-tollway-cost-usd"] == "0.078"
    assert spent(await served.balance_usd(mkey)) == Decimal("0.078")


# --- the hold bounds what the calls can cost ---------------------------------


def gemini_image_models(models: list[Model]) -> list[Model]:
    return [m for m in models if m.kind == "image" and one_image_a_call(m) and m.per_use]


@pytest.mark.parametrize("n", [1, 4])
def test_the_hold_bounds_every_call_gemini_can_answer(catalog_models: list[Model], n: int) -> None:
    models = gemini_image_models(catalog_models)
    assert {"gemini-2.5-flash-image", "gemini-3.1-flash-image-preview"} <= {m.id for m in models}
    body_bytes = 200
    shape = image_shape(
        image_request({"prompt": "x", "n": n, "size": "256x256"}), body_bytes, models[0]
    )
    assert image_hold_tokens(None, None) == OUTPUT_BOUND  # what each call is sent as its bound
    largest_image = 2520  # Gemini's largest image (4K) in tokens
    for model in models:
        held = hold_bill(model, BillingMethod.PER_USE, shape).total_nano
        # each call: the whole prompt (a token a byte at most), then whatever
        # mix of text, thoughts and image the output bound lets it make
        for text, image in (
            (OUTPUT_BOUND - largest_image, largest_image),
            (OUTPUT_BOUND, largest_image),  # if the bound left images out
            (0, OUTPUT_BOUND),
        ):
            worst = Usage(
                input_tokens=n * body_bytes, output_tokens=n * text, image_output_tokens=n * image
            )
            assert bill(model, BillingMethod.PER_USE, worst).total_nano <= held, (model.id, n)
