"""The core vocabulary every part of Tollway speaks.

Money is integer nano-USD (1 USD = 10**9); prices per million tokens are
integer nano-USD per 1M tokens (so $0.075/1M is 75_000_000). Nothing here
touches a float.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

NANO_PER_USD = 1_000_000_000
TOKENS_PER_MTOK = 1_000_000
CHARS_PER_MCHAR = 1_000_000
MS_PER_MINUTE = 60_000

# The most any money amount may be, in USD, either way: a credit or debit, a
# balance, a quota, a price. In nano-USD it is 10**18, so a sum of two (a
# balance plus a credit) stays far inside 64 bits (9.2 * 10**18).
MAX_USD = 1_000_000_000
MAX_NANO = MAX_USD * NANO_PER_USD
# Row ids are 32-bit integers in both databases.
MAX_ID = 2**31 - 1

# A money string: plain ASCII digits with an optional minus and decimals (the
# decimals must then be exact to 9 places: "0.10" is fine, "0.0000000001" not).
_PLAIN_USD = re.compile(r"-?[0-9]{1,30}(\.[0-9]{1,30})?")


class MoneyError(ValueError):
    """A money amount that cannot be represented exactly."""


def usd_to_nano(amount: str | int | Decimal) -> int:
    """Parse a USD amount into exact nano-USD: a plain decimal string
    (``-?digits[.up to 9 digits]``, ASCII only: no exponents, separators,
    spaces, signs other than a leading minus, NaN or Infinity), an int, or a
    Decimal (what a JSON number is parsed as); at most ``MAX_USD`` either way.

    Floats are refused: they cannot carry an exact decimal amount. More than
    nine decimal places would need rounding, which money never does silently.
    """
    if isinstance(amount, bool) or not isinstance(amount, str | int | Decimal):
        raise MoneyError(f"money must be a decimal string or a number, not {amount!r}")
    if isinstance(amount, str) and _PLAIN_USD.fullmatch(amount) is None:
        raise MoneyError(f"not a decimal amount: {amount[:40]!r} (plain digits, e.g. 10 or 0.25)")
    value = Decimal(amount)
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {value}")
    if abs(value) > MAX_USD:
        raise MoneyError(f"{str(value)[:40]} is beyond the maximum of {MAX_USD} USD")
    return _exact_nano(value)


def _exact_nano(value: Decimal) -> int:
    """value x 10**9, exactly (Decimal arithmetic would round to 28 digits)."""
    sign, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if not any(digits):
        return 0
    if exponent < -9:
        cut = -9 - exponent
        if any(digits[-cut:]):
            raise MoneyError(f"{value} has more than 9 decimal places (finer than a nano-USD)")
        digits, exponent = digits[:-cut], -9
    nano = int("".join(map(str, digits))) * 10 ** (exponent + 9)
    return -nano if sign else nano


def parse_count(text: str | None, max_digits: int = 18) -> int | None:
    """A count written in ASCII digits (a header, a query parameter), else
    None. ``str.isdigit`` also takes '²' and '٣', which ``int`` refuses or
    reads as another digit."""
    if text is None or not (text.isascii() and text.isdigit()) or len(text) > max_digits:
        return None
    return int(text)


def nano_to_usd(nano: int) -> str:
    """Format nano-USD as a plain decimal string in USD: 195000 -> '0.000195'."""
    sign = "-" if nano < 0 else ""
    whole, frac = divmod(abs(nano), NANO_PER_USD)
    frac_s = f"{frac:09d}".rstrip("0")
    return f"{sign}{whole}.{frac_s}" if frac_s else f"{sign}{whole}"


def nano_to_decimal(nano: int) -> Decimal:
    return Decimal(nano) / NANO_PER_USD


class BillingMethod(StrEnum):
    """How one call is charged."""

    PER_USE = "per_use"
    PER_CALL = "per_call"


class BillingMode(StrEnum):
    """A token's setting that decides the method of each call."""

    PAY_PER_USE = "pay_per_use"
    PAY_PER_CALL = "pay_per_call"
    HYBRID = "hybrid"
    PAY_PER_USE_PRIORITY = "pay_per_use_priority"
    PAY_PER_CALL_PRIORITY = "pay_per_call_priority"


DEFAULT_BILLING_MODE = BillingMode.PAY_PER_USE_PRIORITY


class ModelKind(StrEnum):
    TEXT = "text"
    MULTIMODAL = "multimodal"
    IMAGE = "image"
    VIDEO = "video"
    EMBEDDING = "embedding"
    AUDIO = "audio"
    SPEECH = "speech"
    TRANSCRIPTION = "transcription"
    MODERATION = "moderation"
    RERANK = "rerank"


# The token classes a usage (and a usage record) counts, in display order.
TOKEN_CLASSES = (
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "cache_write_1h_tokens",
    "output_tokens",
    "reasoning_tokens",
    "image_input_tokens",
    "image_output_tokens",
    "audio_input_tokens",
    "audio_output_tokens",
)
# The other units a usage counts (speech by characters read, transcription by
# milliseconds of audio heard), and every count a usage record keeps.
UNIT_CLASSES = ("input_characters", "audio_input_ms")
USAGE_CLASSES = (*TOKEN_CLASSES, *UNIT_CLASSES)


class UsageSource(StrEnum):
    UPSTREAM = "upstream"
    ESTIMATED = "estimated"


@dataclass(frozen=True, slots=True)
class PerUsePrice:
    """Per-use prices, integer nano-USD per 1M tokens of each class, per 1M
    input characters (``input_mchar``) and per minute of input audio
    (``audio_input_minute``). A price needs at least one class; a class used
    without a price of its own (nor the base input or output price it falls
    back to) cannot be billed: a PricingError, never free.

    ``tiers`` are the prices of long prompts: a call whose prompt has more
    than a tier's ``above_tokens`` pays that tier's prices for all its tokens
    (the cliff the providers use), the highest such tier winning.
    """

    input_mtok: int | None = None
    output_mtok: int | None = None
    cached_input_mtok: int | None = None
    cache_write_mtok: int | None = None  # written to a 5-minute cache
    cache_write_1h_mtok: int | None = None
    image_input_mtok: int | None = None
    image_output_mtok: int | None = None
    audio_input_mtok: int | None = None
    audio_output_mtok: int | None = None
    input_mchar: int | None = None
    audio_input_minute: int | None = None
    tiers: tuple[PriceTier, ...] = ()

    def __post_init__(self) -> None:
        if all(getattr(self, name) is None for name in PER_USE_CLASSES):
            raise ValueError("a per-use price needs at least one priced class")

    @property
    def writes_caches(self) -> bool:
        """Whether the catalog prices cache writes for this model (its calls may report them)."""
        return self.cache_write_mtok is not None or self.cache_write_1h_mtok is not None


# Every class a per-use price may set, in display order.
PER_USE_CLASSES = (
    "input_mtok",
    "output_mtok",
    "cached_input_mtok",
    "cache_write_mtok",
    "cache_write_1h_mtok",
    "image_input_mtok",
    "image_output_mtok",
    "audio_input_mtok",
    "audio_output_mtok",
    "input_mchar",
    "audio_input_minute",
)


@dataclass(frozen=True, slots=True)
class PriceTier:
    """The prices of prompts longer than ``above_tokens`` prompt tokens."""

    above_tokens: int
    price: PerUsePrice


class PerCallUnit(StrEnum):
    """What one per-call price buys. ``second`` is a second of generated video:
    the charge is price x seconds x items. ``search`` is a reranker's search
    unit (Cohere: one query over up to 100 document chunks): items count them."""

    CALL = "call"
    IMAGE = "image"
    VIDEO = "video"
    SECOND = "second"
    SEARCH = "search"


@dataclass(frozen=True, slots=True)
class PerCallPrice:
    """A fixed price per call, per generated item when n > 1.

    Where the published price depends on the size and quality asked for
    (DALL-E 3: standard/hd x three sizes), ``variants`` holds the whole table,
    keyed ``"<size>/<quality>"``. A table is exhaustive: a size or quality it
    does not list has no price (and is refused, never billed at a default).
    ``default_variant`` is what a request naming neither gets; its price is
    ``price_nano``.
    """

    price_nano: int
    unit: PerCallUnit = PerCallUnit.CALL
    variants: tuple[tuple[str, int], ...] = ()
    default_variant: str | None = None


@dataclass(frozen=True, slots=True)
class Model:
    """A catalog entry. It supports a method when the price for it is set."""

    id: str
    kind: ModelKind
    provider: str
    per_use: PerUsePrice | None = None
    per_call: PerCallPrice | None = None
    default_method: BillingMethod | None = None
    aliases: tuple[str, ...] = ()
    description: str = ""
    source: str = ""

    @property
    def methods(self) -> frozenset[BillingMethod]:
        found = set()
        if self.per_use is not None:
            found.add(BillingMethod.PER_USE)
        if self.per_call is not None:
            found.add(BillingMethod.PER_CALL)
        return frozenset(found)

    @property
    def effective_default_method(self) -> BillingMethod:
        """The method hybrid tokens get: the declared default, else the only one,
        else per_use."""
        if self.default_method is not None and self.default_method in self.methods:
            return self.default_method
        if self.methods == {BillingMethod.PER_CALL}:
            return BillingMethod.PER_CALL
        return BillingMethod.PER_USE


@dataclass(slots=True)
class Usage:
    """What one call consumed, as a provider reports it (or as counted).

    ``output_tokens`` includes reasoning tokens; ``input_tokens`` includes the
    cached ones and the cache writes (as OpenAI reports; Anthropic reports them
    apart and its reading adds them in), so billing prices each part at its
    rate and the rest at the input rate. Cache writes are Anthropic's: written
    for five minutes (``cache_write_tokens``) or for an hour.
    """

    input_tokens: int = 0
    cached_input_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    output_tokens: int = 0
    reasoning_tokens: int = 0
    image_input_tokens: int = 0
    image_output_tokens: int = 0
    audio_input_tokens: int = 0
    audio_output_tokens: int = 0
    input_characters: int = 0  # characters read aloud (speech priced per 1M characters)
    audio_input_ms: int = 0  # milliseconds of audio heard (priced per minute)
    items: int = 1
    source: UsageSource = UsageSource.UPSTREAM
    # What a per-call price table is looked up by: "<size>/<quality>" as the
    # call asked for them; an empty part (or None) means the model's default.
    variant: str | None = None
    # Seconds of generated video per item, for per-second prices.
    seconds: int = 0

    def token_classes(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in TOKEN_CLASSES}


@dataclass(frozen=True, slots=True)
class CostLine:
    """One priced part of a cost: quantity x unit price.

    ``cost_nano`` is exact and may be fractional (37.5 nano-USD); only the
    call's total is rounded to a whole nano-USD, once.
    """

    name: str
    quantity: int
    unit_price_nano: int
    per: int  # 1 per item, TOKENS_PER_MTOK per 1M tokens, MS_PER_MINUTE per minute ...

    @property
    def cost_nano(self) -> Decimal:
        return Decimal(self.quantity * self.unit_price_nano) / self.per


@dataclass(frozen=True, slots=True)
class Cost:
    method: BillingMethod
    total_nano: int
    lines: tuple[CostLine, ...] = field(default_factory=tuple)
