"""The model catalog: which models Tollway sells, and at what prices.

Prices are data (``catalog/data/*.yaml``), validated at load by ``loader``;
``Catalog`` answers look-ups by id or alias; ``genai_import`` refreshes the
per-use prices that come from the ``genai-prices`` package.

    catalog = load_catalog()                 # the shipped data files
    model = catalog.resolve("nano-banana")   # -> gemini-2.5-flash-image
"""

from tollway.catalog.catalog import Catalog, CatalogError, UnknownModel
from tollway.catalog.loader import default_catalog_paths, load_catalog, load_catalog_files

# genai_import is not imported here: the genai-prices package (and the HTTP
# client it brings) is needed only to refresh prices, never by a server.
__all__ = [
    "Catalog",
    "CatalogError",
    "UnknownModel",
    "default_catalog_paths",
    "load_catalog",
    "load_catalog_files",
]
