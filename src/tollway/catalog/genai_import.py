"""Per-use prices from the installed ``genai-prices`` package.

The package ships a snapshot of providers, models and prices
(``genai_prices.data.providers``); this module reads that snapshot only, never
the remote update (``UpdatePrices``), so it works offline and its answer
depends on nothing but the installed version and the date asked about.

The work is split by concept: ``genai_sources`` says which providers and
models are taken and whose they are, ``genai_reading`` reduces genai-prices'
richer price model (tiers, dated and time-of-day prices, keys Tollway cannot
bill) to token prices, and ``genai_convert`` turns one model into a catalog
entry with the markup applied. This module puts them together: the import
itself, and the refresh plan for an existing catalog.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal
from importlib.metadata import version

from genai_prices import types as gp

from tollway.catalog.catalog import Catalog
from tollway.catalog.genai_convert import ImportedPrice, apply_markup, check_markup, import_model
from tollway.catalog.genai_sources import IMPORT_SOURCES, GenaiSource
from tollway.types import Model, PerUsePrice

__all__ = [
    "GENAI_SOURCE_PREFIX",
    "IMPORT_SOURCES",
    "GenaiSource",
    "ImportedPrice",
    "PriceChange",
    "apply_markup",
    "genai_prices_version",
    "import_per_use_prices",
    "is_genai_sourced",
    "plan_price_refresh",
]

GENAI_SOURCE_PREFIX = "genai-prices"
"""Catalog entries whose ``source`` starts with this are refreshed by an import;
the hand-priced entries of ``data/guide.yaml``, curated and admin-set entries
are left alone."""


@dataclass(frozen=True, slots=True)
class PriceChange:
    """A catalog model whose per-use price an import would change.

    ``model`` is the entry with the new price, ready to store as an admin
    override (``Catalog.with_overrides``).
    """

    model_id: str
    old: PerUsePrice | None
    new: PerUsePrice
    model: Model


def genai_prices_version() -> str:
    return version("genai-prices")


def is_genai_sourced(model: Model) -> bool:
    return model.source.startswith(GENAI_SOURCE_PREFIX)


def import_per_use_prices(
    markup_pct: Decimal = Decimal(0),
    *,
    as_of: datetime.date | None = None,
    providers: Sequence[gp.Provider] | None = None,
    sources: Sequence[GenaiSource] = IMPORT_SOURCES,
) -> list[ImportedPrice]:
    """Per-use prices of the models in ``sources``, from genai-prices' bundled data.

    Each price (USD per 1M tokens) is converted to integer nano-USD per 1M
    tokens with the markup applied exactly: ``price × (100 + markup_pct) / 100``,
    computed in Decimal and rounded half-up to a whole nano-USD per 1M tokens
    (e.g. $0.075 at 10% is 82,500,000). ``markup_pct`` must be a Decimal, int
    or decimal string, and not negative. Tiers, conditional and time-of-day
    prices are reduced as ``genai_reading`` says. ``as_of`` defaults to
    today (UTC); ``providers`` to the package's bundled snapshot.
    """
    markup = check_markup(markup_pct)
    day = as_of or datetime.datetime.now(tz=datetime.UTC).date()
    if providers is None:
        from genai_prices.data import providers as bundled

        providers = bundled
    by_id = {p.id: p for p in providers}
    source_label = f"{GENAI_SOURCE_PREFIX} {genai_prices_version()}"
    found: list[ImportedPrice] = []
    for source in sources:
        provider = by_id.get(source.genai_provider)
        if provider is None:
            continue
        for info in provider.models:
            imported = import_model(info, source, day, markup, source_label)
            if imported is not None:
                found.append(imported)
    return _deduplicate(found)


def plan_price_refresh(
    catalog: Catalog,
    markup_pct: Decimal = Decimal(0),
    *,
    as_of: datetime.date | None = None,
    providers: Sequence[gp.Provider] | None = None,
) -> list[PriceChange]:
    """Which genai-sourced catalog models an import would reprice, and to what.

    Only entries whose ``source`` starts with ``genai-prices`` are considered:
    the hand-priced entries of ``data/guide.yaml``, curated entries, and admin
    edits stored with another source, keep their prices. Models the import has
    but the catalog has not are not added (that is what
    ``scripts/gen_catalog.py`` is for), and catalog models the import no longer
    has keep their last price.
    """
    imported = import_per_use_prices(markup_pct, as_of=as_of, providers=providers)
    by_id = {p.model_id: p for p in imported}
    note = "" if check_markup(markup_pct) == 0 else f" +{markup_pct}% markup"
    changes = []
    for model in catalog.models:
        fresh = by_id.get(model.id)
        if fresh is None or not is_genai_sourced(model) or model.per_use == fresh.per_use:
            continue
        updated = dataclasses.replace(model, per_use=fresh.per_use, source=fresh.source + note)
        changes.append(PriceChange(model.id, model.per_use, fresh.per_use, updated))
    return changes


def _deduplicate(found: Iterable[ImportedPrice]) -> list[ImportedPrice]:
    """First source wins an id; aliases that name another model, or an earlier
    alias, are dropped (ids win over aliases)."""
    kept: list[ImportedPrice] = []
    ids: set[str] = set()
    for price in found:
        if price.model_id.casefold() not in ids:
            ids.add(price.model_id.casefold())
            kept.append(price)
    taken = set(ids)
    result = []
    for price in kept:
        aliases = tuple(a for a in price.aliases if a.casefold() not in taken)
        taken.update(a.casefold() for a in aliases)
        result.append(dataclasses.replace(price, aliases=aliases))
    return result
