"""The model catalog: which models Tollway sells, and at what prices.

Prices are data (``catalog/data/*.yaml``), validated at load by ``loader``;
``Catalog`` answers look-ups by id or alias; ``genai_import`` refreshes the
per-use prices that come from the ``genai-prices`` package.

    catalog = load_catalog()                 # the shipped data files
    model = catalog.resolve("nano-banana")   # -> gemini-2.5-flash-image
"""

from tollway.catalog.catalog import Catalog, CatalogError, UnknownModel
from tollway.catalog.genai_import import (
    ImportedPrice,
    PriceChange,
    import_per_use_prices,
    plan_price_refresh,
)
from tollway.catalog.loader import default_catalog_paths, load_catalog, load_catalog_files

__all__ = [
    "Catalog",
    "CatalogError",
    "ImportedPrice",
    "PriceChange",
    "UnknownModel",
    "default_catalog_paths",
    "import_per_use_prices",
    "load_catalog",
    "load_catalog_files",
    "plan_price_refresh",
]
