"""Image generation through a served gateway, driven by the official SDK: the
charge to the nano-USD per image (by size and quality) or by image tokens, the
usage record, refusals, quotes and the catalog's image prices."""

from __future__ import annotations

import asyncio
from decimal import Decimal
from typing import Any

import openai
import pytest

from tollway.simulator import Simulator

from conftest import Served, customer, sdk, usage_records

IMAGES = "/v1/images/generations"
FOX = "a red fox in snow"  # the simulator counts 5 text tokens (words)


def spent(balance_usd: str, credit: str = "10") -> Decimal:
    return Decimal(credit) - Decimal(balance_usd)


def sent_upstream(simulator: Simulator) -> int:
    return simulator.stats.by_path.get(IMAGES, 0)


async def test_dall_e_3_is_priced_by_size_and_quality(served: Served, simulator: Simulator) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.generate(model="dall-e-3", prompt=FOX)
        standard = raw.parse()
        hd = await client.images.with_raw_response.generate(
            model="dall-e-3",
            prompt=FOX,
            size="1792x1024",
            quality="hd",
            response_format="b64_json",
        )
        # dall-e-3 makes one image a call: the upstream refuses n=2, nothing is charged
        with pytest.raises(openai.BadRequestError):
            await client.images.generate(model="dall-e-3", prompt=FOX, n=2)
    assert raw.headers["x-tollway-billing-method"] == "per_call"
    assert raw.headers["x-tollway-cost-usd"] == "0.04"
    assert standard.data and standard.data[0].url and standard.data[0].revised_prompt == FOX
    assert hd.headers["x-tollway-cost-usd"] == "0.12"
    hd_data = hd.parse().data
    assert hd_data and hd_data[0].b64_json
    assert spent(await served.balance_usd(mkey)) == Decimal("0.16")
    records = await usage_records(served, mkey)
    billed = [r for r in records if r["status"] == "ok"]
    assert [r["unit_prices_usd"] for r in billed] == [
        {"images:1792x1024/hd": "0.12"},
        {"images:1024x1024/standard": "0.04"},
    ]
    first = billed[-1]
    assert first["request_id"] == raw.headers["x-request-id"]
    assert (first["model"], first["endpoint"]) == ("dall-e-3", "images/generations")
    assert (first["method"], first["items"], first["cost_usd"]) == ("per_call", 1, "0.04")
    assert first["usage_source"] == "upstream"  # a per-call charge estimates nothing
    assert [r["status"] for r in records if r["status"] != "ok"] == ["upstream_error"]


async def test_dall_e_2_sizes_and_n(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        costs = []
        for size in ("256x256", "512x512", "1024x1024"):
            raw = await client.images.with_raw_response.generate(
                model="dall-e-2", prompt=FOX, size=size
            )
            costs.append(raw.headers["x-tollway-cost-usd"])
        three = await client.images.with_raw_response.generate(
            model="dall-e-2", prompt=FOX, size="512x512", n=3
        )
    assert costs == ["0.016", "0.018", "0.02"]
    assert three.headers["x-tollway-cost-usd"] == "0.054"
    assert len(three.parse().data or []) == 3
    assert spent(await served.balance_usd(mkey)) == Decimal("0.108")
    latest = (await usage_records(served, mkey))[0]
    assert latest["items"] == 3
    assert latest["unit_prices_usd"] == {"images:512x512/standard": "0.018"}


async def test_per_image_models_and_an_alias(served: Served) -> None:
    mkey, key = await customer(served, billing_mode="pay_per_call")
    async with sdk(served, key) as client:
        flux = await client.images.with_raw_response.generate(
            model="flux-1.1-pro", prompt=FOX, n=3, size="2048x2048"
        )
        banana = await client.images.with_raw_response.generate(
            model="nano-banana-pro", prompt=FOX, response_format="b64_json"
        )
    assert flux.headers["x-tollway-cost-usd"] == "0.12"  # $0.04 an image x 3, any size
    assert len(flux.parse().data or []) == 3
    assert banana.headers["x-tollway-cost-usd"] == "0.05"
    assert spent(await served.balance_usd(mkey)) == Decimal("0.17")
    alias, three = await usage_records(served, mkey)
    assert alias["model"] == "gemini-3-pro-image-preview"
    assert alias["billing_mode"] == "pay_per_call"
    assert (three["items"], three["unit_prices_usd"]) == (3, {"images": "0.04"})


@pytest.mark.parametrize("mode", ["pay_per_use_priority", "pay_per_use"])
async def test_gpt_image_is_billed_by_the_image_tokens_reported(served: Served, mode: str) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.generate(
            model="gpt-image-1", prompt=FOX, size="1024x1024", quality="medium", n=2
        )
    result = raw.parse()
    assert result.usage is not None and result.usage.output_tokens == 2 * 1056
    assert len(result.data or []) == 2 and all(d.b64_json for d in result.data or [])
    # 5 text tokens at $5/1M + 2 x 1,056 image output tokens at $40/1M
    expected_nano = 5 * 5_000 + 2 * 1056 * 40_000
    assert raw.headers["x-tollway-billing-method"] == "per_use"
    assert Decimal(raw.headers["x-tollway-cost-usd"]) == Decimal(expected_nano) / 10**9
    [record] = await usage_records(served, mkey)
    assert record["billing_mode"] == mode
    assert record["tokens"]["input_tokens"] == 5
    assert record["tokens"]["image_output_tokens"] == 2112
    assert record["tokens"]["output_tokens"] == 0
    assert record["unit_prices_usd"] == {"input_tokens": "5", "image_output_tokens": "40"}
    assert record["usage_source"] == "upstream" and record["items"] == 2
    assert spent(await served.balance_usd(mkey)) == Decimal(expected_nano) / 10**9


async def test_gpt_image_without_usage_is_billed_by_the_estimate(served: Served) -> None:
    mkey, key = await customer(served)
    async with sdk(served, key) as client:
        raw = await client.images.with_raw_response.generate(
            model="gpt-image-1", prompt=f"{FOX} [sim:no_usage]", quality="auto", n=2
        )
    assert raw.parse().usage is None
    [record] = await usage_records(served, mkey)
    assert record["usage_source"] == "estimated"
    assert record["status"] == "ok"
    # held as high quality at the largest size; billed as what the answer says it
    # made (auto -> medium, 1024x1024): OpenAI's 1,056 tokens an image
    assert record["tokens"]["image_output_tokens"] == 2 * 1056
    prompt_tokens = record["tokens"]["input_tokens"]
    assert prompt_tokens > 0
    expected_nano = prompt_tokens * 5_000 + 2 * 1056 * 40_000
    assert Decimal(record["cost_usd"]) == Decimal(expected_nano) / 10**9
    assert raw.headers["x-tollway-cost-usd"] == record["cost_usd"]


@pytest.mark.parametrize(
    ("mode", "model", "model_methods"),
    [("pay_per_call", "gpt-image-1", "per_use"), ("pay_per_use", "flux-1.1-pro", "per_call")],
)
async def test_a_mode_that_cannot_bill_the_model_is_refused_before_upstream(
    served: Served, simulator: Simulator, mode: str, model: str, model_methods: str
) -> None:
    mkey, key = await customer(served, billing_mode=mode)
    before = sent_upstream(simulator)
    async with sdk(served, key) as client:
        with pytest.raises(openai.PermissionDeniedError) as caught:
            await client.images.generate(model=model, prompt=FOX)
    error: Any = caught.value.body
    assert error["code"] == "billing_mode_mismatch"
    message = error["message"]
    assert mode in message and f"billed {model_methods} only" in message
    assert "edit the token's billing mode to pay_per_use_priority" in message
    assert sent_upstream(simulator) == before
    assert await usage_records(served, mkey) == []
    assert await served.balance_usd(mkey) == "10"


async def test_a_hold_that_does_not_fit_is_402(served: Served, simulator: Simulator) -> None:
    mkey, key = await customer(served, credit="0.1")
    before = sent_upstream(simulator)
    async with sdk(served, key) as client:
        with pytest.raises(openai.APIStatusError) as per_call:
            await client.images.generate(
                model="dall-e-3", prompt=FOX, size="1792x1024", quality="hd"
            )
        # 10 high-quality images hold 10 x 5,000 tokens at $40/1M = $2
        with pytest.raises(openai.APIStatusError) as per_use:
            await client.images.generate(model="gpt-image-1", prompt=FOX, quality="high", n=10)
    for caught in (per_call, per_use):
        assert caught.value.status_code == 402
        assert caught.value.code == "insufficient_quota"
    assert "$0.12" in per_call.value.message
    assert sent_upstream(simulator) == before
    assert await served.balance_usd(mkey) == "0.1"


BAD_BODIES: list[tuple[dict[str, Any], str]] = [
    ({"model": "dall-e-3"}, "prompt"),
    ({"model": "dall-e-3", "prompt": "  "}, "prompt"),
    ({"model": "dall-e-3", "prompt": 7}, "prompt"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "n": 0}, "n"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "n": 11}, "n"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "n": "2"}, "n"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "n": True}, "n"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "size": "big"}, "size"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "size": "1024"}, "size"),
    ({"model": "flux-1.1-pro", "prompt": FOX, "size": 1024}, "size"),
    ({"model": "gpt-image-1", "prompt": FOX, "quality": "ultra"}, "quality"),
    ({"model": "gpt-image-1", "prompt": FOX, "quality": ["hd"]}, "quality"),
    ({"model": "gpt-image-1", "prompt": FOX, "stream": True}, "stream"),
    # sizes and qualities DALL-E's price table does not list
    ({"model": "dall-e-3", "prompt": FOX, "size": "512x512"}, "size"),
    ({"model": "dall-e-3", "prompt": FOX, "size": "auto"}, "size"),
    ({"model": "dall-e-3", "prompt": FOX, "quality": "high"}, "quality"),
    ({"model": "dall-e-2", "prompt": FOX, "quality": "hd"}, "quality"),
    # not an image model
    ({"model": "gpt-4o", "prompt": FOX}, "model"),
]


async def test_bad_requests_are_400_before_anything_is_held(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    before = sent_upstream(simulator)
    async with served.client(key) as c:
        for body, param in BAD_BODIES:
            got = await c.post(IMAGES, json=body)
            assert got.status_code == 400, (body, got.text)
            error = got.json()["error"]
            assert (error["param"], error["type"]) == (param, "invalid_request_error"), body
            assert error["message"]
        got = await c.post(IMAGES, json={"model": "dall-e-3", "prompt": FOX, "size": "512x512"})
        message = got.json()["error"]["message"]
        assert "no price for size 512x512" in message and "1792x1024/hd" in message
    assert sent_upstream(simulator) == before
    assert await usage_records(served, mkey) == []
    assert await served.balance_usd(mkey) == "10"


async def test_a_client_that_leaves_is_billed_and_the_record_says_so(
    served: Served, simulator: Simulator
) -> None:
    mkey, key = await customer(served)
    before = sent_upstream(simulator)
    async with sdk(served, key) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.images.generate(
                model="flux-1.1-pro", prompt=f"{FOX} [sim:latency_ms=400]", n=2, timeout=0.1
            )
    records: list[dict[str, Any]] = []
    for _ in range(100):  # settled once the upstream has answered
        records = await usage_records(served, mkey)
        if records:
            break
        await asyncio.sleep(0.05)
    [record] = records
    assert sent_upstream(simulator) == before + 1
    assert record["status"] == "client_disconnected"
    assert "client left" in record["detail"]
    assert (record["cost_usd"], record["items"]) == ("0.08", 2)
    assert spent(await served.balance_usd(mkey)) == Decimal("0.08")


async def test_quotes_for_image_requests(served: Served) -> None:
    account = await served.new_account()
    per_call = await served.new_token(account["management_key"], billing_mode="pay_per_call")
    ask = {"prompt": "a lighthouse at dusk", "n": 3, "size": "1024x1024", "quality": "hd"}
    async with served.client(account["management_key"]) as c:
        # "3 images, 1024x1024, hd, under this token"
        from_request = await c.post(
            "/api/quote",
            json={"model": "dall-e-3", "token_id": per_call["id"], "request": ask},
        )
        from_fields = await c.post(
            "/api/quote",
            json={"model": "dall-e-3", "token_id": per_call["id"], "n": 3, "size": "1024x1024",
                  "quality": "hd"},
        )  # fmt: skip
        by_tokens = await c.post(
            "/api/quote",
            json={"model": "gpt-image-1", "billing_mode": "pay_per_use", "request": ask},
        )
        refused = await c.post(
            "/api/quote",
            json={"model": "gpt-image-1", "token_id": per_call["id"], "request": ask},
        )
        unpriced = await c.post(
            "/api/quote",
            json={"model": "dall-e-3", "billing_mode": "pay_per_call", "size": "512x512"},
        )
        bad = await c.post(
            "/api/quote",
            json={"model": "dall-e-3", "billing_mode": "pay_per_call", "request": {"prompt": ""}},
        )
    for got in (from_request, from_fields):
        quote = got.json()
        assert (quote["method"], quote["cost_usd"]) == ("per_call", "0.24"), quote
        assert quote["billing_mode"] == "pay_per_call"
        assert quote["breakdown"] == [
            {
                "name": "images:1024x1024/hd",
                "quantity": 3,
                "unit_price_usd": "0.08",
                "per": "image",
                "cost_usd": "0.24",
            }
        ]
    tokens = by_tokens.json()
    assert tokens["method"] == "per_use" and tokens["usage_source"] == "estimated"
    lines = {line["name"]: line for line in tokens["breakdown"]}
    assert lines["image_output_tokens"]["quantity"] == 3 * 5000  # the guide's ~5,000 an HD image
    assert lines["image_output_tokens"]["cost_usd"] == "0.6"
    assert Decimal(tokens["cost_usd"]) > Decimal("0.6")  # plus the prompt
    assert refused.json()["refused"]["code"] == "billing_mode_mismatch"
    assert unpriced.status_code == 400 and "512x512" in unpriced.json()["error"]["message"]
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "request.prompt"


async def test_catalog_shows_units_and_size_quality_tables(served: Served) -> None:
    account = await served.new_account()
    async with served.client(account["management_key"]) as c:
        dalle = (await c.get("/api/models/dall-e-3")).json()
        images = (await c.get("/api/models", params={"kind": "image"})).json()["data"]
        videos = (await c.get("/api/models", params={"kind": "video"})).json()["data"]
        gpt_image = (await c.get("/api/models/gpt-image-1")).json()
    assert dalle["per_call"] == {
        "price": "0.04",
        "unit": "image",
        "default_variant": "1024x1024/standard",
        "variants": {
            "1024x1024/standard": "0.04",
            "1792x1024/standard": "0.08",
            "1024x1792/standard": "0.08",
            "1024x1024/hd": "0.08",
            "1792x1024/hd": "0.12",
            "1024x1792/hd": "0.12",
        },
    }
    assert all(m["per_call"]["unit"] == "image" for m in images if m["per_call"])
    assert all(m["per_call"]["unit"] in ("video", "second") for m in videos if m["per_call"])
    assert videos and all(m["image_estimates"] is None for m in videos)
    rows = {(r["size"], r["quality"]): r for r in gpt_image["image_estimates"]}
    assert rows["1024x1024", "high"] == {
        "size": "1024x1024",
        "quality": "high",
        "output_tokens": 4160,
        "cost_usd": "0.1664",
        "hold_output_tokens": 5000,
        "hold_usd": "0.2",
    }
    assert rows["1792x1024", "high"]["hold_output_tokens"] == 8750


async def test_a_price_edit_keeps_the_size_quality_table(served: Served) -> None:
    got = await served.admin.patch(
        "/api/models/dall-e-3", json={"per_call": {"price": "0.04"}, "description": "edited"}
    )
    assert got.status_code == 200, got.text
    assert got.json()["per_call"]["variants"]["1792x1024/hd"] == "0.12"
    got = await served.admin.patch("/api/models/dall-e-3", json={"per_call": {"price": "0.05"}})
    assert got.status_code == 400
    assert "default variant" in got.json()["error"]["message"]
    got = await served.admin.patch(
        "/api/models/dall-e-3", json={"per_call": {"price": "0.05", "variants": None}}
    )
    assert got.status_code == 200, got.text
    assert got.json()["per_call"] == {"price": "0.05", "unit": "image"}
