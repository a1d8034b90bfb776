"""Reading one model's standard token prices and names out of genai-prices' types.

How genai-prices' richer price model is reduced to Tollway's ``PerUsePrice``
fields (still in USD per 1M tokens here):

- **Tiers** (``TieredPrices``: a higher rate once a prompt passes e.g. 200k
  tokens): kept as the price's ``tiers``, each restating every class at its
  price above that prompt size (a class without tiers keeps its base).
- **Date-conditional prices**: the price in force on the day asked about, as
  genai-prices itself resolves it.
- **Time-of-day prices** (DeepSeek's off-peak discounts): the day's peak
  price, so a call is never sold below what the upstream may charge for it.
- **Request variants** (service tier flex/priority, batch): ignored; the
  standard tier is what the gateway relays.
- **Price keys Tollway cannot bill** (per request, per audio hour, per
  character, per page, video tokens, separately priced reasoning or
  citations): no fields at all, and the model is skipped, since pricing it by
  tokens alone would be wrong.
- **Cache writes** (5-minute and 1-hour): kept as their own classes.
- **Add-on keys** (web or file searches, cached audio/image reads): ignored;
  the model's token prices still apply.
"""

from __future__ import annotations

import datetime
import re
from decimal import Decimal

from genai_prices import types as gp

# genai-prices price key -> PerUsePrice field.
_PRICE_FIELDS = {
    "input_mtok": "input_mtok",
    "output_mtok": "output_mtok",
    "cache_read_mtok": "cached_input_mtok",
    "cache_write_mtok": "cache_write_mtok",
    "cache_write_1h_mtok": "cache_write_1h_mtok",
    "input_image_mtok": "image_input_mtok",
    "output_image_mtok": "image_output_mtok",
    "input_audio_mtok": "audio_input_mtok",
    "output_audio_mtok": "audio_output_mtok",
}
_IGNORED_KEYS = frozenset(
    {
        "cache_audio_read_mtok",
        "cache_image_read_mtok",
        "web_searches_kcount",
        "storage_searches_kcount",
    }
)


def standard_prices(info: gp.ModelInfo, day: datetime.date) -> gp.ModelPrice:
    """The standard price set in force on ``day``; with time-of-day prices, the
    day's peak (the highest input, then output, base price)."""
    if isinstance(info.prices, gp.ModelPrice):
        return info.prices
    moments = [datetime.datetime.combine(day, datetime.time(0, 0), tzinfo=datetime.UTC)]
    for conditional in info.prices:
        if isinstance(conditional.constraint, gp.TimeOfDateConstraint):
            start = conditional.constraint.start_time
            if start.tzinfo is None:
                start = start.replace(tzinfo=datetime.UTC)
            moments.append(datetime.datetime.combine(day, start))
    candidates = [info.get_prices(moment) for moment in moments]
    return max(candidates, key=_peak_key)


def _peak_key(prices: gp.ModelPrice) -> tuple[Decimal, Decimal]:
    return (_base(getattr(prices, "input_mtok", None)), _base(getattr(prices, "output_mtok", None)))


def _base(price: Decimal | gp.TieredPrices | None) -> Decimal:
    if price is None:
        return Decimal(0)
    return price.base if isinstance(price, gp.TieredPrices) else price


Fields = dict[str, Decimal]


def per_use_fields(prices: gp.ModelPrice) -> tuple[Fields | None, dict[int, Fields]]:
    """genai-prices keys -> PerUsePrice fields in USD, and the fields of each
    tier by the prompt size it starts above; (None, {}) if a key is unbillable."""
    fields: Fields = {}
    tiered: dict[str, gp.TieredPrices] = {}
    for key, value in vars(prices).items():
        if key.startswith("_") or value is None or key in _IGNORED_KEYS:
            continue
        if key not in _PRICE_FIELDS:
            return None, {}
        if isinstance(value, gp.TieredPrices):
            tiered[_PRICE_FIELDS[key]] = value
        fields[_PRICE_FIELDS[key]] = _base(value)
    starts = sorted({tier.start for value in tiered.values() for tier in value.tiers})
    return fields, {start: _tier_fields(fields, tiered, start) for start in starts}


def _tier_fields(fields: Fields, tiered: dict[str, gp.TieredPrices], start: int) -> Fields:
    """Every class's price for prompts above ``start`` tokens."""
    at = dict(fields)
    for name, value in tiered.items():
        for tier in value.tiers:
            if tier.start <= start:
                at[name] = tier.price
    return at


def aliases_of(info: gp.ModelInfo) -> tuple[str, ...]:
    """The exact names genai-prices matches for this model (dated snapshots and
    the like), besides the id itself. Prefix and regex matches are not names."""
    names: list[str] = []
    pending: list[object] = [info.match]
    while pending:
        clause = pending.pop(0)
        if isinstance(clause, gp.ClauseOr):
            pending.extend(clause.or_)
        elif isinstance(clause, gp.ClauseEquals):
            names.append(clause.equals)
    seen = {info.id.casefold()}
    unique = []
    for name in names:
        if name.casefold() not in seen and not re.search(r"\s", name):
            seen.add(name.casefold())
            unique.append(name)
    return tuple(unique)
