"""The in-memory model catalog: every model Tollway sells, looked up by name.

A ``Catalog`` is immutable and built once (from the data files, then with the
admin's edits from the database laid over it); a change makes a new one. The
hot path is ``get``: two dict look-ups, no scanning.

Exceptions::

    CatalogError(ValueError)   models that cannot form a catalog (bad data file,
                               clashing names); names the file and the model
    UnknownModel(LookupError)  a name no model answers to; suggests close names
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Iterator, Mapping
from types import MappingProxyType

from tollway.types import Model


class CatalogError(ValueError):
    """Models that cannot form a catalog. The message names the file and model."""


class UnknownModel(LookupError):
    """No model answers to ``name``. ``suggestions`` are the closest names."""

    def __init__(self, name: str, suggestions: Iterable[str] = ()) -> None:
        self.name = name
        self.suggestions = tuple(suggestions)
        message = f"unknown model {name!r}"
        if self.suggestions:
            message += "; did you mean " + ", ".join(repr(s) for s in self.suggestions) + "?"
        super().__init__(message)

    def __str__(self) -> str:
        return str(self.args[0])


def _fold(name: str) -> str:
    return name.casefold()


def check_names(models: Iterable[Model], where: Callable[[Model], str] | None = None) -> None:
    """Refuse a set of models where one name (id or alias) could mean two models.

    Names are compared case-insensitively, because ``Catalog.get`` falls back to
    a case-insensitive match: two names differing only in case would make that
    fallback ambiguous.
    """
    claimed: dict[str, tuple[Model, str]] = {}  # folded name -> (model, name as written)
    for model in models:
        for name in (model.id, *model.aliases):
            owner = claimed.get(_fold(name))
            if owner is None:
                claimed[_fold(name)] = (model, name)
                continue
            raise CatalogError(_clash_message(model, name, owner, where))


def _clash_message(
    model: Model, name: str, owner: tuple[Model, str], where: Callable[[Model], str] | None
) -> str:
    other, other_name = owner

    def at(m: Model) -> str:
        return f" ({where(m)})" if where else ""

    what = "id" if name == model.id else "alias"
    other_what = "id" if other_name == other.id else "alias"
    if other is model:
        return f"model {model.id!r}{at(model)}: the name {name!r} is given twice (case aside)"
    if what == other_what == "id" and name == other_name:
        return f"duplicate model id {name!r}{at(model)}; already defined{at(other)}"
    return (
        f"model {model.id!r}{at(model)}: its {what} {name!r} clashes with the "
        f"{other_what} {other_name!r} of model {other.id!r}{at(other)}"
    )


class Catalog:
    """Immutable set of models, resolved by id or alias.

    ``get`` tries the exact name first (the common case, one dict hit), then a
    case-insensitive match, so ``GPT-4o`` finds ``gpt-4o``. Names differing only
    in case are refused at construction, so the fallback is never ambiguous.
    """

    __slots__ = ("_by_folded", "_by_id", "_by_name", "_models")
    _models: tuple[Model, ...]
    _by_id: Mapping[str, Model]
    _by_name: Mapping[str, Model]
    _by_folded: Mapping[str, Model]

    def __init__(self, models: Iterable[Model] = ()) -> None:
        ordered = tuple(sorted(models, key=lambda m: m.id))
        check_names(ordered)
        by_name: dict[str, Model] = {}
        for model in ordered:
            for name in (model.id, *model.aliases):
                by_name[name] = model
        # object.__setattr__: __setattr__ is closed, so a catalog shared by
        # concurrent requests cannot be changed under them.
        init = object.__setattr__
        init(self, "_models", ordered)
        init(self, "_by_id", MappingProxyType({m.id: m for m in ordered}))
        init(self, "_by_name", MappingProxyType(by_name))
        init(self, "_by_folded", MappingProxyType({_fold(n): m for n, m in by_name.items()}))

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("a Catalog is immutable: with_overrides() makes a new one")

    @property
    def models(self) -> tuple[Model, ...]:
        """Every model, ordered by id."""
        return self._models

    def __len__(self) -> int:
        return len(self._models)

    def __iter__(self) -> Iterator[Model]:
        return iter(self._models)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __repr__(self) -> str:
        return f"<Catalog of {len(self._models)} models>"

    def get(self, name: str) -> Model | None:
        """The model ``name`` (an id or alias) refers to, or None."""
        model = self._by_name.get(name)
        if model is None:
            model = self._by_folded.get(_fold(name))
        return model

    def resolve(self, name: str) -> Model:
        """Like ``get``, but an unknown name raises ``UnknownModel`` with suggestions."""
        model = self.get(name)
        if model is None:
            raise UnknownModel(name, self.suggest(name))
        return model

    def suggest(self, name: str, limit: int = 3) -> list[str]:
        """Names (ids or aliases) closest to ``name``, best first."""
        folded_names = {_fold(n): n for n in self._by_name}
        close = difflib.get_close_matches(_fold(name), folded_names, n=limit, cutoff=0.6)
        return [folded_names[c] for c in close]

    def with_overrides(self, models: Iterable[Model]) -> Catalog:
        """A new catalog where ``models`` replace the entries with the same id,
        or are added. Used to lay the admin's edits (from the database) over the
        shipped data files."""
        merged = dict(self._by_id)
        for model in models:
            merged[model.id] = model
        return Catalog(merged.values())
