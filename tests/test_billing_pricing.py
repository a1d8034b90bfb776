"""Cost arithmetic: exact to the nano-USD, per token class and per item."""

from decimal import Decimal

import pytest

from tollway.billing.holds import CallShape, hold_nano, hold_usage
from tollway.billing.pricing import PricingError, price_call
from tollway.types import (
    BillingMethod,
    Model,
    ModelKind,
    PerCallPrice,
    PerUsePrice,
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
FLUX = Model("flux", ModelKind.IMAGE, "bfl", per_call=PerCallPrice(usd_to_nano("0.04")))

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
    assert price_call(model, USE, usage).total_nano == expected_nano


def test_total_rounds_once_half_up() -> None:
    half = Model("half", ModelKind.TEXT, "x", per_use=PerUsePrice(500_000, 500_000))
    # each token costs 0.5 nano: 1 token -> 1 (half-up), 3+3 tokens -> 3, not 2+2
    assert price_call(half, USE, Usage(input_tokens=1)).total_nano == 1
    assert price_call(half, USE, Usage(input_tokens=3, output_tokens=3)).total_nano == 3


def test_breakdown_lines_are_exact() -> None:
    cost = price_call(GPT4O, USE, Usage(input_tokens=12, output_tokens=9))
    lines = {line.name: line for line in cost.lines}
    assert lines["input_tokens"].cost_nano == Decimal(60_000)
    assert lines["output_tokens"].cost_nano == Decimal(135_000)
    assert lines["output_tokens"].unit_price_nano == 15_000_000_000


def test_reasoning_is_part_of_output() -> None:
    with_reasoning = Usage(input_tokens=10, output_tokens=50, reasoning_tokens=40)
    plain = Usage(input_tokens=10, output_tokens=50)
    assert price_call(GPT4O, USE, with_reasoning) == price_call(GPT4O, USE, plain)


def test_per_call_cost_is_price_times_items() -> None:
    assert price_call(FLUX, CALL, Usage(items=1)).total_nano == 40_000_000
    assert price_call(FLUX, CALL, Usage(items=3)).total_nano == 120_000_000


def test_missing_price_is_an_error_not_free() -> None:
    with pytest.raises(PricingError):
        price_call(FLUX, USE, Usage(input_tokens=1))
    with pytest.raises(PricingError):
        price_call(GPT4O, CALL, Usage())


def test_cached_greater_than_input_is_refused() -> None:
    with pytest.raises(PricingError):
        price_call(GPT4O, USE, Usage(input_tokens=1, cached_input_tokens=2))


def test_hold_bounds_output_by_max_tokens_times_n() -> None:
    shape = CallShape(body_bytes=200, max_output_tokens=100, n=2)
    usage = hold_usage(shape)
    assert usage.output_tokens == 200
    assert usage.input_tokens == 101
    assert hold_nano(GPT4O, USE, shape) == 101 * 5_000 + 200 * 15_000


def test_hold_without_max_tokens_uses_default_cap() -> None:
    assert hold_usage(CallShape(body_bytes=10)).output_tokens == 4096
    assert hold_usage(CallShape(body_bytes=10), default_output_tokens=7).output_tokens == 7


def test_per_call_hold_is_items() -> None:
    assert hold_nano(FLUX, CALL, CallShape(body_bytes=10, n=4)) == 160_000_000
