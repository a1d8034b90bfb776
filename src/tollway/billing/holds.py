"""How much to hold before a call: its worst-case cost, from the request alone.

The hold is the most a call can cost: for any request a
well-behaved upstream can answer, the settled cost stays within it. The
prompt is held as a token a byte of the body (no tokenizer bills more for
text), less the bytes of its images, audio and files, which are held at their
own worst case for the model (billing/media.py); the output as max_tokens per
choice. If an upstream still reports more (one that ignores max_tokens), the
real cost is charged in full at settlement, never capped to the hold, and the
record says so (``exceeded_hold``). A model whose prices list prompt-cache
writes holds its prompt at the dearer write price; a long prompt holds at the
price tier of the longest prompt the body can be (tiers only go up).

Images billed by tokens (gpt-image-1 and the like) are held by size and
quality: output tokens per image grow with the pixel area and the quality, in
line with the billing-modes guide users read (about 5,000 tokens at 1024x1024
high/HD, about 8,500 at 1792x1024). When the upstream reports no usage, the
call is billed by OpenAI's own per-image table where it lists the size, and by
the same area rule elsewhere (``image_estimate_tokens``).
"""

from __future__ import annotations

import re
from fractions import Fraction

from tollway.billing import audio, media
from tollway.billing.pricing import ONE, bill, cache_write_prices, tier_of
from tollway.billing.shapes import CallShape, ImageShape, PromptParts, variant_key
from tollway.providers.openai import IMAGE_OUTPUT_TOKENS
from tollway.types import BillingMethod, Cost, Model, Usage

# Without max_tokens a chat call's output is bounded only by the model; hold
# for this many output tokens (operators can change it, TOLLWAY_HOLD_OUTPUT_TOKENS).
DEFAULT_HOLD_OUTPUT_TOKENS = 4096

# Byte-level BPE (OpenAI) and byte-fallback SentencePiece (Claude, Gemini)
# never make more than one token of a byte of text ("1 1 1 ..." is one token a
# byte on cl100k), so the body's bytes bound its prompt without tokenizing on
# the hot path; the JSON around the text covers each message's few tokens.
BYTES_PER_PROMPT_TOKEN = 1

# --- images billed by tokens ------------------------------------------------

# The quality names image APIs use, by the tier their token count follows
# (DALL-E's standard/hd read as gpt-image's medium/high).
QUALITY_TIERS = {
    "low": "low",
    "medium": "medium",
    "standard": "medium",
    "high": "high",
    "hd": "high",
}
# "auto" lets the upstream choose: held as the dearest tier; billed, when no
# usage says what was chosen, as medium (what OpenAI's auto usually gives).
AUTO = "auto"
IMAGE_QUALITIES = frozenset({*QUALITY_TIERS, AUTO})
AUTO_QUALITY_HOLD = "high"
AUTO_QUALITY_ESTIMATE = "medium"
# Size "auto" (or none given): held as the largest gpt-image size, billed as
# the square one.
AUTO_SIZE_HOLD = "1536x1024"
AUTO_SIZE_ESTIMATE = "1024x1024"

# Output tokens per 1024x1024 of pixel area, by tier. high is the billing-modes
# guide's "about 5,000 tokens at 1024x1024" (1792x1024 then holds 8,750, its
# "about 8,500"); every tier is above OpenAI's table at each size it lists, so
# the hold bounds what the upstream reports.
TOKENS_PER_1024_SQUARE = {"low": 350, "medium": 1300, "high": 5000}
SQUARE_1024 = 1024 * 1024

# The sizes a token-billed image model's estimate table is shown for.
IMAGE_TABLE_SIZES = ("1024x1024", "1024x1536", "1536x1024", "1792x1024", "1024x1792")
IMAGE_TABLE_TIERS = ("low", "medium", "high")

_SIZE = re.compile(r"^([1-9][0-9]{0,4})x([1-9][0-9]{0,4})$")


def parse_size(size: str) -> tuple[int, int] | None:
    """``"1792x1024"`` -> (1792, 1024); None when it is not ``WIDTHxHEIGHT``."""
    found = _SIZE.match(size)
    return (int(found.group(1)), int(found.group(2))) if found else None


def hold_usage(
    shape: CallShape, model: Model, default_output_tokens: int = DEFAULT_HOLD_OUTPUT_TOKENS
) -> Usage:
    """The most a call of this shape can use on ``model``."""
    if shape.video is not None:  # one video of the seconds asked, at its size's price
        return Usage(seconds=shape.video.seconds, variant=f"{shape.video.size}/")
    if shape.image is not None:
        return image_hold_usage(shape, model)
    if shape.audio is not None:
        return audio.hold_usage(shape.audio, model)
    n = max(shape.n, 1)
    output = (
        shape.max_output_tokens if shape.max_output_tokens is not None else default_output_tokens
    )
    usage = Usage(
        input_tokens=prompt_tokens(shape, model),
        audio_input_tokens=_audio_tokens(shape.parts),
        output_tokens=output * n,
        items=n,
    )
    return held_as_cache_writes(usage, model)


def held_as_cache_writes(usage: Usage, model: Model) -> Usage:
    """A model that may report prompt-cache writes (priced above input) holds
    its whole prompt at the dearer write price: any part of it may be written."""
    price = model.per_use
    if price is None or not price.writes_caches:
        return usage
    tier = tier_of(price, usage)
    five_minutes, one_hour = cache_write_prices(tier)
    if tier.input_mtok is not None and max(five_minutes, one_hour) <= tier.input_mtok:
        return usage
    if one_hour >= five_minutes:
        usage.cache_write_1h_tokens = usage.input_tokens
    else:
        usage.cache_write_tokens = usage.input_tokens
    return usage


def hold_bill(
    model: Model,
    method: BillingMethod,
    shape: CallShape,
    default_output_tokens: int = DEFAULT_HOLD_OUTPUT_TOKENS,
    multiplier: Fraction = ONE,
) -> Cost:
    """The bill of the most a call of this shape can use: its hold."""
    return bill(model, method, hold_usage(shape, model, default_output_tokens), multiplier)


def prompt_tokens(shape: CallShape, model: Model) -> int:
    """The most the prompt can be billed in input tokens: its text by bytes,
    each image and file at its worst case for the model (audio is apart)."""
    parts = shape.parts
    text = max(shape.body_bytes - parts.chars, 0) // BYTES_PER_PROMPT_TOKEN + 1
    if parts.images == 0 and parts.files == 0:
        return text + parts.extra_tokens
    per_image = media.image_tokens(model)
    low = parts.low_detail_images
    return (
        text
        + parts.extra_tokens
        + (parts.images - low) * per_image.most
        + low * per_image.low
        + parts.files * media.file_tokens(model)
    )


def _audio_tokens(parts: PromptParts) -> int:
    return media.audio_tokens(media.base64_bytes(parts.audio_encoded_chars))


def image_hold_usage(shape: CallShape, model: Model) -> Usage:
    """The most an image call is expected to use: the prompt bound, the area
    rule's output tokens per image x n, and the variant for a per-call table."""
    image = shape.image or ImageShape()
    n = max(shape.n, 1)
    return Usage(
        input_tokens=prompt_tokens(shape, model),
        image_input_tokens=image.image_input_tokens,
        image_output_tokens=image_hold_tokens(image.size, image.quality) * n,
        items=n,
        variant=variant_key(image.size, image.quality),
    )


def image_estimate_usage(
    prompt_tokens: int, size: str | None, quality: str | None, images: int
) -> Usage:
    """What an image call is billed by when the upstream reports no usage."""
    return Usage(
        input_tokens=prompt_tokens,
        image_output_tokens=image_estimate_tokens(size, quality) * images,
        items=images,
        variant=variant_key(size, quality),
    )


def image_hold_tokens(size: str | None, quality: str | None) -> int:
    """Output tokens held per image: the area rule, auto read as the dearest."""
    tier = _tier(quality, AUTO_QUALITY_HOLD)
    return _area_tokens(_size(size, AUTO_SIZE_HOLD), tier)


def image_estimate_tokens(size: str | None, quality: str | None) -> int:
    """Output tokens billed per image without usage: OpenAI's table where it
    lists the size, the area rule elsewhere."""
    tier = _tier(quality, AUTO_QUALITY_ESTIMATE)
    concrete = _size(size, AUTO_SIZE_ESTIMATE)
    listed = IMAGE_OUTPUT_TOKENS.get((tier, concrete))
    return listed if listed is not None else _area_tokens(concrete, tier)


def _tier(quality: str | None, auto: str) -> str:
    if quality is None or quality == AUTO:
        return auto
    tier = QUALITY_TIERS.get(quality)
    if tier is None:
        raise ValueError(f"unknown image quality {quality!r}")
    return tier


def _size(size: str | None, auto: str) -> str:
    return auto if size is None or size == AUTO else size


def _area_tokens(size: str, tier: str) -> int:
    dimensions = parse_size(size)
    if dimensions is None:
        raise ValueError(f"not an image size: {size!r}")
    width, height = dimensions
    return -(-TOKENS_PER_1024_SQUARE[tier] * width * height // SQUARE_1024)  # ceil, in integers
