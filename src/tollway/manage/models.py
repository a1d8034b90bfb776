"""The catalog as the API shows it, and admin edits to models and prices.

An edit is stored as a whole model entry (the data files' shape) in
``model_overrides``; it replaces the shipped entry with the same id and
applies to the next call.

Seen through a token (``model_view`` with its price ``group``), every price
is the catalog's x the group's multiplier, each rounded half up once to a
whole nano-USD (``tollway.billing.groups``).
"""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction
from typing import Any

from pydantic import ValidationError
from sqlalchemy import delete, select

from tollway.billing.groups import scaled_model
from tollway.billing.holds import (
    IMAGE_TABLE_SIZES,
    IMAGE_TABLE_TIERS,
    image_estimate_tokens,
    image_hold_tokens,
)
from tollway.billing.modes import (
    MODE_INFO,
    MODE_ORDER,
    Refusal,
    can_call,
    resolve_method,
    working_modes,
)
from tollway.billing.pricing import ONE, bill
from tollway.catalog.schema import ModelEntry
from tollway.db.schema import model_overrides
from tollway.errors import ApiError, bad_request, model_not_found
from tollway.gateway import Gateway
from tollway.manage import audit
from tollway.state import Group
from tollway.timeutil import utcnow
from tollway.types import (
    PER_USE_CLASSES,
    BillingMethod,
    BillingMode,
    Model,
    ModelKind,
    MoneyError,
    PerCallPrice,
    PerUsePrice,
    Usage,
    nano_to_usd,
    usd_to_nano,
)

PER_USE_FIELDS = PER_USE_CLASSES  # the per-use prices an edit may set


def model_entry(model: Model) -> dict[str, Any]:
    """A model in the data files' shape (prices as USD decimal strings)."""
    entry: dict[str, Any] = {
        "id": model.id,
        "kind": model.kind.value,
        "provider": model.provider,
        "aliases": list(model.aliases),
        "description": model.description,
        "source": model.source or "admin",
    }
    if model.per_use is not None:
        entry["per_use"] = per_use_entry(model.per_use)
    if model.per_call is not None:
        entry["per_call"] = per_call_entry(model.per_call)
    if model.default_method is not None:
        entry["default_method"] = model.default_method.value
    return entry


def per_use_entry(price: PerUsePrice) -> dict[str, Any]:
    """Per-use prices in the data files' shape: USD strings, and the
    long-prompt tiers when the model has any."""
    block: dict[str, Any] = {
        name: nano_to_usd(getattr(price, name))
        for name in PER_USE_FIELDS
        if getattr(price, name) is not None
    }
    if price.tiers:
        block["tiers"] = [
            {"above_tokens": tier.above_tokens, **per_use_entry(tier.price)} for tier in price.tiers
        ]
    return block


# Fields of a per-call block that a PATCH naming only ``price`` keeps.
PER_CALL_KEPT = ("unit", "variants", "default_variant")


def per_call_entry(price: PerCallPrice) -> dict[str, Any]:
    """A per-call price in the data files' shape: USD strings, its unit, and
    its size/quality table when it has one."""
    block: dict[str, Any] = {"price": nano_to_usd(price.price_nano), "unit": price.unit.value}
    if price.variants:
        block["default_variant"] = price.default_variant
        block["variants"] = {key: nano_to_usd(nano) for key, nano in price.variants}
    return block


def call_cost_nano(
    model: Model, method: BillingMethod, usage: Usage, multiplier: Fraction = ONE
) -> int:
    """What a call with this usage costs at the catalog's prices today, x a
    price group's ``multiplier``. The one place manage/ asks billing for a
    price (the advisor's replay, the image tables): PricingError when the
    model has no price for it."""
    return bill(model, method, usage, multiplier).total_nano


def image_estimates(model: Model, multiplier: Fraction = ONE) -> list[dict[str, Any]] | None:
    """A token-billed image model's size/quality table: output tokens and cost
    per image as billed without usage, and as held before the call."""
    if model.kind is not ModelKind.IMAGE or model.per_use is None:
        return None

    def usd(tokens: int) -> str:
        usage = Usage(image_output_tokens=tokens)
        return nano_to_usd(call_cost_nano(model, BillingMethod.PER_USE, usage, multiplier))

    rows = []
    for size in IMAGE_TABLE_SIZES:
        for quality in IMAGE_TABLE_TIERS:
            tokens = image_estimate_tokens(size, quality)
            held = image_hold_tokens(size, quality)
            rows.append(
                {
                    "size": size,
                    "quality": quality,
                    "output_tokens": tokens,
                    "cost_usd": usd(tokens),
                    "hold_output_tokens": held,
                    "hold_usd": usd(held),
                }
            )
    return rows


def model_view(
    model: Model,
    mode: BillingMode | None = None,
    allow_hybrid: bool = False,
    group: Group | None = None,
) -> dict[str, Any]:
    """A model as the API shows it; through a billing ``mode``, how it would
    be billed; in a token's price ``group``, at the group's prices."""
    multiplier = ONE if group is None else group.multiplier
    view = model_entry(scaled_model(model, multiplier))
    view.setdefault("per_use", None)
    view.setdefault("per_call", None)
    if group is not None:
        view["group"], view["multiplier"] = group.name, group.text
    view["image_estimates"] = image_estimates(model, multiplier)
    view["methods"] = sorted(m.value for m in model.methods)
    view["default_method"] = model.effective_default_method.value
    view["modes"] = [m.value for m in working_modes(model, allow_hybrid)]
    if mode is not None:
        decision = resolve_method(mode, model)
        if isinstance(decision, Refusal):
            view["billing"] = {"mode": mode.value, "method": None, "refused": decision.message}
        else:
            view["billing"] = {"mode": mode.value, "method": decision.value, "refused": None}
    return view


def matches(model: Model, query: str, kind: str) -> bool:
    """Whether the model is of ``kind`` (any when blank) and every word of
    ``query`` is in its id, aliases, provider or description (any case)."""
    if kind and model.kind.value != kind:
        return False
    if not query:
        return True
    words = query.casefold().split()
    text = " ".join((model.id, *model.aliases, model.provider, model.description)).casefold()
    return all(w in text for w in words)


def find_models(gw: Gateway, query: str = "", kind: str = "") -> list[Model]:
    """The catalog's models that ``matches`` the search, ordered by id."""
    return [m for m in gw.state.catalog.models if matches(m, query, kind)]


def list_models(
    gw: Gateway,
    query: str = "",
    kind: str = "",
    mode: BillingMode | None = None,
    allowlist: list[str] | None = None,
) -> list[dict[str, Any]]:
    """The views of the models found, each billed through ``mode`` when given;
    a token's ``allowlist`` (model names) refuses the models it does not name."""
    views = [model_view(m, mode, gw.settings.allow_hybrid) for m in find_models(gw, query, kind)]
    if mode is not None and allowlist:
        for view in views:
            _refuse_unlisted(view, allowlist)
    return views


NOT_IN_ALLOWLIST = "Not in this token's model allowlist."


def _refuse_unlisted(view: dict[str, Any], allowlist: list[str]) -> None:
    billing = view["billing"]
    if billing["method"] and not {view["id"], *view["aliases"]} & set(allowlist):
        billing.update(method=None, refused=NOT_IN_ALLOWLIST)


def read_model(gw: Gateway, name: str) -> dict[str, Any]:
    """The view of the model ``name`` (an id or alias) refers to; 404 if none."""
    model = gw.state.catalog.get(name)
    if model is None:
        raise model_not_found(name)
    return model_view(model)


def _plain(value: Any) -> Any:
    """Prices may arrive as JSON numbers (parsed as Decimal, never float) or
    strings; the entry schema takes plain decimal strings (a number it cannot
    write as one stays as it was sent, for the schema to refuse by name)."""
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        try:
            return nano_to_usd(usd_to_nano(value))
        except MoneyError:
            return str(value)[:40]
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    return value


def _validate(entry: dict[str, Any]) -> Model:
    data = {**entry}
    for block in ("per_use", "per_call"):
        if block in data and data[block] is not None:
            data[block] = _plain(data[block])
        elif block in data:
            del data[block]
    try:
        return ModelEntry.model_validate(data).to_model()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise bad_request(f"Invalid model: {where}: {first['msg']}", param=where or None) from None


# What a model added without a provider is listed under (the provider is optional).
DEFAULT_PROVIDER = "custom"


async def create_model(gw: Gateway, entry: dict[str, Any]) -> dict[str, Any]:
    entry = {"source": "admin", "provider": DEFAULT_PROVIDER, **entry}
    model = _validate(entry)
    if gw.state.catalog.get(model.id) is not None:
        raise ApiError(409, f"Model '{model.id}' exists; change it with PATCH.", "model_exists")
    _check_alias_clash(gw, model)
    await _store(gw, model, "model.create", entry)
    return model_view(gw.state.catalog.resolve(model.id))


async def update_model(gw: Gateway, name: str, changes: dict[str, Any]) -> dict[str, Any]:
    current = gw.state.catalog.get(name)
    if current is None:
        raise model_not_found(name)
    if "id" in changes and changes["id"] != current.id:
        raise bad_request("A model's id cannot be changed; add an alias instead.", param="id")
    merged = {**model_entry(current), **changes, "id": current.id}
    _keep_per_call_table(merged, current, changes)
    _keep_tiers(merged, current, changes)
    if "source" not in changes:
        merged["source"] = "admin"
    model = _validate(merged)
    _check_alias_clash(gw, model)
    await _store(gw, model, "model.update", changes)
    return model_view(gw.state.catalog.resolve(model.id))


def _keep_per_call_table(merged: dict[str, Any], current: Model, changes: dict[str, Any]) -> None:
    """A per_call block that names only the price keeps the model's unit and
    size/quality table (a form that edits the price must not drop the table);
    send ``variants: null`` to drop it."""
    block = changes.get("per_call")
    if current.per_call is None or not isinstance(block, dict):
        return
    kept = per_call_entry(current.per_call)
    merged["per_call"] = {
        **{k: kept[k] for k in PER_CALL_KEPT if k in kept and k not in block},
        **block,
    }
    if merged["per_call"].get("variants") is None:
        merged["per_call"].pop("variants", None)
        merged["per_call"].pop("default_variant", None)


def _keep_tiers(merged: dict[str, Any], current: Model, changes: dict[str, Any]) -> None:
    """A per_use block that does not name ``tiers`` keeps the model's
    long-prompt tiers (the console's price form has no tier fields); send
    ``tiers: []`` to drop them."""
    block = changes.get("per_use")
    if current.per_use is None or not current.per_use.tiers or not isinstance(block, dict):
        return
    if "tiers" not in block:
        merged["per_use"] = {**block, "tiers": per_use_entry(current.per_use)["tiers"]}


def _check_alias_clash(gw: Gateway, model: Model) -> None:
    for alias in model.aliases:
        other = gw.state.catalog.get(alias)
        if other is not None and other.id != model.id:
            raise ApiError(409, f"Alias '{alias}' already names model '{other.id}'.", "alias_taken")


async def _store(gw: Gateway, model: Model, action: str, changes: dict[str, Any]) -> None:
    row = {"id": model.id, "data": model_entry(model), "updated_at": utcnow()}
    async with gw.engine.begin() as conn:
        await conn.execute(delete(model_overrides).where(model_overrides.c.id == model.id))
        await conn.execute(model_overrides.insert().values(row))
        await audit.record(conn, action, f"model:{model.id}", changes)
        await gw.state.changed(conn)
    await gw.state.reload()


async def store_models(gw: Gateway, models: list[Model]) -> None:
    """Store many edits in one transaction (the price importer's refresh)."""
    now = utcnow()
    async with gw.engine.begin() as conn:
        for model in models:
            await conn.execute(delete(model_overrides).where(model_overrides.c.id == model.id))
            await conn.execute(
                model_overrides.insert().values(
                    id=model.id, data=model_entry(model), updated_at=now
                )
            )
        await audit.record(conn, "model.import", "models", {"models": [m.id for m in models]})
        await gw.state.changed(conn)
    await gw.state.reload()


async def overridden_ids(gw: Gateway) -> set[str]:
    async with gw.engine.connect() as conn:
        return set((await conn.execute(select(model_overrides.c.id))).scalars().all())


def modes_view(gw: Gateway) -> list[dict[str, Any]]:
    """The five modes as GET /api/billing-modes lists them, with live counts."""
    models = gw.state.catalog.models
    return [
        {
            "value": mode.value,
            "name": MODE_INFO[mode].name,
            "description": MODE_INFO[mode].description,
            "recommended": MODE_INFO[mode].recommended,
            "applicable": MODE_INFO[mode].applicable or gw.settings.allow_hybrid,
            "models_reachable": sum(1 for m in models if can_call(mode, m)),
        }
        for mode in MODE_ORDER
    ]
