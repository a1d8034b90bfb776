"""What a call costs: a pure function of the model's prices and the usage.

Per-use lines are exact (tokens x nano-USD per 1M tokens / 1M, kept as a
Decimal); the call's total is rounded half-up to a whole nano-USD once, so a
cost never drifts by summing rounded parts.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from tollway.types import (
    TOKENS_PER_MTOK,
    BillingMethod,
    Cost,
    CostLine,
    Model,
    PerUsePrice,
    Usage,
)


class PricingError(ValueError):
    """The model has no price for the method asked, or the usage is invalid."""


def price_call(model: Model, method: BillingMethod, usage: Usage) -> Cost:
    if method is BillingMethod.PER_CALL:
        return _per_call_cost(model, usage)
    return _per_use_cost(model, usage)


def _per_call_cost(model: Model, usage: Usage) -> Cost:
    if model.per_call is None:
        raise PricingError(f"model '{model.id}' has no per-call price")
    if usage.items < 0:
        raise PricingError("items cannot be negative")
    unit = model.per_call.price_nano
    line = CostLine("calls", usage.items, unit, 1, Decimal(usage.items * unit))
    return Cost(BillingMethod.PER_CALL, usage.items * unit, (line,))


def per_use_lines(price: PerUsePrice, usage: Usage) -> list[CostLine]:
    """One line per token class used. A class without its own price is billed at
    the base input (or output) price, never for free."""
    uncached = usage.input_tokens - usage.cached_input_tokens
    if min(uncached, usage.cached_input_tokens, usage.output_tokens) < 0:
        raise PricingError("token counts cannot be negative (cached > input?)")
    classes = (
        ("input_tokens", uncached, price.input_mtok),
        (
            "cached_input_tokens",
            usage.cached_input_tokens,
            _or(price.cached_input_mtok, price.input_mtok),
        ),
        ("output_tokens", usage.output_tokens, price.output_mtok),
        (
            "image_input_tokens",
            usage.image_input_tokens,
            _or(price.image_input_mtok, price.input_mtok),
        ),
        (
            "image_output_tokens",
            usage.image_output_tokens,
            _or(price.image_output_mtok, price.output_mtok),
        ),
        (
            "audio_input_tokens",
            usage.audio_input_tokens,
            _or(price.audio_input_mtok, price.input_mtok),
        ),
        (
            "audio_output_tokens",
            usage.audio_output_tokens,
            _or(price.audio_output_mtok, price.output_mtok),
        ),
    )
    lines = []
    for name, quantity, unit in classes:
        if quantity < 0:
            raise PricingError(f"{name} cannot be negative")
        if quantity:
            exact = Decimal(quantity * unit) / TOKENS_PER_MTOK
            lines.append(CostLine(name, quantity, unit, TOKENS_PER_MTOK, exact))
    return lines


def _per_use_cost(model: Model, usage: Usage) -> Cost:
    if model.per_use is None:
        raise PricingError(f"model '{model.id}' has no per-use price")
    lines = per_use_lines(model.per_use, usage)
    numerator = sum(line.quantity * line.unit_price_nano for line in lines)
    total = round_nano(Decimal(numerator) / TOKENS_PER_MTOK)
    return Cost(BillingMethod.PER_USE, total, tuple(lines))


def round_nano(amount: Decimal) -> int:
    return int(amount.to_integral_value(rounding=ROUND_HALF_UP))


def _or(value: int | None, default: int) -> int:
    return default if value is None else value
