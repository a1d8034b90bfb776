"""Read and validate the catalog's data files.

Every rule is checked at load, and the first broken one stops the load with a
``CatalogError`` naming the file, the model and the field: a catalog with a
wrong price must never reach the billing path. Rules beyond the schema of one
entry (``schema.py``) are the ones that span files: an id or alias names one
model only, across all files and case aside.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from tollway.catalog.catalog import Catalog, CatalogError, check_names
from tollway.catalog.schema import CatalogFile, GeneratedBy, ModelEntry
from tollway.types import Model

__all__ = [
    "CatalogError",
    "CatalogFileContents",
    "data_dir",
    "default_catalog_paths",
    "load_catalog",
    "load_catalog_files",
    "read_catalog_file",
]

CatalogPath = str | os.PathLike[str] | Traversable


def data_dir() -> Traversable:
    """The shipped data directory, inside the installed package."""
    return resources.files("tollway.catalog").joinpath("data")


def default_catalog_paths() -> list[Traversable]:
    """Every shipped ``*.yaml`` data file, in name order (so errors are stable)."""
    files = [f for f in data_dir().iterdir() if f.is_file() and f.name.endswith(".yaml")]
    return sorted(files, key=lambda f: f.name)


@dataclass(frozen=True, slots=True)
class CatalogFileContents:
    name: str
    generated: GeneratedBy | None
    models: tuple[Model, ...]


def load_catalog_files(paths: Iterable[CatalogPath] | None = None) -> list[Model]:
    """Load and validate data files (default: the shipped ones) into models.

    Raises ``CatalogError`` for a broken rule, naming file, model and field.
    """
    models: list[Model] = []
    origin: dict[int, str] = {}
    for path in default_catalog_paths() if paths is None else paths:
        contents = read_catalog_file(path)
        for model in contents.models:
            origin[id(model)] = contents.name
            models.append(model)
    check_names(models, where=lambda m: origin[id(m)])
    return models


def load_catalog(paths: Iterable[CatalogPath] | None = None) -> Catalog:
    """The catalog of the data files (default: the shipped ones)."""
    return Catalog(load_catalog_files(paths))


def read_catalog_file(path: CatalogPath) -> CatalogFileContents:
    """Parse and validate one data file. Names across files are not checked here."""
    traversable = path if isinstance(path, Traversable) else Path(path)
    name = traversable.name
    try:
        raw = yaml.load(traversable.read_text(encoding="utf-8"), Loader=_StrictLoader)
    except (OSError, yaml.YAMLError) as exc:
        raise CatalogError(f"{name}: cannot read the file: {exc}") from exc
    try:
        header = CatalogFile.model_validate(raw)
    except ValidationError as exc:
        raise CatalogError(f"{name}: {_explain(exc)}") from exc
    models = tuple(_read_entry(name, index, entry) for index, entry in enumerate(header.models))
    check_names(models, where=lambda _m: name)
    return CatalogFileContents(name=name, generated=header.generated, models=models)


def _read_entry(file_name: str, index: int, entry: dict[str, Any]) -> Model:
    model_id = entry.get("id")
    who = f"model {model_id!r}" if isinstance(model_id, str) else f"model #{index + 1}"
    try:
        return ModelEntry.model_validate(entry).to_model()
    except ValidationError as exc:
        raise CatalogError(f"{file_name}: {who}: {_explain(exc)}") from exc


def _explain(exc: ValidationError) -> str:
    """Pydantic's errors as one line per problem: ``per_use.input_mtok: message``."""
    parts = []
    for error in exc.errors(include_url=False):
        field = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{field}: {message}" if field else message)
    return "; ".join(parts)


class _StrictLoader(yaml.SafeLoader):
    """A SafeLoader that refuses a key given twice in one mapping: PyYAML would
    keep the last one silently, and a price typed twice is a mistake to show."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _value in node.value:
            key = self.construct_object(key_node, deep=deep)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key {key!r} is given twice", key_node.start_mark
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)
