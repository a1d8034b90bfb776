"""The billing seam: what a call costs, as a bill with its lines.

``bill`` is the one pure function that turns a model's prices, the billing
method and a usage into money. Everything that prices calls it: the hold
(the bill of the most a request's shape can use, ``billing/holds.py``), the
settlement of a call and of a video job, ``/api/quote``, and the advisor's
replay of past usage.

Per-use lines are exact (tokens x nano-USD per 1M tokens / 1M, kept as a
Decimal; characters x nano-USD per 1M characters / 1M; milliseconds of audio
x nano-USD per minute / 60,000); the call's total is rounded half-up to a
whole nano-USD once, so a cost never drifts by summing rounded parts.

A per-use price may have tiers: a call whose prompt passes a tier's size
pays that tier's prices for all its tokens (``tier_of``).

A price group's multiplier (``multiplier``, exact) scales the whole call
before that one rounding; the lines keep the catalog's unit prices.

Per-call lines are price x items (x seconds for per-second prices). A model
whose per-call price depends on size and quality holds the whole table; a
call is priced at its variant's entry, and the line's name says which one
(``images:1792x1024/hd``), so the usage record keeps it. A variant the table
does not list is an ``UnpricedVariant``, never a default price.
"""

from __future__ import annotations

import math
from fractions import Fraction

from tollway.types import (
    CHARS_PER_MCHAR,
    MS_PER_MINUTE,
    TOKENS_PER_MTOK,
    BillingMethod,
    Cost,
    CostLine,
    Model,
    PerCallPrice,
    PerCallUnit,
    PerUsePrice,
    Usage,
)

# The name of a per-call line, by what the price buys.
UNIT_LINES = {
    PerCallUnit.CALL: "calls",
    PerCallUnit.IMAGE: "images",
    PerCallUnit.VIDEO: "videos",
    PerCallUnit.SECOND: "seconds",
    PerCallUnit.SEARCH: "searches",
}
# Cache writes a model's prices leave out are billed as Anthropic bills them:
# 5-minute writes at 1.25 x the input price, 1-hour writes at 2 x (as fractions).
CACHE_WRITE_5M = (5, 4)
CACHE_WRITE_1H = (2, 1)


class PricingError(ValueError):
    """The model has no price for the method asked, or the usage is invalid."""


class UnpricedVariant(PricingError):
    """A size/quality that the model's per-call price table does not list."""

    def __init__(self, model_id: str, variant: str, priced: tuple[str, ...]) -> None:
        self.variant = variant
        self.priced = priced
        size, _, quality = variant.partition("/")
        sizes = dict.fromkeys(key.partition("/")[0] for key in priced)
        qualities = {key.partition("/")[2] for key in priced}
        self.param = "size" if size not in sizes else "quality"
        if len(qualities) == 1 and quality in qualities:  # one quality: only sizes matter
            message = (
                f"Model '{model_id}' has no price for size {size}. "
                f"It is priced for: {', '.join(sizes)}."
            )
        else:
            message = (
                f"Model '{model_id}' has no price for size {size} at quality {quality}. "
                f"It is priced for (size/quality): {', '.join(priced)}."
            )
        super().__init__(message)


def per_call_unit_price(model: Model, variant: str | None) -> tuple[str | None, int]:
    """The table entry a call's variant resolves to, and its price per unit.

    Without a table: (None, the price). With one, the parts the call left out
    are the default variant's, and the result must be listed in the table.
    """
    price = model.per_call
    if price is None:
        raise PricingError(f"model '{model.id}' has no per-call price")
    if not price.variants or price.default_variant is None:
        return None, price.price_nano
    if variant is None:
        return price.default_variant, price.price_nano
    key = _fill_variant(price, variant)
    for name, nano in price.variants:
        if name == key:
            return key, nano
    raise UnpricedVariant(model.id, key, tuple(name for name, _ in price.variants))


def _fill_variant(price: PerCallPrice, variant: str) -> str:
    default_size, _, default_quality = (price.default_variant or "").partition("/")
    size, _, quality = variant.partition("/")
    return f"{size or default_size}/{quality or default_quality}"


ONE = Fraction(1)


def bill(model: Model, method: BillingMethod, usage: Usage, multiplier: Fraction = ONE) -> Cost:
    """What ``usage`` costs on ``model`` by ``method`` at a group's
    ``multiplier``: the total, rounded once, and its lines. A PricingError
    when the model has no price for it."""
    if multiplier is not ONE and multiplier < 0:
        raise PricingError("a price multiplier cannot be negative")
    if method is BillingMethod.PER_CALL:
        return _per_call_cost(model, usage, multiplier)
    return _per_use_cost(model, usage, multiplier)


def _per_call_cost(model: Model, usage: Usage, multiplier: Fraction) -> Cost:
    if model.per_call is None:
        raise PricingError(f"model '{model.id}' has no per-call price")
    if usage.items < 0 or usage.seconds < 0:
        raise PricingError("items and seconds cannot be negative")
    unit = model.per_call.unit
    key, unit_nano = per_call_unit_price(model, usage.variant)
    quantity = usage.items
    if unit is PerCallUnit.SECOND:
        if usage.items and not usage.seconds:
            raise PricingError(
                f"model '{model.id}' is priced per second of video: the call's seconds are needed"
            )
        quantity = usage.items * usage.seconds
    name = UNIT_LINES[unit] + (f":{key}" if key else "")
    line = CostLine(name, quantity, unit_nano, 1)
    total = _scaled(quantity * unit_nano, 1, multiplier)
    return Cost(BillingMethod.PER_CALL, total, (line,))


def per_use_lines(price: PerUsePrice, usage: Usage) -> list[CostLine]:
    """One line per class used, at the prices of the call's prompt tier.
    A token class without its own price is billed at the base input (or
    output) price, never for free; cache writes without one at Anthropic's
    multiples of the input price. A class used that has no price at all (a
    per-character model reporting tokens) is a PricingError."""
    if price.tiers:
        price = tier_of(price, usage)
    cached, writes, writes_1h = (
        usage.cached_input_tokens,
        usage.cache_write_tokens,
        usage.cache_write_1h_tokens,
    )
    uncached = usage.input_tokens - cached - writes - writes_1h
    if min(uncached, cached, writes, writes_1h, usage.output_tokens) < 0:
        raise PricingError("token counts cannot be negative (cached or written > input?)")
    lines = []
    if uncached:
        lines.append(
            CostLine(
                "input_tokens", uncached, _priced(price.input_mtok, "input_tokens"), TOKENS_PER_MTOK
            )
        )
    if cached or writes or writes_1h:
        lines.extend(_cache_lines(price, cached, writes, writes_1h))
    if usage.output_tokens:
        output = _priced(price.output_mtok, "output_tokens")
        lines.append(CostLine("output_tokens", usage.output_tokens, output, TOKENS_PER_MTOK))
    if (
        usage.image_input_tokens
        or usage.image_output_tokens
        or usage.audio_input_tokens
        or usage.audio_output_tokens
    ):  # the common call has none: no price lookups for them
        lines.extend(_media_lines(price, usage))
    if usage.input_characters or usage.audio_input_ms:
        lines.extend(_unit_lines(price, usage))
    return lines


def _unit_lines(price: PerUsePrice, usage: Usage) -> list[CostLine]:
    """Characters read (per 1M characters) and audio heard (per minute, counted in ms)."""
    lines = []
    for name, quantity, unit, per in (
        ("input_characters", usage.input_characters, price.input_mchar, CHARS_PER_MCHAR),
        ("audio_input_ms", usage.audio_input_ms, price.audio_input_minute, MS_PER_MINUTE),
    ):
        if quantity < 0:
            raise PricingError(f"{name} cannot be negative")
        if quantity:
            lines.append(CostLine(name, quantity, _priced(unit, name), per))
    return lines


def _priced(unit: int | None, name: str) -> int:
    if unit is None:
        raise PricingError(f"the model has no price for {name}")
    return unit


def _cache_lines(price: PerUsePrice, cached: int, writes: int, writes_1h: int) -> list[CostLine]:
    write_5m, write_1h = cache_write_prices(price)
    return _lines(
        ("cached_input_tokens", cached, _or(price.cached_input_mtok, price.input_mtok)),
        ("cache_write_tokens", writes, write_5m),
        ("cache_write_1h_tokens", writes_1h, write_1h),
    )


def _media_lines(price: PerUsePrice, usage: Usage) -> list[CostLine]:
    base_in, base_out = price.input_mtok, price.output_mtok
    return _lines(
        ("image_input_tokens", usage.image_input_tokens, _or(price.image_input_mtok, base_in)),
        ("image_output_tokens", usage.image_output_tokens, _or(price.image_output_mtok, base_out)),
        ("audio_input_tokens", usage.audio_input_tokens, _or(price.audio_input_mtok, base_in)),
        ("audio_output_tokens", usage.audio_output_tokens, _or(price.audio_output_mtok, base_out)),
    )


def _lines(*parts: tuple[str, int, int | None]) -> list[CostLine]:
    lines = []
    for name, quantity, unit in parts:
        if quantity < 0:
            raise PricingError(f"{name} cannot be negative")
        if quantity:
            lines.append(CostLine(name, quantity, _priced(unit, name), TOKENS_PER_MTOK))
    return lines


def prompt_tokens_of(usage: Usage) -> int:
    """A call's whole prompt, every input class: what picks its price tier."""
    return usage.input_tokens + usage.image_input_tokens + usage.audio_input_tokens


def tier_of(price: PerUsePrice, usage: Usage) -> PerUsePrice:
    """The prices a call pays: the highest tier its prompt is longer than, else the base."""
    prompt, chosen = prompt_tokens_of(usage), price
    for tier in price.tiers:
        if prompt > tier.above_tokens:
            chosen = tier.price
    return chosen


def cache_write_prices(price: PerUsePrice) -> tuple[int, int]:
    """Per 1M tokens written to a 5-minute and to a 1-hour cache."""
    five = price.cache_write_mtok
    hour = price.cache_write_1h_mtok
    if five is None:
        base = _priced(price.input_mtok, "cache_write_tokens")
        five = _divide_half_up(base * CACHE_WRITE_5M[0], CACHE_WRITE_5M[1])
    if hour is None:
        base = _priced(price.input_mtok, "cache_write_1h_tokens")
        hour = _divide_half_up(base * CACHE_WRITE_1H[0], CACHE_WRITE_1H[1])
    return five, hour


def _per_use_cost(model: Model, usage: Usage, multiplier: Fraction) -> Cost:
    if model.per_use is None:
        raise PricingError(f"model '{model.id}' has no per-use price")
    lines = per_use_lines(model.per_use, usage)
    denominator = TOKENS_PER_MTOK
    if any(line.per != TOKENS_PER_MTOK for line in lines):  # minutes: a common denominator
        denominator = math.lcm(*(line.per for line in lines))
    numerator = sum(
        line.quantity * line.unit_price_nano * (denominator // line.per) for line in lines
    )
    total = _scaled(numerator, denominator, multiplier)
    return Cost(BillingMethod.PER_USE, total, tuple(lines))


def _scaled(numerator: int, denominator: int, multiplier: Fraction) -> int:
    """numerator / denominator x multiplier, rounded half up once."""
    if multiplier is ONE or multiplier == 1:  # the usual case: no group price
        return _divide_half_up(numerator, denominator)
    return _divide_half_up(numerator * multiplier.numerator, denominator * multiplier.denominator)


def _divide_half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half up (away from zero at .5), in
    integers (exactly what Decimal's ROUND_HALF_UP gives, without Decimal)."""
    quotient, rest = divmod(abs(numerator), denominator)
    if 2 * rest >= denominator:
        quotient += 1
    return quotient if numerator >= 0 else -quotient


def _or(value: int | None, default: int | None) -> int | None:
    return default if value is None else value
