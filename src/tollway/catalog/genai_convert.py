"""One genai-prices model turned into a catalog entry: markup, kind and maker.

Prices become integer nano-USD per 1M tokens with the markup applied exactly
(``apply_markup``). Deprecated models, free models (no price at all) and
models with no output price (other than embeddings) are skipped, as are
models whose prices ``genai_reading`` cannot bill.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

from genai_prices import types as gp

from tollway.catalog.genai_reading import aliases_of, per_use_fields, standard_prices
from tollway.catalog.genai_sources import GenaiSource, maker_of, selected
from tollway.types import NANO_PER_USD, Model, ModelKind, PerUsePrice, PriceTier

# OpenAI's speech and transcription models (POST /v1/audio/*); other audio
# models (gpt-audio, Gemini's TTS) are chat's.
_SPEECH = re.compile(r"^(tts-1|gpt-4o-mini-tts)")
_TRANSCRIPTION = re.compile(r"^(whisper|gpt-4o(-mini)?-transcribe)")
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


def check_markup(markup_pct: Decimal | int | str) -> Decimal:
    """The markup as a Decimal; TypeError unless a Decimal, int or str, ValueError below 0."""
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


def import_model(
    info: gp.ModelInfo,
    source: GenaiSource,
    day: datetime.date,
    markup: Decimal,
    source_label: str,
) -> ImportedPrice | None:
    """The catalog entry for ``info`` at its price on ``day``, or None if skipped."""
    if info.deprecated or not selected(info.id, source):
        return None
    prices = standard_prices(info, day)
    fields, tiers = per_use_fields(prices)
    if fields is None:
        return None
    kind = kind_of(info.id, fields)
    if "input_mtok" not in fields or ("output_mtok" not in fields and kind != ModelKind.EMBEDDING):
        return None
    if not any(fields.values()):
        return None  # a free listing: nothing to sell
    per_use = _to_per_use(
        _marked_up(fields, markup),
        tuple(PriceTier(start, _to_per_use(_marked_up(at, markup))) for start, at in tiers.items()),
    )
    description = info.name or info.id
    return ImportedPrice(
        model_id=info.id,
        provider=maker_of(info.id, source),
        kind=kind,
        per_use=per_use,
        aliases=aliases_of(info),
        description=description,
        source=f"{source_label} ({source.genai_provider})",
        genai_provider=source.genai_provider,
        genai_model_id=info.id,
    )


def _marked_up(fields: dict[str, Decimal], markup: Decimal) -> dict[str, int]:
    return {name: apply_markup(value, markup) for name, value in fields.items()}


def _to_per_use(nano: dict[str, int], tiers: tuple[PriceTier, ...] = ()) -> PerUsePrice:
    # Embeddings have no output tokens: their output price is honestly zero.
    return PerUsePrice(**{"output_mtok": 0, **nano}, tiers=tiers)


def kind_of(model_id: str, fields: dict[str, Decimal]) -> ModelKind:
    """A best guess from the id and the priced token classes; an admin override
    corrects a wrong one."""
    name = model_id.lower()
    if "embed" in name or name.startswith("voyage-"):
        return ModelKind.EMBEDDING
    if "image_output_mtok" in fields or "image" in name:
        return ModelKind.IMAGE
    if _SPEECH.search(name):
        return ModelKind.SPEECH
    if _TRANSCRIPTION.search(name):
        return ModelKind.TRANSCRIPTION
    if _AUDIO.search(name):
        return ModelKind.AUDIO
    if "image_input_mtok" in fields or _VISION.search(name):
        return ModelKind.MULTIMODAL
    return ModelKind.TEXT
