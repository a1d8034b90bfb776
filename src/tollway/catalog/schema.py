"""Pydantic models of the catalog's data files (``catalog/data/*.yaml``).

A data file is a mapping with a ``models`` list and, for generated files, a
``generated`` block saying how to reproduce it::

    generated: {by: scripts/gen_catalog.py, genai_prices: "0.2.3", as_of: "2026-11-27"}
    models:
      - id: gpt-4o
        kind: multimodal
        provider: openai
        per_use: {input_mtok: "5", output_mtok: "15"}
        source: billing-modes-guide

Prices are decimal strings in USD (per 1M tokens for ``*_mtok``, per 1M input
characters for ``input_mchar``, per minute of input audio for
``audio_input_minute``, per call or item for ``price``). A per-use block needs
at least one of its classes, not necessarily ``input_mtok``::

    per_use: {input_mchar: "15"}          # tts-1: $15 per 1M characters read
    per_use: {audio_input_minute: "0.006"} # whisper-1: $0.006 per minute heard
 A per-call price says what it buys (``unit``: call,
image, video, second or search; by default image for image models, video for
video models, search (a search unit) for rerank models, call otherwise), and
where the published price depends on size and quality it holds the whole
table::

    per_call:
      price: "0.04"                       # the default variant's price
      unit: image
      default_variant: 1024x1024/standard # what a request naming neither gets
      variants: {1024x1024/standard: "0.04", 1792x1024/hd: "0.12", ...}

A table is exhaustive: a size or quality it does not list is refused.

A YAML number is refused, not converted: ``0.1`` in YAML is a binary float,
and a price file that silently rounds is how money drifts. Unknown fields are
refused too, so a typo (``ouput_mtok``) fails loudly instead of leaving a
price unset.
"""

from __future__ import annotations

import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from tollway.types import (
    PER_USE_CLASSES,
    BillingMethod,
    Model,
    ModelKind,
    MoneyError,
    PerCallPrice,
    PerCallUnit,
    PerUsePrice,
    PriceTier,
    usd_to_nano,
)


def _check_price(value: Any) -> str:
    """Accept only a non-negative decimal string that is exact in nano-USD."""
    if not isinstance(value, str):
        shown = f"{type(value).__name__} {value!r}"
        raise ValueError(f'a price must be a decimal string in quotes, e.g. "0.075"; got {shown}')
    try:
        nano = usd_to_nano(value)
    except MoneyError as exc:
        raise ValueError(str(exc)) from exc
    if nano < 0:
        raise ValueError(f"a price cannot be negative: {value!r}")
    return value


PriceStr = Annotated[str, BeforeValidator(_check_price)]
"""A USD amount as written in a data file, validated but kept as text."""

ModelName = Annotated[
    str, Field(strict=True, min_length=1, max_length=200, pattern=r"^[^\s\x00]+$")
]
# Free text: a description, where an entry came from (no NUL: PostgreSQL
# refuses it in text).
Text = Annotated[str, Field(max_length=4000, pattern=r"^[^\x00]*$")]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


# Every price class of a per-use block (what a tier restates, in display order).
_PRICE_FIELDS = PER_USE_CLASSES


class _TokenPrices(_Strict):
    """USD per 1M tokens of each token class, per 1M input characters and per
    minute of input audio; at least one of them."""

    input_mtok: PriceStr | None = None
    output_mtok: PriceStr | None = None
    cached_input_mtok: PriceStr | None = None
    cache_write_mtok: PriceStr | None = None
    cache_write_1h_mtok: PriceStr | None = None
    image_input_mtok: PriceStr | None = None
    image_output_mtok: PriceStr | None = None
    audio_input_mtok: PriceStr | None = None
    audio_output_mtok: PriceStr | None = None
    input_mchar: PriceStr | None = None
    audio_input_minute: PriceStr | None = None

    @model_validator(mode="after")
    def _check_some_price(self) -> _TokenPrices:
        if all(getattr(self, name) is None for name in _PRICE_FIELDS):
            raise ValueError(f"per_use needs at least one price ({', '.join(_PRICE_FIELDS)})")
        return self

    def to_price(self, tiers: tuple[PriceTier, ...] = ()) -> PerUsePrice:
        def nano(value: str | None) -> int | None:
            return None if value is None else usd_to_nano(value)

        return PerUsePrice(
            input_mtok=nano(self.input_mtok),
            output_mtok=nano(self.output_mtok),
            cached_input_mtok=nano(self.cached_input_mtok),
            cache_write_mtok=nano(self.cache_write_mtok),
            cache_write_1h_mtok=nano(self.cache_write_1h_mtok),
            image_input_mtok=nano(self.image_input_mtok),
            image_output_mtok=nano(self.image_output_mtok),
            audio_input_mtok=nano(self.audio_input_mtok),
            audio_output_mtok=nano(self.audio_output_mtok),
            input_mchar=nano(self.input_mchar),
            audio_input_minute=nano(self.audio_input_minute),
            tiers=tiers,
        )


class TierEntry(_TokenPrices):
    """The prices of prompts longer than ``above_tokens`` (all classes restated)."""

    above_tokens: Annotated[int, Field(ge=1, le=100_000_000)]

    def to_tier(self) -> PriceTier:
        return PriceTier(self.above_tokens, self.to_price())


class PerUseEntry(_TokenPrices):
    """USD per 1M tokens of each token class, and the long-prompt tiers.

    Tiers go up: each starts above the last, and none is cheaper than the
    prices below it in any class (the hold, priced at the longest prompt a
    body can be, then bounds every charge)."""

    tiers: Annotated[tuple[TierEntry, ...], Field(max_length=8, strict=False)] = ()

    @model_validator(mode="after")
    def _check_tiers(self) -> PerUseEntry:
        below: _TokenPrices = self
        last = 0
        for tier in self.tiers:
            if tier.above_tokens <= last:
                raise ValueError("tiers must be listed by above_tokens, each above the last")
            cheaper = [name for name in _CLASSES if _cheaper(tier, below, name)]
            if cheaper:
                raise ValueError(
                    f"the tier above {tier.above_tokens} tokens is cheaper in {', '.join(cheaper)}"
                )
            below, last = tier, tier.above_tokens
        return self

    def to_price(self, tiers: tuple[PriceTier, ...] = ()) -> PerUsePrice:
        return super().to_price(tiers or tuple(tier.to_tier() for tier in self.tiers))


_CLASSES = _PRICE_FIELDS


def _cheaper(tier: _TokenPrices, below: _TokenPrices, name: str) -> bool:
    return _effective(tier, name) < _effective(below, name)


def _effective(prices: _TokenPrices, name: str) -> int:
    """A class's price as billed: a class without its own is billed at the base
    input or output price (cache writes at multiples of input, which keep order);
    one with neither cannot be billed (-1: below any price, so a tier that
    drops a class its base prices is refused)."""
    value = getattr(prices, name)
    if value is None and name.endswith("_mtok"):
        value = prices.output_mtok if name.endswith("output_mtok") else prices.input_mtok
    return -1 if value is None else usd_to_nano(value)


VariantKey = Annotated[
    str, Field(strict=True, pattern=r"^([1-9][0-9]{0,4}x[1-9][0-9]{0,4}|auto)/[a-z0-9_-]+$")
]
"""A per-call price table's key: ``<size>/<quality>``, e.g. ``1792x1024/hd``."""

# The unit a per-call price has when the entry does not say.
DEFAULT_UNITS = {
    ModelKind.IMAGE: PerCallUnit.IMAGE,
    ModelKind.VIDEO: PerCallUnit.VIDEO,
    ModelKind.RERANK: PerCallUnit.SEARCH,
}


class PerCallEntry(_Strict):
    """USD per call, per generated item when n > 1 (per ``unit``), optionally
    a table by size and quality."""

    price: PriceStr
    unit: Annotated[PerCallUnit | None, Field(strict=False)] = None
    variants: Annotated[dict[VariantKey, PriceStr], Field(max_length=200)] | None = None
    default_variant: VariantKey | None = None

    @model_validator(mode="after")
    def _check_variants(self) -> PerCallEntry:
        if self.variants is None:
            if self.default_variant is not None:
                raise ValueError("default_variant is set but there is no variants table")
            return self
        if not self.variants:
            raise ValueError("variants is empty: leave it out for a single price")
        if self.default_variant is None:
            raise ValueError(
                "a variants table needs default_variant (what a request naming no size "
                "or quality gets)"
            )
        if self.default_variant not in self.variants:
            raise ValueError(f"default_variant {self.default_variant!r} is not in variants")
        default_price = self.variants[self.default_variant]
        if usd_to_nano(default_price) != usd_to_nano(self.price):
            raise ValueError(
                f"price {self.price} differs from the price of the default variant "
                f"{self.default_variant} ({default_price}): change both together"
            )
        return self

    def to_price(self, kind: ModelKind = ModelKind.TEXT) -> PerCallPrice:
        return PerCallPrice(
            price_nano=usd_to_nano(self.price),
            unit=self.unit or DEFAULT_UNITS.get(kind, PerCallUnit.CALL),
            variants=tuple((k, usd_to_nano(v)) for k, v in (self.variants or {}).items()),
            default_variant=self.default_variant,
        )


class ModelEntry(_Strict):
    """One model as written in a data file."""

    id: ModelName
    kind: Annotated[ModelKind, Field(strict=False)]
    provider: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
    aliases: Annotated[list[ModelName], Field(max_length=100)] = Field(default_factory=list)
    per_use: PerUseEntry | None = None
    per_call: PerCallEntry | None = None
    default_method: Annotated[BillingMethod | None, Field(strict=False)] = None
    description: Text = ""
    source: Annotated[Text, Field(min_length=1, max_length=200)]

    @model_validator(mode="after")
    def _check_methods(self) -> ModelEntry:
        methods = self.methods()
        if not methods:
            raise ValueError("the model has no price: set per_use, per_call or both")
        if len(methods) == 2 and self.default_method is None:
            raise ValueError(
                "the model has both per_use and per_call prices: say which one is "
                "default_method (the one hybrid tokens are billed by)"
            )
        if self.default_method is not None and self.default_method not in methods:
            raise ValueError(
                f"default_method is {self.default_method.value} but the model has no "
                f"{self.default_method.value} price"
            )
        if self.id in self.aliases:
            raise ValueError(f"alias {self.id!r} repeats the model's own id")
        if len(set(self.aliases)) != len(self.aliases):
            raise ValueError("aliases lists a name twice")
        per_second = self.per_call is not None and self.per_call.unit is PerCallUnit.SECOND
        if per_second and self.kind is not ModelKind.VIDEO:
            # Only a video call has seconds to price: elsewhere it could not be billed.
            raise ValueError("a per-second price (unit: second) is for video models only")
        per_search = self.per_call is not None and self.per_call.unit is PerCallUnit.SEARCH
        if per_search and self.kind is not ModelKind.RERANK:
            raise ValueError("a per-search price (unit: search) is for rerank models only")
        return self

    def methods(self) -> frozenset[BillingMethod]:
        found = set()
        if self.per_use is not None:
            found.add(BillingMethod.PER_USE)
        if self.per_call is not None:
            found.add(BillingMethod.PER_CALL)
        return frozenset(found)

    def to_model(self) -> Model:
        return Model(
            id=self.id,
            kind=self.kind,
            provider=self.provider,
            per_use=self.per_use.to_price() if self.per_use else None,
            per_call=self.per_call.to_price(self.kind) if self.per_call else None,
            default_method=self.default_method,
            aliases=tuple(self.aliases),
            description=self.description,
            source=self.source,
        )


class GeneratedBy(_Strict):
    """How a generated file was made, so it can be reproduced and checked."""

    by: str
    genai_prices: str
    as_of: Annotated[datetime.date, Field(strict=False)]


class CatalogFile(_Strict):
    """The top level of a data file. ``models`` is validated entry by entry by
    the loader (to name the failing model), so here it is left raw."""

    generated: GeneratedBy | None = None
    models: list[dict[str, Any]]
