"""What billing reads of an images request: prompt, n, size and quality,
checked before anything is held (the rest of the body, such as
response_format or background, is the upstream's to judge).

Gemini's image models make one image a call, whatever its size or quality:
n images are n calls, each sending the prompt. Their shape holds the prompt
once a call and each image at the dearest the hold's size rule allows (size
and quality unnamed: 1536x1024 high, 7,500 image tokens); each call is sent
that many tokens as its output bound (maxOutputTokens), and a Gemini image is
at most 2,520 tokens (4K), so text and thoughts fit in what is left (image
tokens cost several times text tokens on every one of these models).
"""

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


def one_image_a_call(model: Model) -> bool:
    """Whether ``model`` is one of Gemini's image models (generateContent with
    image output), which make one image a call."""
    return model.provider == "google" and model.id.startswith("gemini-")


def image_shape(asked: ImageRequest, body_bytes: int, model: Model | None = None) -> CallShape:
    """The shape billing holds; ``model`` given, as that model makes images."""
    if model is not None and one_image_a_call(model):
        return CallShape(body_bytes=body_bytes * asked.n, n=asked.n, image=ImageShape())
    return CallShape(body_bytes=body_bytes, n=asked.n, image=asked.shape)
