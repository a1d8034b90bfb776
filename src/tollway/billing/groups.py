"""Prices as a price group's tokens see them: the catalog's x the group's
multiplier (SPEC §8), exact, pure.

A call's bill applies the multiplier itself (``pricing.bill``: one half-up
rounding for the whole call). What is *shown* — a model's unit prices for a
token, a quote's lines — is scaled here: a unit price rounded half up once to
a whole nano-USD (``scaled_nano``, ``scaled_model``), a line's cost kept exact
(``exact_usd``), so a quote's lines add up to its total before that one
rounding.
"""

from __future__ import annotations

import dataclasses
from fractions import Fraction

from tollway.billing.pricing import ONE
from tollway.types import NANO_PER_USD, Model, PerCallPrice, PerUsePrice, PriceTier

# A multiplier has at most 9 decimals, so an exact amount times it is a
# decimal of at most this many more places than the amount: plenty.
MAX_EXACT_PLACES = 60


def scaled_nano(nano: int, multiplier: Fraction) -> int:
    """nano x multiplier, rounded half up (away from zero at .5) once."""
    if multiplier == ONE:
        return nano
    product = nano * multiplier
    quotient, rest = divmod(abs(product.numerator), product.denominator)
    if 2 * rest >= product.denominator:
        quotient += 1
    return quotient if product >= 0 else -quotient


def _optional(nano: int | None, multiplier: Fraction) -> int | None:
    return None if nano is None else scaled_nano(nano, multiplier)


def scaled_per_use(price: PerUsePrice, multiplier: Fraction) -> PerUsePrice:
    changes: dict[str, object] = {
        f.name: _optional(getattr(price, f.name), multiplier)
        for f in dataclasses.fields(price)
        if f.name != "tiers"
    }
    changes["tiers"] = tuple(
        PriceTier(t.above_tokens, scaled_per_use(t.price, multiplier)) for t in price.tiers
    )
    return dataclasses.replace(price, **changes)  # type: ignore[arg-type]


def scaled_per_call(price: PerCallPrice, multiplier: Fraction) -> PerCallPrice:
    return dataclasses.replace(
        price,
        price_nano=scaled_nano(price.price_nano, multiplier),
        variants=tuple((key, scaled_nano(nano, multiplier)) for key, nano in price.variants),
    )


def scaled_model(model: Model, multiplier: Fraction) -> Model:
    """``model`` with every price x ``multiplier`` (each rounded once): the
    prices a token of the group sees. Bill calls with ``bill(model, ...,
    multiplier)`` instead, which rounds the whole call once."""
    if multiplier == ONE:
        return model
    return dataclasses.replace(
        model,
        per_use=None if model.per_use is None else scaled_per_use(model.per_use, multiplier),
        per_call=None if model.per_call is None else scaled_per_call(model.per_call, multiplier),
    )


def exact_usd(nano: Fraction) -> str:
    """An exact amount of nano-USD as a plain USD decimal string, however fine
    ("0.0000000375"). A multiplier is a decimal, so the amounts it makes are
    too; one that is not (never made here) is rounded at MAX_EXACT_PLACES."""
    usd = nano / NANO_PER_USD
    places = 0
    while (usd * 10**places).denominator != 1 and places < MAX_EXACT_PLACES:
        places += 1
    digits = scaled_nano(usd.numerator * 10**places, Fraction(1, usd.denominator))
    sign = "-" if digits < 0 else ""
    text = f"{abs(digits):0{places + 1}d}"
    whole, frac = text[: len(text) - places], text[len(text) - places :].rstrip("0")
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"
