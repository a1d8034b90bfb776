"""Cost arithmetic: exact to the nano-USD, per token class and per item."""

from decimal import Decimal

import pytest

from tollway.billing.holds import (
    CallShape,
    ImageShape,
    hold_bill,
    hold_usage,
    image_estimate_tokens,
    image_estimate_usage,
    image_hold_tokens,
)
from tollway.billing.pricing import (
    PricingError,
    UnpricedVariant,
    bill,
    per_call_unit_price,
)
from tollway.billing.shapes import variant_key
from tollway.types import (
    BillingMethod,
    Model,
    ModelKind,
    PerCallPrice,
    PerCallUnit,
    PerUsePrice,
    PriceTier,
    Usage,
    usd_to_nano,
)

GPT4O = Model(
    "gpt-4o",
    ModelKind.MULTIMODAL,
    "openai",
    per_use=PerUsePrice(usd_to_nano("5"), usd_to_nano("15"), cached_input_mtok=usd_to_nano("2.5")),
)
GPT_IMAGE = Model(
    "gpt-image-1",
    ModelKind.IMAGE,
    "openai",
    per_use=PerUsePrice(
        usd_to_nano("5"),
        usd_to_nano("40"),
        image_input_mtok=usd_to_nano("10"),
        image_output_mtok=usd_to_nano("40"),
    ),
)
CHEAP = Model("cheap", ModelKind.TEXT, "x", per_use=PerUsePrice(usd_to_nano("0.075"), 0))
FLUX = Model(
    "flux", ModelKind.IMAGE, "bfl", per_call=PerCallPrice(usd_to_nano("0.04"), PerCallUnit.IMAGE)
)
DALL_E_3_TABLE = (
    ("1024x1024/standard", 40_000_000),
    ("1792x1024/standard", 80_000_000),
    ("1024x1792/standard", 80_000_000),
    ("1024x1024/hd", 80_000_000),
    ("1792x1024/hd", 120_000_000),
    ("1024x1792/hd", 120_000_000),
)
DALL_E_3 = Model(
    "dall-e-3",
    ModelKind.IMAGE,
    "openai",
    per_call=PerCallPrice(40_000_000, PerCallUnit.IMAGE, DALL_E_3_TABLE, "1024x1024/standard"),
)
SORA_PER_SECOND = Model(
    "sora-2", ModelKind.VIDEO, "openai", per_call=PerCallPrice(100_000_000, PerCallUnit.SECOND)
)

USE, CALL = BillingMethod.PER_USE, BillingMethod.PER_CALL


@pytest.mark.parametrize(
    ("model", "usage", "expected_nano"),
    [
        (GPT4O, Usage(input_tokens=12, output_tokens=9), 195_000),  # SPEC §3's example
        (GPT4O, Usage(input_tokens=1_000_000, output_tokens=0), 5_000_000_000),
        (GPT4O, Usage(input_tokens=100, cached_input_tokens=40, output_tokens=10), 550_000),
        (GPT4O, Usage(input_tokens=0, output_tokens=0), 0),
        # 1 token at $0.075/1M is 75 nano-USD
        (CHEAP, Usage(input_tokens=1), 75),
        (
            GPT_IMAGE,
            Usage(input_tokens=20, image_input_tokens=0, image_output_tokens=4160),
            20 * 5_000 + 4160 * 40_000,
        ),
    ],
)
def test_per_use_cost(model: Model, usage: Usage, expected_nano: int) -> None:
    assert bill(model, USE, usage).total_nano == expected_nano


def test_total_rounds_once_half_up() -> None:
    half = Model("half", ModelKind.TEXT, "x", per_use=PerUsePrice(500_000, 500_000))
    # each token costs 0.5 nano: 1 token -> 1 (half-up), 3+3 tokens -> 3, not 2+2
    assert bill(half, USE, Usage(input_tokens=1)).total_nano == 1
    assert bill(half, USE, Usage(input_tokens=3, output_tokens=3)).total_nano == 3


def test_the_total_is_the_exact_sum_rounded_half_up_once() -> None:
    """Integer arithmetic on the hot path, checked against Decimal: every
    class at once, prices that leave fractions of a nano-USD, halves included."""
    import random
    from decimal import ROUND_HALF_UP

    rng = random.Random(3)
    for _ in range(2_000):
        price = PerUsePrice(
            rng.randrange(0, 90_000_000_000),
            rng.randrange(0, 90_000_000_000),
            cached_input_mtok=rng.choice([None, 0, rng.randrange(1, 10**10)]),
            image_input_mtok=rng.choice([None, 0, rng.randrange(1, 10**10)]),
            image_output_mtok=rng.choice([None, rng.randrange(1, 10**11)]),
            audio_input_mtok=rng.choice([None, rng.randrange(1, 10**11)]),
            audio_output_mtok=rng.choice([None, 500_000, rng.randrange(1, 10**11)]),
        )
        model = Model("m", ModelKind.TEXT, "x", per_use=price)
        cached = rng.randrange(0, 3_000)
        usage = Usage(
            input_tokens=cached + rng.randrange(0, 10**6),
            cached_input_tokens=cached,
            output_tokens=rng.randrange(0, 10**5),
            image_input_tokens=rng.choice([0, rng.randrange(0, 10**4)]),
            image_output_tokens=rng.choice([0, rng.randrange(0, 10**4)]),
            audio_input_tokens=rng.choice([0, 1, rng.randrange(0, 10**4)]),
            audio_output_tokens=rng.choice([0, 1, rng.randrange(0, 10**4)]),
        )
        cost = bill(model, USE, usage)
        exact = sum((line.cost_nano for line in cost.lines), Decimal(0))
        assert cost.total_nano == int(exact.to_integral_value(rounding=ROUND_HALF_UP))
        billed = {line.name: line.quantity for line in cost.lines}
        assert billed.get("input_tokens", 0) == usage.input_tokens - cached
        assert sum(billed.values()) == (
            usage.input_tokens
            + usage.output_tokens
            + usage.image_input_tokens
            + usage.image_output_tokens
            + usage.audio_input_tokens
            + usage.audio_output_tokens
        )


def test_breakdown_lines_are_exact() -> None:
    cost = bill(GPT4O, USE, Usage(input_tokens=12, output_tokens=9))
    lines = {line.name: line for line in cost.lines}
    assert lines["input_tokens"].cost_nano == Decimal(60_000)
    assert lines["output_tokens"].cost_nano == Decimal(135_000)
    assert lines["output_tokens"].unit_price_nano == 15_000_000_000


def test_reasoning_is_part_of_output() -> None:
    with_reasoning = Usage(input_tokens=10, output_tokens=50, reasoning_tokens=40)
    plain = Usage(input_tokens=10, output_tokens=50)
    assert bill(GPT4O, USE, with_reasoning) == bill(GPT4O, USE, plain)


def test_per_call_cost_is_price_times_items() -> None:
    assert bill(FLUX, CALL, Usage(items=1)).total_nano == 40_000_000
    assert bill(FLUX, CALL, Usage(items=3)).total_nano == 120_000_000


def test_missing_price_is_an_error_not_free() -> None:
    with pytest.raises(PricingError):
        bill(FLUX, USE, Usage(input_tokens=1))
    with pytest.raises(PricingError):
        bill(GPT4O, CALL, Usage())


def test_cached_greater_than_input_is_refused() -> None:
    with pytest.raises(PricingError):
        bill(GPT4O, USE, Usage(input_tokens=1, cached_input_tokens=2))


def test_hold_bounds_output_by_max_tokens_times_n() -> None:
    shape = CallShape(body_bytes=200, max_output_tokens=100, n=2)
    usage = hold_usage(shape, GPT4O)
    assert usage.output_tokens == 200
    assert usage.input_tokens == 201  # a token a byte of the body, and one
    assert hold_bill(GPT4O, USE, shape).total_nano == 201 * 5_000 + 200 * 15_000


def test_hold_without_max_tokens_uses_default_cap() -> None:
    assert hold_usage(CallShape(body_bytes=10), GPT4O).output_tokens == 4096
    assert hold_usage(CallShape(body_bytes=10), GPT4O, default_output_tokens=7).output_tokens == 7


def test_per_call_hold_is_items() -> None:
    assert hold_bill(FLUX, CALL, CallShape(body_bytes=10, n=4)).total_nano == 160_000_000


# --- per-call units and size/quality tables ---------------------------------


@pytest.mark.parametrize(
    ("size", "quality", "n", "line", "expected_nano"),
    [
        ("1024x1024", "standard", 1, "images:1024x1024/standard", 40_000_000),
        ("1792x1024", "hd", 1, "images:1792x1024/hd", 120_000_000),
        ("1024x1792", "standard", 2, "images:1024x1792/standard", 160_000_000),
        ("1024x1024", "hd", 3, "images:1024x1024/hd", 240_000_000),
        # a part not named is the default variant's
        (None, None, 1, "images:1024x1024/standard", 40_000_000),
        ("1792x1024", None, 1, "images:1792x1024/standard", 80_000_000),
        (None, "hd", 1, "images:1024x1024/hd", 80_000_000),
    ],
)
def test_per_call_table_prices_the_variant(
    size: str | None, quality: str | None, n: int, line: str, expected_nano: int
) -> None:
    cost = bill(DALL_E_3, CALL, Usage(items=n, variant=variant_key(size, quality)))
    assert cost.total_nano == expected_nano
    [only] = cost.lines
    assert (only.name, only.quantity, only.unit_price_nano) == (line, n, expected_nano // n)


@pytest.mark.parametrize(
    ("size", "quality", "param"),
    [("512x512", "standard", "size"), ("1024x1024", "high", "quality"), ("auto", None, "size")],
)
def test_a_variant_the_table_does_not_list_has_no_price(
    size: str, quality: str | None, param: str
) -> None:
    with pytest.raises(UnpricedVariant) as caught:
        bill(DALL_E_3, CALL, Usage(variant=variant_key(size, quality)))
    assert caught.value.param == param
    assert "1792x1024/hd" in str(caught.value)  # the message lists what is priced


def test_without_a_table_the_variant_is_ignored() -> None:
    assert per_call_unit_price(FLUX, "2048x2048/hd") == (None, 40_000_000)
    cost = bill(FLUX, CALL, Usage(items=3, variant="2048x2048/hd"))
    assert cost.total_nano == 120_000_000
    assert [line.name for line in cost.lines] == ["images"]


def test_per_second_price_is_price_times_seconds_times_items() -> None:
    cost = bill(SORA_PER_SECOND, CALL, Usage(items=2, seconds=8))
    assert cost.total_nano == 2 * 8 * 100_000_000
    assert [(line.name, line.quantity) for line in cost.lines] == [("seconds", 16)]
    with pytest.raises(PricingError, match="seconds"):
        bill(SORA_PER_SECOND, CALL, Usage(items=1))


def test_variant_key() -> None:
    assert variant_key(None, None) is None
    assert variant_key("1024x1024", None) == "1024x1024/"
    assert variant_key(None, "hd") == "/hd"


# --- image holds and estimates ----------------------------------------------


@pytest.mark.parametrize(
    ("size", "quality", "held"),
    [
        # the guide: about 5,000 tokens at 1024x1024 high/HD, about 8,500 at 1792x1024
        ("1024x1024", "high", 5000),
        ("1024x1024", "hd", 5000),
        ("1792x1024", "hd", 8750),
        ("1024x1792", "high", 8750),
        ("1536x1024", "high", 7500),
        ("1024x1024", "medium", 1300),
        ("1024x1024", "standard", 1300),
        ("1024x1024", "low", 350),
        ("512x512", "high", 1250),
        # auto quality holds the dearest tier; auto or no size the largest gpt-image size
        ("1024x1024", "auto", 5000),
        ("1024x1024", None, 5000),
        ("auto", "low", 525),
        (None, None, 7500),
    ],
)
def test_image_hold_tokens_grow_with_area_and_quality(
    size: str | None, quality: str | None, held: int
) -> None:
    assert image_hold_tokens(size, quality) == held


@pytest.mark.parametrize(
    ("size", "quality", "tokens"),
    [
        # OpenAI's table where it lists the size
        ("1024x1024", "low", 272),
        ("1024x1536", "low", 408),
        ("1536x1024", "low", 400),
        ("1024x1024", "medium", 1056),
        ("1024x1536", "medium", 1584),
        ("1536x1024", "medium", 1568),
        ("1024x1024", "high", 4160),
        ("1024x1536", "high", 6240),
        ("1536x1024", "high", 6208),
        ("1024x1024", "hd", 4160),
        # auto is billed as medium at 1024x1024
        ("auto", "auto", 1056),
        (None, None, 1056),
        # elsewhere the area rule
        ("1792x1024", "high", 8750),
        ("2048x2048", "medium", 5200),
    ],
)
def test_image_estimate_tokens(size: str | None, quality: str | None, tokens: int) -> None:
    assert image_estimate_tokens(size, quality) == tokens


@pytest.mark.parametrize("size", ["1024x1024", "1024x1536", "1536x1024", "auto"])
@pytest.mark.parametrize("quality", ["low", "medium", "high", "auto"])
def test_image_hold_bounds_the_estimate(size: str, quality: str) -> None:
    assert image_hold_tokens(size, quality) >= image_estimate_tokens(size, quality)


def test_unknown_image_quality_or_size_is_an_error() -> None:
    with pytest.raises(ValueError, match="quality"):
        image_hold_tokens("1024x1024", "ultra")
    with pytest.raises(ValueError, match="size"):
        image_estimate_tokens("big", "high")


def test_token_billed_image_hold() -> None:
    shape = CallShape(body_bytes=100, n=3, image=ImageShape("1024x1024", "hd"))
    usage = hold_usage(shape, GPT_IMAGE)
    assert (usage.input_tokens, usage.image_output_tokens, usage.items) == (101, 15_000, 3)
    # gpt-image-1: $5/1M text in, $40/1M image out
    assert hold_bill(GPT_IMAGE, USE, shape).total_nano == 101 * 5_000 + 15_000 * 40_000


def test_per_call_image_hold_is_the_variant_times_n() -> None:
    shape = CallShape(body_bytes=100, n=3, image=ImageShape("1792x1024", "hd"))
    assert hold_bill(DALL_E_3, CALL, shape).total_nano == 3 * 120_000_000
    assert hold_bill(FLUX, CALL, shape).total_nano == 3 * 40_000_000


def test_image_estimate_usage_bills_per_image_made() -> None:
    usage = image_estimate_usage(7, "1024x1024", "medium", 2)
    assert (usage.input_tokens, usage.image_output_tokens, usage.items) == (7, 2112, 2)
    assert bill(GPT_IMAGE, USE, usage).total_nano == 7 * 5_000 + 2112 * 40_000


# --- prompt-cache writes and long-prompt tiers ---------------------------------

SONNET = Model(
    "claude-sonnet",
    ModelKind.TEXT,
    "anthropic",
    per_use=PerUsePrice(
        usd_to_nano("3"),
        usd_to_nano("15"),
        cached_input_mtok=usd_to_nano("0.3"),
        cache_write_mtok=usd_to_nano("3.75"),
        cache_write_1h_mtok=usd_to_nano("6"),
        tiers=(
            PriceTier(
                200_000,
                PerUsePrice(
                    usd_to_nano("6"),
                    usd_to_nano("22.5"),
                    cached_input_mtok=usd_to_nano("0.6"),
                    cache_write_mtok=usd_to_nano("7.5"),
                    cache_write_1h_mtok=usd_to_nano("12"),
                ),
            ),
        ),
    ),
)


def test_cache_writes_are_billed_at_their_own_prices() -> None:
    # 1,000 prompt tokens: 100 read from cache, 200 written for 5 minutes, 300 for an hour.
    usage = Usage(
        input_tokens=1_000,
        cached_input_tokens=100,
        cache_write_tokens=200,
        cache_write_1h_tokens=300,
        output_tokens=10,
    )
    cost = bill(SONNET, USE, usage)
    lines = {line.name: (line.quantity, line.unit_price_nano) for line in cost.lines}
    assert lines == {
        "input_tokens": (400, 3_000_000_000),
        "cached_input_tokens": (100, 300_000_000),
        "cache_write_tokens": (200, 3_750_000_000),
        "cache_write_1h_tokens": (300, 6_000_000_000),
        "output_tokens": (10, 15_000_000_000),
    }
    assert cost.total_nano == 400 * 3_000 + 100 * 300 + 200 * 3_750 + 300 * 6_000 + 10 * 15_000


def test_cache_writes_without_a_price_cost_anthropics_multiples_of_input() -> None:
    usage = Usage(input_tokens=300, cache_write_tokens=100, cache_write_1h_tokens=100)
    cost = bill(GPT4O, USE, usage)  # $5 input, no write prices
    lines = {line.name: line.unit_price_nano for line in cost.lines}
    assert lines["cache_write_tokens"] == 6_250_000_000  # 1.25 x
    assert lines["cache_write_1h_tokens"] == 10_000_000_000  # 2 x


def test_more_written_than_the_prompt_is_refused() -> None:
    with pytest.raises(PricingError):
        bill(SONNET, USE, Usage(input_tokens=10, cached_input_tokens=5, cache_write_tokens=6))


@pytest.mark.parametrize(
    ("prompt", "input_price"),
    [(200_000, 3_000_000_000), (200_001, 6_000_000_000), (1_000_000, 6_000_000_000)],
)
def test_a_long_prompt_pays_its_tier_for_every_token(prompt: int, input_price: int) -> None:
    cost = bill(SONNET, USE, Usage(input_tokens=prompt, output_tokens=1))
    assert cost.lines[0].unit_price_nano == input_price
    output_price = 15_000_000_000 if input_price == 3_000_000_000 else 22_500_000_000
    assert cost.lines[1].unit_price_nano == output_price


def test_image_and_audio_prompt_tokens_count_toward_the_tier() -> None:
    usage = Usage(input_tokens=150_000, image_input_tokens=60_000)
    assert bill(SONNET, USE, usage).lines[0].unit_price_nano == 6_000_000_000


def test_a_model_that_writes_caches_holds_its_prompt_at_the_dearest_write() -> None:
    shape = CallShape(body_bytes=999, max_output_tokens=10)
    usage = hold_usage(shape, SONNET)
    assert usage.cache_write_1h_tokens == usage.input_tokens == 1_000
    assert hold_bill(SONNET, USE, shape).total_nano == 1_000 * 6_000 + 10 * 15_000
    # and the hold bounds any split of that prompt into reads, writes and input
    for split in [(1_000, 0, 0, 0), (0, 0, 1_000, 0), (0, 0, 0, 1_000), (250, 250, 250, 250)]:
        _plain, read, five, hour = split
        used = Usage(
            input_tokens=1_000,
            cached_input_tokens=read,
            cache_write_tokens=five,
            cache_write_1h_tokens=hour,
            output_tokens=10,
        )
        assert bill(SONNET, USE, used).total_nano <= hold_bill(SONNET, USE, shape).total_nano


def test_a_body_that_may_be_a_long_prompt_holds_at_the_long_tier() -> None:
    shape = CallShape(body_bytes=300_000, max_output_tokens=10)
    hold = hold_bill(GPT4O_TIERED, USE, shape)
    assert hold.lines[0].unit_price_nano == 10_000_000_000


def test_models_without_cache_write_prices_hold_plain_input() -> None:
    usage = hold_usage(CallShape(body_bytes=99), GPT4O)
    assert usage.cache_write_tokens == usage.cache_write_1h_tokens == 0


GPT4O_TIERED = Model(
    "gpt-4o-tiered",
    ModelKind.TEXT,
    "openai",
    per_use=PerUsePrice(
        usd_to_nano("5"),
        usd_to_nano("15"),
        tiers=(PriceTier(272_000, PerUsePrice(usd_to_nano("10"), usd_to_nano("15"))),),
    ),
)


# --- characters and audio minutes (speech, transcription) ---------------------------

TTS1 = Model(
    "tts-1", ModelKind.SPEECH, "openai", per_use=PerUsePrice(input_mchar=usd_to_nano("15"))
)
WHISPER = Model(
    "whisper-1",
    ModelKind.TRANSCRIPTION,
    "openai",
    per_use=PerUsePrice(audio_input_minute=usd_to_nano("0.006")),
)


@pytest.mark.parametrize(
    ("model", "usage", "expected_nano"),
    [
        (TTS1, Usage(input_characters=44), 660_000),  # 44 x $15 / 1M
        (TTS1, Usage(input_characters=1), 15_000),
        (TTS1, Usage(input_characters=4096), 61_440_000),
        (WHISPER, Usage(audio_input_ms=60_000), 6_000_000),  # one minute
        (WHISPER, Usage(audio_input_ms=3_000), 300_000),
        (WHISPER, Usage(audio_input_ms=1), 100),  # 6e6 / 60,000 nano a ms
        (WHISPER, Usage(audio_input_ms=2_500), 250_000),
    ],
)
def test_characters_and_audio_minutes_are_exact(
    model: Model, usage: Usage, expected_nano: int
) -> None:
    assert bill(model, BillingMethod.PER_USE, usage).total_nano == expected_nano


def test_a_minute_price_rounds_once_half_up_with_the_other_lines() -> None:
    # 100 nano-USD a minute: 1 ms is 1/600 nano; 300 ms is 0.5 nano (rounds up),
    # 299 ms 0.498 (down); with a token line, the sum is rounded once.
    cheap = Model("m", ModelKind.TRANSCRIPTION, "x", per_use=PerUsePrice(
        input_mtok=usd_to_nano("0.0005"), audio_input_minute=usd_to_nano("0.0000001")))  # fmt: skip
    assert bill(cheap, BillingMethod.PER_USE, Usage(audio_input_ms=300)).total_nano == 1
    assert bill(cheap, BillingMethod.PER_USE, Usage(audio_input_ms=299)).total_nano == 0
    # 1 input token = 0.5 nano, 299 ms = 0.498: 0.998 -> 1 (two rounded parts would be 1 + 0)
    both = Usage(input_tokens=1, audio_input_ms=299)
    assert bill(cheap, BillingMethod.PER_USE, both).total_nano == 1
    cost = bill(cheap, BillingMethod.PER_USE, both)
    assert [(line.name, line.per) for line in cost.lines] == [
        ("input_tokens", 1_000_000),
        ("audio_input_ms", 60_000),
    ]
    assert sum(line.cost_nano for line in cost.lines) == Decimal(1) / 2 + Decimal(299) / 600


def test_a_class_without_any_price_is_an_error_not_free() -> None:
    with pytest.raises(PricingError, match="input_tokens"):
        bill(TTS1, BillingMethod.PER_USE, Usage(input_tokens=10))
    with pytest.raises(PricingError, match="audio_input_ms"):
        bill(TTS1, BillingMethod.PER_USE, Usage(audio_input_ms=10))
    with pytest.raises(PricingError, match="output_tokens"):
        bill(WHISPER, BillingMethod.PER_USE, Usage(output_tokens=1))
    with pytest.raises(PricingError, match="negative"):
        bill(TTS1, BillingMethod.PER_USE, Usage(input_characters=-1))


def test_a_per_use_price_needs_a_class() -> None:
    with pytest.raises(ValueError, match="at least one"):
        PerUsePrice()


def test_audio_holds() -> None:
    from tollway.billing import audio
    from tollway.billing.shapes import AudioShape

    speech = AudioShape(transcribes=False, characters=44, text_bytes=44, speed_percent=100)
    assert hold_usage(CallShape(0, audio=speech), TTS1).input_characters == 44
    assert hold_bill(TTS1, BillingMethod.PER_USE, CallShape(0, audio=speech)).total_nano == 660_000
    wav = AudioShape(transcribes=True, audio_bytes=96_044, audio_ms=3_000)
    assert hold_usage(CallShape(0, audio=wav), WHISPER).audio_input_ms == 3_000
    mp3 = AudioShape(transcribes=True, audio_bytes=75_000)  # 100 s at 6 kbit/s
    assert hold_usage(CallShape(0, audio=mp3), WHISPER).audio_input_ms == 100_000
    # the estimate without usage is at 128 kbit/s, never above the hold
    assert audio.estimated_audio_ms(mp3) == 4_688
    tts = Model("t", ModelKind.SPEECH, "x", per_use=PerUsePrice(
        input_mtok=usd_to_nano("0.6"), output_mtok=usd_to_nano("12")))  # fmt: skip
    slow = AudioShape(transcribes=False, characters=100, text_bytes=100, speed_percent=25)
    held = hold_usage(CallShape(0, audio=slow), tts)
    assert (held.input_tokens, held.audio_output_tokens) == (101, 1600)
    assert audio.speech_estimate(slow, 20).audio_output_tokens <= held.audio_output_tokens
