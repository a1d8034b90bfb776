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

An edit is held as a generation of the same size, quality and n, plus its
input images at their worst case for the model (``edit_shape``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tollway.billing import media
from tollway.billing.holds import AUTO, IMAGE_QUALITIES, parse_size
from tollway.billing.pricing import UnpricedVariant, per_call_unit_price
from tollway.billing.shapes import CallShape, ImageShape, PromptParts, variant_key
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


# --- edits: the input images a token-billed edit is held for ------------------
#
# OpenAI bills an edit's input images as image input tokens. GPT Image 1 reads
# an image as its vision models do, with 512-px tiles: the image is fitted in
# 2048x2048, its short side brought down to 512, and each 512-px tile costs 129
# tokens on top of 65 (so at most 4 tiles: 581 tokens). ``input_fidelity:
# "high"`` adds 4,160 tokens for a square image and 6,240 for any other, so an
# image at high fidelity is held at 581 + 6,240. The held bound does not read
# the image's pixels: it holds for the largest image the rule allows.

GPT_IMAGE_BASE_TOKENS = 65
GPT_IMAGE_TILE_TOKENS = 129
GPT_IMAGE_MAX_TILES = 4  # a 2048-px long side over a 512-px short side
GPT_IMAGE_LOW_FIDELITY = GPT_IMAGE_BASE_TOKENS + GPT_IMAGE_MAX_TILES * GPT_IMAGE_TILE_TOKENS
HIGH_FIDELITY_SQUARE = 4160
HIGH_FIDELITY_OTHER = 6240
GPT_IMAGE_HIGH_FIDELITY = GPT_IMAGE_LOW_FIDELITY + max(HIGH_FIDELITY_SQUARE, HIGH_FIDELITY_OTHER)
INPUT_FIDELITIES = frozenset({"low", "high"})


def edit_image_tokens(model: Model, images: int, fidelity: str | None) -> int:
    """The most ``images`` input images (a mask counts as one) can be billed
    on a token-billed image model, in image input tokens.

    gpt-image-1 and gpt-image-1-mini read an image at the fidelity asked (low
    unless ``input_fidelity`` says high); gpt-image-1.5 and chatgpt-image keep
    some inputs at high fidelity whatever is asked, so they are held high.
    Any other model (gpt-image-2 and later, whose rule is not published) is
    held at the largest prompt image any catalog model bills
    (billing/media.py)."""
    return images * _per_input_image(model.id, fidelity)


def _per_input_image(model_id: str, fidelity: str | None) -> int:
    if model_id == "gpt-image-1" or model_id.startswith("gpt-image-1-"):
        return GPT_IMAGE_HIGH_FIDELITY if fidelity == "high" else GPT_IMAGE_LOW_FIDELITY
    if model_id.startswith(("gpt-image-1", "chatgpt-image")):
        return GPT_IMAGE_HIGH_FIDELITY
    return media.OTHER_IMAGE


def edit_shape(
    asked: ImageRequest,
    model: Model,
    images: int,
    fidelity: str | None,
) -> CallShape:
    """The shape billing holds for an edit of ``images`` input images (a mask
    counted as one more) asking for ``asked``.

    The prompt is held by its bytes (the files are not text). A Gemini image
    model makes one image a call and each call sends every input image: the
    prompt and the images are held once a call, the images at the largest
    prompt image it can bill (input tokens, as Gemini reports them). Per-call
    models are held at their price for the size and quality asked."""
    prompt_bytes = len(asked.prompt.encode())
    if one_image_a_call(model):
        return CallShape(
            body_bytes=prompt_bytes * asked.n,
            n=asked.n,
            image=ImageShape(),
            parts=PromptParts(images=images * asked.n),
        )
    held = ImageShape(asked.size, asked.quality, edit_image_tokens(model, images, fidelity))
    return CallShape(body_bytes=prompt_bytes, n=asked.n, image=held)
