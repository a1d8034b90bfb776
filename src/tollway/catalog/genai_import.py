"""Per-use prices from the installed ``genai-prices`` package.

The package ships a snapshot of providers, models and prices
(``genai_prices.data.providers``); this module reads that snapshot only, never
the remote update (``UpdatePrices``), so it works offline and its answer
depends on nothing but the installed version and the date asked about.

How genai-prices' richer price model is reduced to Tollway's ``PerUsePrice``:

- **Tiers** (``TieredPrices``: a higher rate once a prompt passes e.g. 200k
  tokens): the base tier is taken. Long-context calls are then under-priced
  against the upstream, so such models say so in their description.
- **Date-conditional prices**: the price in force on ``as_of`` (default
  today, UTC), as genai-prices itself resolves it.
- **Time-of-day prices** (DeepSeek's off-peak discounts): the day's peak
  price, so a call is never sold below what the upstream may charge for it.
- **Request variants** (service tier flex/priority, batch): ignored; the
  standard tier is what the gateway relays.
- **Price keys Tollway cannot bill** (per request, per audio hour, per
  character, per page, video tokens, separately priced reasoning or
  citations): the model is skipped, since pricing it by tokens alone would
  be wrong.
- **Add-on and cache-write keys** (web or file searches, cache writes, cached
  audio/image reads): ignored; the model's token prices still apply. Cache
  writes are then billed as plain input (Tollway's ``Usage`` has no
  cache-write class).
- Deprecated models, free models (no price at all) and models with no output
  price (other than embeddings) are skipped.
"""

from __future__ import annotations

import dataclasses
import datetime
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext
from importlib.metadata import version

from genai_prices import types as gp

from tollway.catalog.catalog import Catalog
from tollway.types import NANO_PER_USD, Model, ModelKind, PerUsePrice

GENAI_SOURCE_PREFIX = "genai-prices"
"""Catalog entries whose ``source`` starts with this are refreshed by an import;
guide-priced, curated and admin-set entries are left alone."""


@dataclass(frozen=True, slots=True)
class GenaiSource:
    """Which models of one genai-prices provider the catalog takes, and whose
    they are (``maker``; None: inferred from the model id)."""

    genai_provider: str
    maker: str | None
    include: str = ""
    exclude: str = ""


# Priority order: when two providers price the same id, the first one wins.
IMPORT_SOURCES: tuple[GenaiSource, ...] = (
    GenaiSource("openai", "openai", exclude=r"^(ft:|ada$|babbage|curie|davinci|text-davinci)|-$"),
    GenaiSource("anthropic", "anthropic"),
    # Google also lists Anthropic's models as resold on Vertex: Anthropic's own wins.
    GenaiSource("google", "google", include=r"^(gemini|gemma)"),
    GenaiSource("deepseek", "deepseek"),
    GenaiSource("mistral", "mistral", exclude=r"^(deepseek|zai)-"),
    GenaiSource("x-ai", "xai"),
    GenaiSource("cohere", "cohere"),
    GenaiSource("moonshotai", "moonshot"),
    GenaiSource("zai", "zhipu"),
    GenaiSource("minimax", "minimax"),
    GenaiSource("voyageai", "voyage"),
    GenaiSource("meta", "meta"),
    # Open-weight models (Llama, Qwen, Gemma, gpt-oss ...) at an inference host's price.
    GenaiSource("groq", None),
    GenaiSource(
        "together",
        None,
        include=r"^(meta-llama|Qwen|mistralai|deepseek-ai|google|moonshotai|zai-org|MiniMaxAI|nvidia)/",
        # Superseded generations and base (non-chat) checkpoints.
        exclude=r"Llama-2|Llama-3-|Qwen1\.5|-v0\.1$|gemma-\d+b$|coder-33b",
    ),
)

# genai-prices price key -> PerUsePrice field.
_PRICE_FIELDS = {
    "input_mtok": "input_mtok",
    "output_mtok": "output_mtok",
    "cache_read_mtok": "cached_input_mtok",
    "input_image_mtok": "image_input_mtok",
    "output_image_mtok": "image_output_mtok",
    "input_audio_mtok": "audio_input_mtok",
    "output_audio_mtok": "audio_output_mtok",
}
_IGNORED_KEYS = frozenset(
    {
        "cache_write_mtok",
        "cache_write_1h_mtok",
        "cache_audio_read_mtok",
        "cache_image_read_mtok",
        "web_searches_kcount",
        "storage_searches_kcount",
    }
)

_MAKER_BY_ORG = {
    "meta-llama": "meta",
    "qwen": "qwen",
    "mistralai": "mistral",
    "deepseek-ai": "deepseek",
    "google": "google",
    "moonshotai": "moonshot",
    "zai-org": "zhipu",
    "minimaxai": "minimax",
    "openai": "openai",
    "nvidia": "nvidia",
}
_MAKER_BY_NAME = (
    ("deepseek", "deepseek"),
    ("qwen", "qwen"),
    ("mixtral", "mistral"),
    ("mistral", "mistral"),
    ("gemma", "google"),
    ("llama", "meta"),
    ("kimi", "moonshot"),
    ("gpt-oss", "openai"),
    ("whisper", "openai"),
    ("glm", "zhipu"),
)
_AUDIO = re.compile(r"(^|[-_/.])(tts|transcribe|realtime|audio|whisper|live|voxtral)")
_VISION = re.compile(
    r"^(gpt-4o|chatgpt-4o|gpt-4\.1|gpt-4-turbo|gpt-4-vision|gpt-4\.5|gpt-5|gpt-6|o1$|o3|o4"
    r"|computer-use|claude-(3|opus|sonnet|haiku|fable|mythos)|gemini|grok-2-vision|grok-4|pixtral|glm-\d(\.\d)?v)"
    r"|llama-4|vision|-vl|kimi-k2\.[5-9]|kimi-k3"
)


@dataclass(frozen=True, slots=True)
class ImportedPrice:
    """One model's per-use price as imported (markup applied)."""

    model_id: str
    provider: str
    kind: ModelKind
    per_use: PerUsePrice
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""
    genai_provider: str = ""
    genai_model_id: str = ""

    def to_model(self) -> Model:
        return Model(
            id=self.model_id,
            kind=self.kind,
            provider=self.provider,
            per_use=self.per_use,
            aliases=self.aliases,
            description=self.description,
            source=self.source,
        )


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
    prices are reduced as the module docstring says. ``as_of`` defaults to
    today (UTC); ``providers`` to the package's bundled snapshot.
    """
    markup = _check_markup(markup_pct)
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
            imported = _import_model(info, source, day, markup, source_label)
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
    guide-priced and curated entries, and admin edits stored with another
    source, keep their prices. Models the import has but the catalog has not
    are not added (that is what ``scripts/gen_catalog.py`` is for), and
    catalog models the import no longer has keep their last price.
    """
    imported = import_per_use_prices(markup_pct, as_of=as_of, providers=providers)
    by_id = {p.model_id: p for p in imported}
    note = "" if _check_markup(markup_pct) == 0 else f" +{markup_pct}% markup"
    changes = []
    for model in catalog.models:
        fresh = by_id.get(model.id)
        if fresh is None or not is_genai_sourced(model) or model.per_use == fresh.per_use:
            continue
        updated = dataclasses.replace(model, per_use=fresh.per_use, source=fresh.source + note)
        changes.append(PriceChange(model.id, model.per_use, fresh.per_use, updated))
    return changes


def _check_markup(markup_pct: Decimal | int | str) -> Decimal:
    if isinstance(markup_pct, bool | float) or not isinstance(markup_pct, Decimal | int | str):
        raise TypeError(f"markup_pct must be a Decimal, int or decimal string, not {markup_pct!r}")
    markup = Decimal(markup_pct)
    if not markup.is_finite() or markup < 0:
        raise ValueError(f"markup_pct must be a finite percentage >= 0, not {markup_pct}")
    return markup


def apply_markup(price_usd: Decimal, markup_pct: Decimal) -> int:
    """USD per 1M tokens -> nano-USD per 1M tokens, marked up, rounded half-up."""
    with localcontext() as ctx:
        ctx.prec = 60  # wide enough that only the final quantize rounds
        exact = price_usd * NANO_PER_USD * (100 + markup_pct) / 100
        return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def _import_model(
    info: gp.ModelInfo,
    source: GenaiSource,
    day: datetime.date,
    markup: Decimal,
    source_label: str,
) -> ImportedPrice | None:
    if info.deprecated or not _selected(info.id, source):
        return None
    prices = _standard_prices(info, day)
    fields, notes = _per_use_fields(prices)
    if fields is None:
        return None
    kind = _kind(info.id, fields)
    if "input_mtok" not in fields or ("output_mtok" not in fields and kind != ModelKind.EMBEDDING):
        return None
    if not any(fields.values()):
        return None  # a free listing: nothing to sell
    per_use = _to_per_use({k: apply_markup(v, markup) for k, v in fields.items()})
    description = (info.name or info.id) + (f" ({'; '.join(notes)})" if notes else "")
    return ImportedPrice(
        model_id=info.id,
        provider=source.maker or _maker_from_id(info.id, source.genai_provider),
        kind=kind,
        per_use=per_use,
        aliases=_aliases(info),
        description=description,
        source=f"{source_label} ({source.genai_provider})",
        genai_provider=source.genai_provider,
        genai_model_id=info.id,
    )


def _selected(model_id: str, source: GenaiSource) -> bool:
    if ":" in model_id or " " in model_id:
        return False  # routing variants ("gpt-4o:extended"), not models to sell
    if source.include and not re.search(source.include, model_id):
        return False
    return not (source.exclude and re.search(source.exclude, model_id))


def _standard_prices(info: gp.ModelInfo, day: datetime.date) -> gp.ModelPrice:
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


def _per_use_fields(prices: gp.ModelPrice) -> tuple[dict[str, Decimal] | None, list[str]]:
    """genai-prices keys -> PerUsePrice fields in USD; None if a key is unbillable."""
    fields: dict[str, Decimal] = {}
    tier_starts: set[int] = set()
    for key, value in vars(prices).items():
        if key.startswith("_") or value is None or key in _IGNORED_KEYS:
            continue
        if key not in _PRICE_FIELDS:
            return None, []
        if isinstance(value, gp.TieredPrices):
            tier_starts.update(tier.start for tier in value.tiers)
        fields[_PRICE_FIELDS[key]] = _base(value)
    notes = []
    if tier_starts:
        notes.append(f"base tier; prompts over {min(tier_starts):,} tokens cost more upstream")
    return fields, notes


def _to_per_use(nano: dict[str, int]) -> PerUsePrice:
    # Embeddings have no output tokens: their output price is honestly zero.
    return PerUsePrice(**{"output_mtok": 0, **nano})


def _kind(model_id: str, fields: dict[str, Decimal]) -> ModelKind:
    """A best guess from the id and the priced token classes; an admin override
    corrects a wrong one."""
    name = model_id.lower()
    if "embed" in name or name.startswith("voyage-"):
        return ModelKind.EMBEDDING
    if "image_output_mtok" in fields or "image" in name:
        return ModelKind.IMAGE
    if _AUDIO.search(name):
        return ModelKind.AUDIO
    if "image_input_mtok" in fields or _VISION.search(name):
        return ModelKind.MULTIMODAL
    return ModelKind.TEXT


def _maker_from_id(model_id: str, fallback: str) -> str:
    org, slash, _rest = model_id.partition("/")
    if slash and org.lower() in _MAKER_BY_ORG:
        return _MAKER_BY_ORG[org.lower()]
    name = model_id.lower()
    for needle, maker in _MAKER_BY_NAME:
        if needle in name:
            return maker
    return fallback


def _aliases(info: gp.ModelInfo) -> tuple[str, ...]:
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
