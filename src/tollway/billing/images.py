"""What billing reads of an images request: prompt, n, size and quality,
checked before anything is held (the rest of the body, such as
response_format or background, is the upstream's to judge)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.billing.holds import AUTO, IMAGE_QUALITIES, parse_size
from tollway.billing.pricing import UnpricedVariant, per_call_unit_price
from tollway.billing.shapes import CallShape, ImageShape, variant_key
from tollway.errors import bad_request
from tollway.types import Model

MAX_N = 10


@dataclass(frozen=True, slots=True)
class ImageRequest:
    """What billing needs of an images request (the rest is passed on as sent)."""

    prompt: str
    n: int = 1
    size: str | None = None  # "WxH" or "auto"; None: the upstream's default
    quality: str | None = None

    @property
    def shape(self) -> ImageShape:
        return ImageShape(self.size, self.quality)

    @property
    def variant(self) -> str | None:
        return variant_key(self.size, self.quality)


def image_request(payload: dict[str, Any], where: str = "") -> ImageRequest:
    """Validate what billing reads of an images body (the rest, such as
    response_format or background, is the upstream's to judge); ``where``
    prefixes the param a 400 names."""
    prompt = payload.get("prompt")
    if not isinstance(prompt, str) or not prompt.strip():
        raise bad_request("'prompt' must be a non-empty string.", param=f"{where}prompt")
    n = payload.get("n", 1)
    if n is None:
        n = 1
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= MAX_N:
        raise bad_request(f"'n' must be a whole number from 1 to {MAX_N}.", param=f"{where}n")
    size = payload.get("size")
    if size is not None and (not isinstance(size, str) or (size != AUTO and not parse_size(size))):
        raise bad_request(
            f"'size' must be WIDTHxHEIGHT (e.g. '1024x1024') or 'auto', not {size!r}.",
            param=f"{where}size",
        )
    quality = payload.get("quality")
    if quality is not None and (not isinstance(quality, str) or quality not in IMAGE_QUALITIES):
        raise bad_request(
            f"'quality' must be one of {', '.join(sorted(IMAGE_QUALITIES))}; got {quality!r}.",
            param=f"{where}quality",
        )
    if payload.get("stream") not in (None, False):
        raise bad_request(
            "Streamed image generation (partial images) is not supported; leave 'stream' out.",
            param=f"{where}stream",
        )
    return ImageRequest(prompt, n, size, quality)


def check_priced(model: Model, asked: ImageRequest) -> None:
    """A per-call call must name a size and quality its price table lists."""
    try:
        per_call_unit_price(model, asked.variant)
    except UnpricedVariant as exc:
        raise bad_request(str(exc), param=exc.param) from None


def image_shape(asked: ImageRequest, body_bytes: int) -> CallShape:
    return CallShape(body_bytes=body_bytes, n=asked.n, image=asked.shape)
