"""POST /v1/images/generations: OpenAI's images API, billed per image or by tokens.

- Per-call models (DALL-E, Flux, nano-banana-pro ...): price x images made.
  Where the catalog holds a size/quality table (DALL-E 3: standard/hd x three
  sizes), the call is priced at its entry; a size or quality the table does
  not list is a 400, before anything is held.
- Token-billed models (gpt-image-1): held by the size x quality estimate
  (``billing/holds.py``), billed by the usage the upstream reports (text in,
  image in, image out); without usage, by the estimate, marked ``estimated``.
- Generation is synchronous: a client that leaves while the upstream works is
  billed all the same, and the record says ``client_disconnected``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response

from tollway.billing.holds import (
    AUTO,
    IMAGE_QUALITIES,
    CallShape,
    ImageShape,
    image_estimate_usage,
    parse_size,
)
from tollway.billing.pricing import UnpricedVariant, per_call_unit_price, variant_key
from tollway.errors import bad_request
from tollway.gateway import Gateway
from tollway.relay.call import Call, authenticate, decide, open_call, read_json, resolve_model
from tollway.relay.endpoints import IMAGES
from tollway.relay.forward import forward_unary
from tollway.types import BillingMethod, Model, Usage

ENDPOINT = "images/generations"
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


async def image_generations(request: Request) -> Response:
    gw: Gateway = request.app.state.gateway
    token = await authenticate(gw, request)
    payload, body = await read_json(request, gw.settings.max_body_bytes)
    model = resolve_model(gw, token, payload, IMAGES)
    method = decide(token, model)
    asked = image_request(payload)
    if method is BillingMethod.PER_CALL:
        check_priced(model, asked)
    if payload.get("model") != model.id:  # an alias: the upstream knows the model by its id
        payload["model"] = model.id
        body = orjson.dumps(payload)
    shape = CallShape(body_bytes=len(body), n=asked.n, image=asked.shape)
    call = await open_call(gw, token, model, method, ENDPOINT, shape)
    return await forward_unary(
        call,
        body,
        items=lambda answer: images_made(answer, asked.n),
        estimate=lambda answer: _estimate(gw, asked, answer),
        usage=lambda answer: _reported(call, asked, answer),
        client_gone=request.is_disconnected,
    )


def images_made(answer: dict[str, Any], asked: int) -> int:
    data = answer.get("data")
    return len(data) if isinstance(data, list) else asked


def _reported(call: Call, asked: ImageRequest, answer: dict[str, Any]) -> Usage | None:
    """The upstream's usage. A per-call charge needs none (the images are the
    usage): it is never estimated, and it is priced at the request's variant."""
    usage = call.provider.usage(call.endpoint, answer)
    if call.method is BillingMethod.PER_CALL:
        usage = usage or Usage()
        usage.variant = asked.variant
    return usage


def _estimate(gw: Gateway, asked: ImageRequest, answer: dict[str, Any]) -> Usage:
    """No usage came: the size and quality the answer says it made (gpt-image
    answers echo them), else the ones asked for."""
    size = answer.get("size")
    if not isinstance(size, str) or not parse_size(size):
        size = asked.size
    quality = answer.get("quality")
    if not isinstance(quality, str) or quality not in IMAGE_QUALITIES:
        quality = asked.quality
    prompt_tokens = gw.counter.count(asked.prompt)
    return image_estimate_usage(prompt_tokens, size, quality, images_made(answer, asked.n))
